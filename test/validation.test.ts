/**
 * Issue 11's examples of bad values, each through the CLI in-process: one line `moekit: <file or flag>: <problem>`,
 * exit code 1, no stack, and fast (no huge allocation, no long loop). And the configs that stay valid.
 */
import * as fs from 'node:fs';
import fsDefault from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { readConfig } from '../src/io/config.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { MoekitError } from '../src/util/errors.js';
import { MoeModel } from '../src/models/model.js';
import { writeRandomCheckpoint } from '../src/models/synth.js';
import { describeModel } from '../src/models/registry.js';
import { FIXTURE_ARCHS } from './archs.js';
import { ATTENTION_LIMITS, scoreRows } from '../src/models/attention.js';
import { configVariantDir, maxAbsDiff, runCli, scratchDir } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const ARCHS = fs.readdirSync(FIX).filter((a) => fs.existsSync(path.join(FIX, a, 'config.json')));
const tmp = scratchDir('moekit-validation-');

/** the CLI must fail with one line that names `where` and matches `problem`, within `ms` */
async function expectOneLine(argv: string[], where: string, problem: RegExp, ms = 5000): Promise<string> {
  const t0 = Date.now();
  const r = await runCli(argv);
  expect(Date.now() - t0).toBeLessThan(ms);
  expect(r.code, r.err).toBe(1);
  const lines = r.err.trimEnd().split('\n');
  expect(lines.length, r.err).toBe(1);
  expect(lines[0], r.err).toContain(where);
  expect(lines[0]).toMatch(problem);
  expect(r.err).not.toMatch(/\n\s+at /);
  return lines[0];
}

/** `moekit inspect` of the fixture `arch` with some config keys overridden must fail naming its config.json and `problem` */
async function badConfig(arch: string, over: Record<string, unknown>, problem: RegExp): Promise<string> {
  const dir = configVariantDir(path.join(FIX, arch), over);
  try {
    return await expectOneLine(['inspect', dir], path.join(dir, 'config.json'), problem);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** a config.json alone (no weights) in a fresh directory */
function configOnly(name: string, cfg: Record<string, unknown>): string {
  const dir = path.join(tmp(), name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  return dir;
}

const mixtralCfg = (): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(FIX, 'mixtral/config.json'), 'utf8'));

describe('every fixture config stays valid', () => {
  it.each(ARCHS)('%s', (arch) => {
    expect(() => describeModel(readConfig(path.join(FIX, arch)))).not.toThrow();
  });
  it('the real configs of fixtures/configs', () => {
    const dir = path.resolve(__dirname, '../fixtures/configs');
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json'))) {
      expect(() => describeModel(readConfig(path.join(dir, f))), f).not.toThrow();
    }
  });
});

describe('top-k and groups', () => {
  it('num_experts_per_tok larger than the experts', async () => {
    const line = await badConfig('mixtral', { num_experts_per_tok: 9 }, /'num_experts_per_tok' must be an integer in \[1, 8\], got 9/);
    expect(line).not.toMatch(/RangeError|topk:/);
  });
  it('top-k 0', async () => {
    await badConfig('qwen3_moe', { num_experts_per_tok: 0 }, /'num_experts_per_tok' must be an integer in \[1, \d+\], got 0/);
    await badConfig('ernie4_5_moe', { moe_k: 0 }, /'moe_k' must be an integer in \[1, \d+\], got 0/);
  });
  it('top-k ≥ 2^31', async () => {
    await badConfig('mixtral', { num_experts_per_tok: 2 ** 31 }, /'num_experts_per_tok' must be an integer in \[0, 4096\]/);
  });
  it('n_group 0 and topk_group 0 are refused, not read as 1', async () => {
    await badConfig('deepseek_v3', { n_group: 0 }, /'n_group' must be an integer in \[1, 4096\], got 0/);
    await badConfig('deepseek_v3', { topk_group: 0 }, /'topk_group' must be an integer in \[1, 4096\], got 0/);
    await badConfig('deepseek_v2', { n_group: 0 }, /'n_group' must be an integer in \[1, 4096\], got 0/);
  });
  it('n_group must divide the experts; topk_group ≤ n_group; top-k within the chosen groups', async () => {
    await badConfig('deepseek_v3', { n_group: 3 }, /'n_group' \(3\) must divide n_routed_experts \(8\)/);
    await badConfig('deepseek_v3', { n_group: 2, topk_group: 3 }, /'topk_group' must be an integer in \[1, 2\], got 3/);
    await badConfig('deepseek_v2', { n_group: 4, topk_group: 1, num_experts_per_tok: 3 }, /'num_experts_per_tok' \(3\) must be ≤ the 2 experts of topk_group \(1\) groups/);
  });
  it('an unknown topk_method', async () => {
    await badConfig('deepseek_v3', { topk_method: 'noaux_tc2' }, /'topk_method' must be one of greedy, group_limited_greedy, noaux_tc, got 'noaux_tc2'/);
    await badConfig('deepseek_v2', { topk_method: 'random' }, /'topk_method' must be one of/);
  });
});

describe('dense-layer patterns', () => {
  // transformers takes these modulo the layer index, so 0 raises ZeroDivisionError there: an error naming the key here
  it('decoder_sparse_step, moe_layer_freq and moe_layer_interval of 0 are refused, not read as 1', async () => {
    await badConfig('qwen2_moe', { decoder_sparse_step: 0 }, /'decoder_sparse_step' must be an integer ≥ 1, got 0/);
    await badConfig('qwen3_moe', { decoder_sparse_step: 0 }, /'decoder_sparse_step' must be an integer ≥ 1, got 0/);
    await badConfig('deepseek_v2', { moe_layer_freq: 0 }, /'moe_layer_freq' must be an integer ≥ 1, got 0/);
    await badConfig('deepseek_v3', { moe_layer_freq: 0 }, /'moe_layer_freq' must be an integer ≥ 1, got 0/);
    await badConfig('ernie4_5_moe', { moe_layer_interval: 0 }, /'moe_layer_interval' must be an integer ≥ 1, got 0/);
  });
  it('mlp_only_layers must be layer indices', async () => {
    await badConfig('qwen2_moe', { mlp_only_layers: [99] }, /'mlp_only_layers' must list layer indices/);
    await badConfig('qwen2_moe', { mlp_only_layers: ['a'] }, /'mlp_only_layers' must list layer indices/);
  });
});

describe('sizes', () => {
  it('num_hidden_layers 1e9 on inspect of a config alone fails fast', async () => {
    const dir = configOnly('layers-1e9', { ...mixtralCfg(), num_hidden_layers: 1e9 });
    await expectOneLine(['inspect', dir], path.join(dir, 'config.json'), /'num_hidden_layers' must be an integer in \[0, 4096\], got 1000000000/, 2000);
  });
  it('layers ≥ 2^31, a huge vocabulary, hidden size or expert count', async () => {
    await badConfig('mixtral', { num_hidden_layers: 2 ** 31 }, /'num_hidden_layers' must be an integer in \[0, 4096\]/);
    await badConfig('mixtral', { vocab_size: 2 ** 30 }, /'vocab_size' must be an integer in \[0, 16777216\]/);
    await badConfig('mixtral', { hidden_size: 1e6 }, /'hidden_size' must be an integer in \[0, 65536\]/);
    await badConfig('mixtral', { num_local_experts: 1e5 }, /'num_local_experts' must be an integer in \[0, 4096\]/);
    await badConfig('mixtral', { max_position_embeddings: 2 ** 40 }, /'max_position_embeddings' must be an integer in \[0, 16777216\]/);
  });
  it('zero sizes and heads that do not divide', async () => {
    await badConfig('mixtral', { num_hidden_layers: 0 }, /'num_hidden_layers' must be an integer in \[1, 4096\], got 0/);
    await badConfig('mixtral', { num_key_value_heads: 3 }, /num_key_value_heads/);
    await badConfig('mixtral', { head_dim: 0 }, /head_dim/);
  });
  const big = { ...mixtralCfg(), num_hidden_layers: 4096, hidden_size: 65536, num_attention_heads: 512, num_key_value_heads: 8, head_dim: 128, vocab_size: 2 ** 24, num_local_experts: 4096 };
  it('a config alone with the sizes at their limits is counted, not allocated', async () => {
    const dir = configOnly('big', big);
    const t0 = Date.now();
    const r = await runCli(['inspect', dir, '--json']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).layers).toBe(4096);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
  it('a description with more parameters than can be counted exactly', async () => {
    const dir = configOnly('too-big', { ...big, intermediate_size: 2 ** 20 });
    await expectOneLine(['inspect', dir], path.join(dir, 'config.json'), /parameters: too many to hold/);
  });
});

describe('values that led to NaN logits', () => {
  it('rms_norm_eps < 0 or 0', async () => {
    await badConfig('mixtral', { rms_norm_eps: -1e-6 }, /'rms_norm_eps' must be a number in \(0, 1\], got -0.000001/);
    await badConfig('olmoe', { rms_norm_eps: 0 }, /'rms_norm_eps' must be a number in \(0, 1\]/);
  });
  it('rope_theta ≤ 0', async () => {
    await badConfig('mixtral', { rope_parameters: { rope_type: 'default', rope_theta: 0 } }, /'rope_theta' must be a number > 0, got 0/);
    await badConfig('qwen3_moe', { rope_parameters: { rope_type: 'default', rope_theta: -10000 } }, /'rope_theta' must be a number > 0/);
  });
  it('a zero rope factor', async () => {
    await badConfig('mixtral', { rope_parameters: { rope_type: 'linear', rope_theta: 10000, factor: 0 } }, /'rope_scaling.factor' must be a number in \(0, 1000000\], got 0/);
  });
  it('a zero logits scale', async () => {
    await badConfig('granitemoe', { logits_scaling: 0 }, /'logits_scaling' must be a number with magnitude in/);
  });
  it('multipliers ≥ 1e39', async () => {
    await badConfig('granitemoe', { embedding_multiplier: 1e39 }, /'embedding_multiplier' must be a number with magnitude in \[0.000001, 1000000\], got 1e\+39/);
    await badConfig('granitemoe', { residual_multiplier: 1e39 }, /'residual_multiplier'/);
    await badConfig('granitemoe', { attention_multiplier: 1e39 }, /'attention_multiplier'/);
    await badConfig('deepseek_v3', { routed_scaling_factor: 1e39 }, /'routed_scaling_factor'/);
  });
  it('numbers that JSON reads as Infinity', async () => {
    const dir = configOnly('inf', mixtralCfg());
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(mixtralCfg()).replace(/"rms_norm_eps":[^,}]+/, '"rms_norm_eps":1e999'));
    await expectOneLine(['inspect', dir], path.join(dir, 'config.json'), /'rms_norm_eps' must be a finite number/);
  });
  it('token ids in the config must be integers', async () => {
    await badConfig('mixtral', { eos_token_id: 2.5 }, /'eos_token_id' must be an integer token id/);
  });
});

describe('lm_head', () => {
  const noHead = (name: string, tie: boolean | undefined): string => {
    const dir = path.join(tmp(), name);
    const cfg = { ...mixtralCfg(), tie_word_embeddings: true };
    writeRandomCheckpoint(dir, cfg); // tied: no lm_head.weight written
    const c2: Record<string, unknown> = { ...cfg };
    if (tie === undefined) delete c2.tie_word_embeddings; else c2.tie_word_embeddings = tie;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c2));
    return dir;
  };
  it('missing with tie_word_embeddings false is an error naming the tensor', async () => {
    const dir = noHead('nohead-false', false);
    await expectOneLine(['generate', dir, '--ids', '1,2', '--max-new-tokens', '1'], dir, /missing tensor 'lm_head.weight' \(tie_word_embeddings is false/);
  });
  it('missing with tie_word_embeddings absent (Mixtral defaults to false) is an error too', () => {
    const dir = noHead('nohead-absent', undefined);
    expect(() => MoeModel.load(dir)).toThrow(/missing tensor 'lm_head.weight'/);
  });
  it('missing with tie_word_embeddings true uses the embedding', () => {
    const m = MoeModel.load(noHead('nohead-true', true));
    expect(m.weights.lmHead.w).toBe(m.weights.embed);
  });
  it("a checkpoint's own lm_head is used even when tie_word_embeddings is true", () => {
    const dir = configVariantDir(path.join(FIX, 'mixtral'), { tie_word_embeddings: true });
    try {
      const m = MoeModel.load(dir);
      expect(m.weights.lmHead.w).not.toBe(m.weights.embed);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('generate flags', () => {
  const dir = path.join(FIX, 'mixtral');
  it('--ids 4294967297 does not wrap to token 1', async () => {
    await expectOneLine(['generate', dir, '--ids', '4294967297', '--max-new-tokens', '1'], '--ids', /token id 4294967297 is outside the model's vocabulary \[0, 512\)/);
  });
  it('--ids past the vocabulary names --ids', async () => {
    await expectOneLine(['generate', dir, '--ids', '1,512', '--max-new-tokens', '1'], '--ids', /token id 512 is outside/);
  });
  it('--ids must be exact integers', async () => {
    for (const v of ['1e3', '1.5', '-1', '0x10', '9007199254740993', '1,,2']) {
      await expectOneLine(['generate', dir, `--ids=${v}`, '--max-new-tokens', '1'], '--ids', /--ids must be comma-separated non-negative integers/);
    }
  });
  it('--max-new-tokens 1e9 fails fast', async () => {
    await expectOneLine(['generate', dir, '--ids', '1,2', '--max-new-tokens', '1e9'], '--max-new-tokens', /--max-new-tokens must be an integer ≥ 0 and ≤ 16777216, got '1e9'/, 2000);
  });
  it('a large --max-new-tokens within the limit allocates no cache for it up front', async () => {
    const m = MoeModel.load(dir);
    const { Sequence } = await import('../src/runtime/sequence.js');
    const s = new Sequence(m, [1, 2, 3], { maxNewTokens: 2 ** 24 - 3 });
    expect(s.cache.layers[0].cap).toBeLessThanOrEqual(3 + 256);
  });
});

describe('flag errors are one line; the usage goes behind --help', () => {
  it.each([
    [['generate'], /expected one model directory, got 0 \(--help for usage\)/],
    [['forward', '--bogus'], /Unknown option '--bogus'.*\(--help for usage\)/],
    [['extract', 'x'], /--out DIR is required \(--help for usage\)/],
    [['grad', 'x'], /--input and --out are required \(--help for usage\)/],
  ])('%j', async (argv, re) => {
    const r = await runCli(argv as string[]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(re);
    expect(r.err.trim().split('\n').length).toBe(1);
  });
  it.each(['generate', 'forward', 'extract', 'grad', 'train', 'eval', 'inspect'])('%s --help prints its usage and exits 0', async (cmd) => {
    const r = await runCli([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^usage: moekit ${cmd}`));
  });
});

/** a spec file in the scratch directory */
function specFile(name: string, text: string): string {
  const f = path.join(tmp(), name);
  fs.writeFileSync(f, text);
  return f;
}
const SPEC = 'model: mixtral-8x7b\nhardware: { preset: h100, devices: 16 }\nparallel: { tp: 2, pp: 2, ep: 4 }\ntraining: { seq_len: 4096, global_batch: 64 }\n';

describe("the planner's inputs", () => {
  it('plan integers must be exact and bounded: 1e308, 2^53 + 1, 1.5 and 2^40 devices are refused', async () => {
    await expectOneLine(['plan', 'simulate', specFile('big-seq.yaml', SPEC.replace('seq_len: 4096', 'seq_len: 1e308'))], 'training.seq_len', /must be an integer in \[1, 16777216\] \(got 1e\+308\)/);
    await expectOneLine(['plan', 'simulate', specFile('inexact.json', JSON.stringify({ model: 'mixtral-8x7b', hardware: { preset: 'h100', devices: 16 }, training: { seq_len: 4096, global_batch: 2 ** 53 + 1 } }))],
      'training.global_batch', /must be an integer in \[1, 1073741824\]/);
    await expectOneLine(['plan', 'simulate', specFile('frac.yaml', SPEC.replace('tp: 2', 'tp: 1.5'))], 'parallel.tp', /must be an integer in \[1, \d+\] \(got 1.5\)/);
    await expectOneLine(['plan', 'search', specFile('devs.yaml', SPEC.replace('devices: 16', `devices: ${2 ** 40}`))], 'hardware.devices', /must be an integer in \[1, 1048576\]/);
    await expectOneLine(['plan', 'search', specFile('experts.yaml', 'model: { preset: mixtral-8x7b, experts: 9007199254740992 }\nhardware: { preset: h100, devices: 16 }\ntraining: { seq_len: 4096, global_batch: 64 }\n')],
      'model.experts', /must be an integer in \[0, 65536\]/);
  });
  it('--zero "" and other non-digit flags are refused, not read as 0', async () => {
    const f = specFile('z.yaml', SPEC);
    await expectOneLine(['plan', 'simulate', f, '--zero', ''], '--zero', /must be a non-negative integer \(got ''\)/);
    await expectOneLine(['plan', 'simulate', f, '--tp', '0x2'], '--tp', /must be a non-negative integer/);
    await expectOneLine(['plan', 'simulate', f, '--seq-len', '1e9'], '--seq-len', /must be a non-negative integer/);
    await expectOneLine(['plan', 'op', 'moe-layer', '--tokens', '99999999999', '--hidden', '8', '--experts', '8', '--top-k', '2', '--expert-ffn', '8'], '--tokens', /at most/);
  });
  it('efficiencies are fractions: gemm_eff 5 is refused (it gave MFU 1.26)', async () => {
    await expectOneLine(['plan', 'simulate', specFile('eff.yaml', SPEC.replace('devices: 16', 'devices: 16, gemm_eff: 5'))], 'hardware.gemm_eff', /must be a number in \[0, 1\] \(got 5\)/);
    await expectOneLine(['plan', 'simulate', specFile('bw.yaml', SPEC.replace('devices: 16', 'devices: 16, intra_gbps: 1e300'))], 'hardware.intra_gbps', /must be a number in \[0, 1000000\]/);
    await expectOneLine(['plan', 'simulate', specFile('dpn.yaml', SPEC.replace('devices: 16', 'devices: 16, devices_per_node: 2.5'))], 'hardware.devices_per_node', /must be an integer/);
  });
  it('a search over the largest allowed cluster and expert count finishes quickly, divisors factorised', async () => {
    const f = specFile('huge.yaml', `model: { preset: mixtral-8x7b, experts: 65536 }\nhardware: { preset: h100, devices: ${2 ** 20} }\ntraining: { seq_len: 4096, global_batch: ${2 ** 20} }\n`);
    const t0 = Date.now();
    // the layout pinned, so the time is the enumeration's (it counted divisors to 2^40 before), not 10^4 simulations
    const r = await runCli(['plan', 'search', f, '--json', '--tp', '8', '--pp', '4', '--cp', '1', '--vpp', '1', '--etp', '1']);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.err).toBe('');
    expect(r.out).not.toMatch(/NaN|Infinity/);
  }, 30000);
  it('divisors() matches the count-to-n loop', async () => {
    const { divisors } = await import('../src/plan/search.js');
    for (const n of [1, 2, 12, 97, 360, 1024, 9973 * 2, 2 ** 20, 65536 * 3]) {
      const slow: number[] = [];
      for (let i = 1; i <= n; i++) if (n % i === 0) slow.push(i);
      expect(divisors(n), String(n)).toEqual(slow);
    }
  });
});

describe('input files: special files and size caps', () => {
  const fifo = (name: string): string | null => {
    const f = path.join(tmp(), name);
    try {
      execFileSync('mkfifo', [f]);
      return f;
    } catch {
      return null; // no mkfifo here
    }
  };
  it('a FIFO as a plan spec, a config.json, a training config or --input is refused, not waited on', async () => {
    const f = fifo('spec.yaml');
    if (!f) return;
    await expectOneLine(['plan', 'simulate', f], f, /is a FIFO, not a regular file/);
    await expectOneLine(['inspect', f], f, /is a FIFO, not a regular file/);
    await expectOneLine(['train', f], f, /is a FIFO, not a regular file/);
    const m = configOnly('fifo-input', mixtralCfg());
    await expectOneLine(['forward', path.join(FIX, 'mixtral'), '--input', f, '--out', path.join(m, 'o.safetensors')], f, /not a regular file/);
  });
  it('/dev/zero as a spec is refused before any read', async () => {
    await expectOneLine(['plan', 'simulate', '/dev/zero'], '/dev/zero', /is a device, not a regular file/);
  });
  it('a spec over the size cap is refused by its size', async () => {
    const f = path.join(tmp(), 'big.yaml');
    const fd = fs.openSync(f, 'w');
    fs.ftruncateSync(fd, 100 * 2 ** 20); // sparse: 100 MiB of zeros on disk for free
    fs.closeSync(fd);
    await expectOneLine(['plan', 'simulate', f], f, /is 100 MiB, over the 4 MiB limit/);
    await expectOneLine(['train', f], f, /over the 4 MiB limit/);
    const dir = configOnly('big-config', {});
    fs.truncateSync(path.join(dir, 'config.json'), 17 * 2 ** 20);
    await expectOneLine(['inspect', dir], path.join(dir, 'config.json'), /over the 16 MiB limit/);
  });
  it('a JSON error quotes no config text over several lines', async () => {
    const dir = configOnly('bad-json', {});
    fs.writeFileSync(path.join(dir, 'config.json'), '{\n  "a": 1,\n  "b": \n}\n');
    await expectOneLine(['inspect', dir], path.join(dir, 'config.json'), /malformed JSON/);
  });
});

describe('attention scores of long prompts are computed in row blocks', () => {
  const logits = (arch: string, ids: Int32Array, B: number, T: number, mla?: 'latent' | 'expanded') => {
    const m = MoeModel.load(path.join(FIX, arch));
    if (mla) m.mlaCache = mla;
    const cache = m.newCache(B, 2);
    const a = m.forward(ids.subarray(0, B * (T - 3)), B, T - 3, { cache }); // a prefill, then a continuation at pos0 > 0
    const b = m.forward(ids.subarray(B * (T - 3)), B, 3, { cache });
    return [a, b];
  };
  it.each([['mixtral'], ['gpt_oss'], ['deepseek_v3', 'latent'], ['deepseek_v3', 'expanded']] as [string, ('latent' | 'expanded')?][])(
    '%s %s: blocks of a few rows give the logits of one block', (arch, mla) => {
      const B = 2, T = 11;
      const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 53 + 7) % 256);
      const whole = logits(arch, ids, B, T, mla);
      const saved = ATTENTION_LIMITS.scoreBlockFloats;
      ATTENTION_LIMITS.scoreBlockFloats = 20; // 1 or 2 query rows per block
      try {
        const blocked = logits(arch, ids, B, T, mla);
        for (let i = 0; i < 2; i++) expect(maxAbsDiff(blocked[i], whole[i])).toBeLessThan(1e-5);
      } finally {
        ATTENTION_LIMITS.scoreBlockFloats = saved;
      }
    });
  it('a block holds at most 2^22 scores: a 60k-token prompt needs 16 MiB of them, not 14 GB', () => {
    expect(scoreRows(60000, 60000) * 60000).toBeLessThanOrEqual(2 ** 22);
    expect(scoreRows(5, 5)).toBe(5);
    expect(scoreRows(10, 2 ** 23)).toBe(1);
  });
});

describe('tokenizer ids and chat templates', () => {
  const TINY = path.resolve(__dirname, '../examples/tiny-moe');
  /** a directory with tiny-moe's tokenizer, its tokenizer.json / tokenizer_config.json / config.json edited */
  const tokDir = (name: string, edit: { tok?: (t: any) => void; cfg?: Record<string, unknown>; template?: string }): string => {
    const dir = path.join(tmp(), name);
    fs.mkdirSync(dir, { recursive: true });
    const t = JSON.parse(fs.readFileSync(path.join(TINY, 'tokenizer.json'), 'utf8'));
    edit.tok?.(t);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(t));
    const tc = JSON.parse(fs.readFileSync(path.join(TINY, 'tokenizer_config.json'), 'utf8'));
    if (edit.template !== undefined) tc.chat_template = edit.template;
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...JSON.parse(fs.readFileSync(path.join(TINY, 'config.json'), 'utf8')), ...edit.cfg }));
    return dir;
  };
  const loadErr = (dir: string): string => {
    try {
      loadTokenizer(dir);
    } catch (e) {
      expect(e).toBeInstanceOf(MoekitError);
      return (e as MoekitError).oneLine();
    }
    throw new Error('loaded');
  };
  it('ids that are strings, null, fractional or 2^40 are refused at load, naming tokenizer.json and the key', () => {
    for (const [name, id] of [['str', '511'], ['null', null], ['frac', 510.5], ['huge', 2 ** 40]] as [string, unknown][]) {
      const dir = tokDir(`added-${name}`, { tok: (t) => { t.added_tokens[0].id = id; } });
      const line = loadErr(dir);
      expect(line).toContain(path.join(dir, 'tokenizer.json'));
      expect(line).toMatch(/added_tokens\[0\]\.id must be an integer token id in \[0, 16777215\]/);
    }
    const dir = tokDir('vocab-str', { tok: (t) => { t.model.vocab[Object.keys(t.model.vocab)[3]] = '3'; } });
    expect(loadErr(dir)).toMatch(/model\.vocab\[.*\] must be an integer token id/);
  });
  it('a tokenizer.json with ids past config.json vocab_size: encoding to such an id names both files', () => {
    const dir = tokDir('small-vocab', { cfg: { vocab_size: 300 } });
    const tok = loadTokenizer(dir)!;
    let line = '';
    try {
      tok.encode('The licenses of the software are the terms under which it may be used');
    } catch (e) {
      line = (e as MoekitError).oneLine();
    }
    expect(line).toMatch(/tokenizer\.json: the text encodes to token id \d+, outside the model's vocabulary \[0, 300\) \(vocab_size of .*config\.json\)/);
    expect(tok.encode('a')).toEqual(expect.any(Array)); // ids inside the vocabulary still encode
  });
  it('a chat template with range(1e8), doubling strings or nested loops stops at its budget, fast', () => {
    const templates = [
      '{% for i in range(100000000) %}x{% endfor %}',
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
      '{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}',
    ];
    templates.forEach((tpl, i) => {
      const dir = tokDir(`tpl-${i}`, { template: tpl });
      const tok = loadTokenizer(dir)!;
      const t0 = Date.now();
      let line = '';
      try {
        tok.applyChatTemplate([{ role: 'user', content: 'hi' }]);
      } catch (e) {
        expect(e).toBeInstanceOf(MoekitError);
        line = (e as MoekitError).oneLine();
      }
      expect(Date.now() - t0, tpl).toBeLessThan(10000);
      expect(line, tpl).toMatch(/tokenizer_config\.json: chat_template failed: .*(range\(\) of|more than)/);
    });
    // a normal template still renders
    const ok = loadTokenizer(tokDir('tpl-ok', { template: '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}' }))!;
    expect(ok.applyChatTemplate([{ role: 'user', content: 'hi' }]).length).toBeGreaterThan(0);
  });
});

describe('temporary files on SIGINT / SIGTERM', () => {
  const DIST_TEMP = path.resolve(__dirname, '../dist/util/temp.js');
  it.each(['SIGINT', 'SIGTERM'] as const)('%s removes a live temp file and still ends the process by the signal', async (sig) => {
    const tmpFile = path.join(tmp(), `out.safetensors.tmp-${sig}`);
    const script = `import * as fs from 'node:fs'; import { trackTemp } from ${JSON.stringify(pathToFileURL(DIST_TEMP).href)};
      fs.writeFileSync(${JSON.stringify(tmpFile)}, Buffer.alloc(1 << 20)); trackTemp(${JSON.stringify(tmpFile)});
      process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res) => child.stdout!.on('data', (d) => { if (String(d).includes('ready')) res(); }));
    expect(fs.existsSync(tmpFile)).toBe(true);
    const ended = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, s) => res(s)));
    child.kill(sig);
    expect(await ended).toBe(sig);
    expect(fs.existsSync(tmpFile)).toBe(false);
  }, 20000);
  it('the handlers are installed only while a temp is live', async () => {
    const { trackTemp, liveTemps } = await import('../src/util/temp.js');
    const before = process.listenerCount('SIGTERM');
    const done = trackTemp(path.join(tmp(), 'x.tmp'));
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    done();
    await new Promise((r) => setImmediate(r));
    expect(process.listenerCount('SIGTERM')).toBe(before);
    expect(liveTemps()).toEqual([]);
  });
});

describe('write errors name the file', () => {
  it('a full disk in the middle of a write: one line naming the output, no temp file left', async () => {
    const { writeSafetensors } = await import('../src/io/safetensors-write.js');
    const dir = path.join(tmp(), 'full-disk');
    fs.mkdirSync(dir, { recursive: true });
    const out = path.join(dir, 'o.safetensors');
    const spy = vi.spyOn(fsDefault, 'writeSync').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    });
    let err: unknown;
    try {
      writeSafetensors(out, [{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(8) }]);
    } catch (e) {
      err = e;
    } finally {
      spy.mockRestore();
    }
    expect(err).toBeInstanceOf(MoekitError);
    expect((err as MoekitError).oneLine()).toBe(`${out}: cannot write: no space left on the device`);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('YAML inputs', () => {
  it('an unknown tag prints no multi-line warning; alias bombs are refused in one line', async () => {
    const warn = vi.spyOn(process, 'emitWarning');
    const tagged = specFile('tagged.yaml', '!(x\nmodel: mixtral-8x7b\n');
    const r = await runCli(['plan', 'simulate', tagged]);
    expect(r.code).toBe(1);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    const lol = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++) lol.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill('*' + String.fromCharCode(96 + i)).join(',')}]`);
    const bomb = specFile('bomb.yaml', lol.join('\n') + '\n');
    await expectOneLine(['plan', 'simulate', bomb], bomb, /not valid YAML: .*alias/i);
  });
});

describe('a token id outside the vocabulary names the config', () => {
  it('at the model', () => {
    const m = MoeModel.load(path.join(FIX, 'mixtral'));
    let line = '';
    try {
      m.forward(Int32Array.from([1, 9999999]), 1, 2);
    } catch (e) {
      line = (e as MoekitError).oneLine();
    }
    expect(line).toMatch(new RegExp(`^${path.join(FIX, 'mixtral', 'config.json').replace(/[/.]/g, '\\$&')}: token id 9999999 is outside the vocabulary \\[0, \\d+\\) \\(vocab_size\\)$`));
  });
});

describe('training config values', () => {
  it('sizes that become allocations are bounded, errors name the config file', async () => {
    const f = specFile('train-big.yaml', `model: { config: ${path.resolve(__dirname, '../examples/tiny-moe/config.json')} }\nout: ${path.join(tmp(), 'run-big')}\ntrain: { batch_size: 1000000000 }\n`);
    await expectOneLine(['train', f], f, /train\.batch_size must be at most 65536, got 1000000000/);
    const g = specFile('train-lr.yaml', `model: { config: ${path.resolve(__dirname, '../examples/tiny-moe/config.json')} }\nout: ${path.join(tmp(), 'run-lr')}\ntrain: { lr: 1e300 }\n`);
    await expectOneLine(['train', g], g, /train\.lr must be at most 10 in magnitude/);
    const h = specFile('train-steps.yaml', `model: { config: ${path.resolve(__dirname, '../examples/tiny-moe/config.json')} }\nout: ${path.join(tmp(), 'run-steps')}\ntrain: { steps: 0 }\n`);
    await expectOneLine(['train', h], h, /train\.steps must be ≥ 1/);
  });
});

describe('an expert width of 0 in any family\'s fixture config is refused naming the key that family reads', () => {
  // the key each architecture file reads for one expert's FFN width (src/models/<arch>.ts), written out here
  const KEY: Record<string, string> = {
    mixtral: 'intermediate_size', gpt_oss: 'intermediate_size', granitemoe: 'intermediate_size', olmoe: 'intermediate_size',
    granitemoeshared: 'intermediate_size', hunyuan_v1_moe: 'intermediate_size', phimoe: 'intermediate_size', llama4_text: 'intermediate_size',
    minimax: 'intermediate_size', flex_olmo: 'intermediate_size', aria_text: 'intermediate_size', granitemoehybrid: 'intermediate_size',
    jetmoe: 'intermediate_size', longcat_flash: 'expert_ffn_hidden_size', dbrx: 'ffn_config.ffn_hidden_size',
  };
  it.each(FIXTURE_ARCHS)('%s', async (arch) => {
    const { ConfigReader } = await import('../src/io/config.js');
    const cfg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/hf-tiny-moe', arch, 'config.json'), 'utf8'));
    const key = KEY[arch] ?? 'moe_intermediate_size';
    const [outer, inner] = key.split('.');
    if (inner) cfg[outer] = { ...cfg[outer], [inner]: 0 }; else cfg[outer] = 0;
    expect(() => describeModel(new ConfigReader(cfg, 'config.json'))).toThrow(new RegExp(`'${key.replace('.', '\\.')}'`));
  });
});
