/**
 * Property-based fuzzing (fast-check) of every input a user writes: config.json values, a forward through a
 * mutated config, training configs (values and raw YAML text), plan specs, CLI flags, token ids and safetensors
 * headers. Each case must end in a valid, finite result or a MoekitError of one line; never another exception,
 * never a NaN, and within a time bound.
 *
 * Seeded and bounded for CI (about half a minute); MOEKIT_FUZZ_SEED picks another seed and MOEKIT_FUZZ_RUNS
 * multiplies the number of cases (docs/reliability.md: `MOEKIT_FUZZ_RUNS=10 npx vitest run test/fuzz.test.ts`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigReader } from '../src/io/config.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { MoeModel } from '../src/models/model.js';
import { paramCounts } from '../src/models/params.js';
import { describeModel } from '../src/models/registry.js';
import { simJson } from '../src/cli/plan.js';
import { resolveSpec } from '../src/plan/spec.js';
import { simulate } from '../src/plan/simulate.js';
import { search } from '../src/plan/search.js';
import { readConfigFile, resolveConfig } from '../src/train/config.js';
import { MoekitError } from '../src/util/errors.js';
import { configVariantDir, runCli, scratchDir } from './helpers.js';

const SEED = Number(process.env.MOEKIT_FUZZ_SEED ?? 20261201);
const SCALE = Number(process.env.MOEKIT_FUZZ_RUNS ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
/** one case may take this long (a hang or a huge allocation shows as a slow case long before it aborts) */
const CASE_MS = 3000;
const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const ARCHS = fs.readdirSync(FIX).filter((a) => fs.existsSync(path.join(FIX, a, 'config.json')));
const TINY = path.resolve(__dirname, '../examples/tiny-moe');
const tmp = scratchDir('moekit-fuzz-');

/** counts of how the cases ended, per category (one summary line at the end with MOEKIT_FUZZ_REPORT=1) */
type Tally = { ok: number; refused: number };
const TALLIES: Record<string, Tally> = {};
const tally = (name: string): Tally => (TALLIES[name] ??= { ok: 0, refused: 0 });
afterAll(() => {
  if (process.env.MOEKIT_FUZZ_REPORT) console.log('fuzz (ok / refused): ' + Object.entries(TALLIES).map(([k, v]) => `${k} ${v.ok}/${v.refused}`).join(', '));
});

/**
 * Run `fn`: a MoekitError must be one line (naming `where` when given); anything else thrown fails the case.
 * Returns the value, or undefined when refused.
 */
function outcome<T>(t: Tally, fn: () => T, where?: (e: MoekitError) => boolean): T | undefined {
  const t0 = Date.now();
  try {
    const v = fn();
    t.ok++;
    return v;
  } catch (e) {
    if (!(e instanceof MoekitError)) throw new Error(`not a MoekitError: ${(e as Error)?.stack ?? String(e)}`);
    const line = e.oneLine();
    if (line.includes('\n')) throw new Error(`a refusal over several lines: ${JSON.stringify(line)}`);
    if (where && !where(e)) throw new Error(`a refusal that does not name its input: ${line}`);
    t.refused++;
    return undefined;
  } finally {
    const ms = Date.now() - t0;
    if (ms > CASE_MS) throw new Error(`a case took ${ms} ms`);
  }
}

/** every number reachable in `v` is finite */
function allFinite(v: unknown, seen = new Set<unknown>()): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (v === null || typeof v !== 'object' || seen.has(v)) return true;
  seen.add(v);
  if (ArrayBuffer.isView(v)) return Array.prototype.every.call(v, (x: number) => Number.isFinite(x));
  return Object.values(v as Record<string, unknown>).every((x) => allFinite(x, seen));
}

/** values a careless or hostile edit puts in a field */
const badValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -4, max: 12 }),
  fc.constantFrom(0, -1, 1, 2, 2 ** 31, 2 ** 32 + 1, 2 ** 40, 2 ** 53, 2 ** 53 + 1, 1e308, -1e308, 1e39, 1e-300, 1e-6, 0.5, 1.5, -0.5, 1e6),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(Infinity, -Infinity, NaN),
  fc.string({ maxLength: 6 }),
  fc.constantFrom(null, true, false, '', '1', 'default', 'yarn', 'linear'),
  fc.array(fc.integer({ min: -2, max: 9 }), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('factor', 'rope_type', 'type', 'rope_theta', 'x'), fc.oneof(fc.integer({ min: -1, max: 8 }), fc.string({ maxLength: 4 }), fc.double())),
);

describe('config.json values', () => {
  const base = ARCHS.map((a) => ({ arch: a, cfg: JSON.parse(fs.readFileSync(path.join(FIX, a, 'config.json'), 'utf8')) as Record<string, unknown> }));
  const EXTRA = ['decoder_sparse_step', 'moe_layer_freq', 'moe_layer_interval', 'mlp_only_layers', 'n_group', 'topk_group', 'topk_method',
    'rope_scaling', 'rope_theta', 'rms_norm_eps', 'num_experts_per_tok', 'tie_word_embeddings', 'head_dim', 'partial_rotary_factor',
    'sliding_window', 'layer_types', 'first_k_dense_replace', 'routed_scaling_factor', 'logits_scaling', 'embedding_multiplier'];
  it('a description with finite parameter counts, or one line naming config.json', () => {
    const t = tally('config');
    fc.assert(fc.property(
      fc.nat({ max: base.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.option(badValue, { freq: 6 })), { minLength: 1, maxLength: 3 }),
      (i, edits) => {
        const { cfg } = base[i];
        const keys = [...Object.keys(cfg), ...EXTRA];
        const c: Record<string, unknown> = { ...cfg };
        for (const [k, v] of edits) {
          const key = keys[k % keys.length];
          if (v === null) delete c[key];
          else c[key] = v;
        }
        const r = outcome(t, () => paramCounts(describeModel(new ConfigReader(c, 'fuzz/config.json')).desc), (e) => e.oneLine().includes('config.json'));
        if (r) expect(allFinite(r), JSON.stringify(r)).toBe(true);
      }), { seed: SEED, numRuns: runs(400) });
  });
});

describe('a forward through a mutated config', () => {
  const NUMERIC = ['rms_norm_eps', 'rope_theta', 'num_experts_per_tok', 'routed_scaling_factor', 'embedding_multiplier', 'logits_scaling',
    'attention_multiplier', 'residual_multiplier', 'router_aux_loss_coef', 'norm_topk_prob', 'n_group', 'topk_group', 'decoder_sparse_step'];
  it('finite logits, or one line naming the file', () => {
    const t = tally('forward');
    fc.assert(fc.property(
      fc.constantFrom('mixtral', 'qwen3_moe', 'granitemoe', 'deepseek_v3', 'gpt_oss'), fc.constantFrom(...NUMERIC), badValue,
      (arch, key, v) => {
        const dir = configVariantDir(path.join(FIX, arch), { [key]: v });
        try {
          const logits = outcome(t, () => MoeModel.load(dir).forward(Int32Array.from([1, 5, 9, 2]), 1, 4), (e) => e.oneLine().includes(dir));
          if (logits) expect(allFinite(logits), `${arch} ${key}=${JSON.stringify(v)}`).toBe(true);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }), { seed: SEED, numRuns: runs(40) });
  });
});

describe('training configs', () => {
  const PATHS: [string, string?][] = [
    ['model', 'init_seed'], ['model', 'init_std'], ['data', 'source'], ['data', 'seq_len'], ['data', 'tasks'], ['data', 'mix'],
    ['train', 'steps'], ['train', 'batch_size'], ['train', 'grad_accum'], ['train', 'lr'], ['train', 'min_lr'], ['train', 'schedule'],
    ['train', 'warmup'], ['train', 'decay_fraction'], ['train', 'weight_decay'], ['train', 'betas'], ['train', 'eps'], ['train', 'clip'],
    ['train', 'workers'], ['balance', 'switch'], ['balance', 'aux_free'], ['mtp', 'kind'], ['mtp', 'depth'], ['mtp', 'weight'],
    ['checkpoint', 'every'], ['checkpoint', 'keep'], ['elastic', 'samples'], ['elastic', 'depth'], ['log_every'], ['out'], ['bogus'],
  ];
  it('values: a resolved config, or a one-line refusal', () => {
    const t = tally('train-values');
    const value = fc.oneof(badValue, fc.constantFrom(1, 2, 4, 16, 64, 1e-3, 0.1, 0.9, 'cosine', 'wsd', 'deepseek', [0.9, 0.95]));
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...PATHS), value), { minLength: 1, maxLength: 3 }), (edits) => {
      const raw: Record<string, unknown> = { model: { config: path.join(TINY, 'config.json') }, out: path.join(tmp(), 'run'), train: { steps: 10 } };
      for (const [[a, b], v] of edits) {
        if (b === undefined) raw[a] = v;
        else raw[a] = { ...(raw[a] as object | undefined), [b]: v };
      }
      const cfg = outcome(t, () => resolveConfig(structuredClone(raw), tmp()));
      if (cfg) {
        expect(allFinite(cfg.train)).toBe(true);
        expect(cfg.data.seq_len * cfg.train.batch_size).toBeLessThanOrEqual(2 ** 36);
      }
    }), { seed: SEED, numRuns: runs(400) });
  });
  it('raw text: a mapping, or one line naming the file', () => {
    const t = tally('train-yaml');
    const file = () => path.join(tmp(), 'fuzz.yaml');
    const yamlish = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.array(fc.constantFrom('train:', '  steps: 5', 'out: x', '- a', '&a [*a]', '{', '}', ': :', '"', "'", '\t', 'model: {config: c.json}', '!!binary', '<<: *x', '---'), { maxLength: 12 }).map((l) => l.join('\n')),
    );
    fc.assert(fc.property(yamlish, (text) => {
      fs.writeFileSync(file(), text);
      outcome(t, () => readConfigFile(file()), (e) => e.oneLine().includes(file()) || !!e.message);
    }), { seed: SEED, numRuns: runs(300) });
  });
});

describe('plan specs', () => {
  const FIELDS: [string, string][] = [
    ['model', 'layers'], ['model', 'hidden'], ['model', 'heads'], ['model', 'kv_heads'], ['model', 'experts'], ['model', 'top_k'],
    ['model', 'expert_ffn'], ['model', 'vocab'], ['model', 'dense_layers'], ['model', 'shared_experts'], ['model', 'attention'],
    ['hardware', 'devices'], ['hardware', 'gemm_eff'], ['hardware', 'intra_gbps'], ['hardware', 'hbm_gb'], ['hardware', 'devices_per_node'],
    ['hardware', 'coll_latency'], ['hardware', 'peak_bf16_tflops'],
    ['parallel', 'tp'], ['parallel', 'pp'], ['parallel', 'ep'], ['parallel', 'etp'], ['parallel', 'cp'], ['parallel', 'vpp'], ['parallel', 'dp'],
    ['parallel', 'zero'], ['parallel', 'offload'], ['parallel', 'recompute'], ['parallel', 'schedule'],
    ['training', 'seq_len'], ['training', 'micro_batch'], ['training', 'global_batch'], ['training', 'load_imbalance'],
    ['training', 'expert_load_cv'], ['training', 'dispatch_bytes'], ['training', 'node_limit'], ['training', 'precision'],
  ];
  const plausible = fc.oneof(badValue, fc.constantFrom(1, 2, 4, 8, 16, 32, 64, 0.3, 0.9, 'selective', 'full', 'interleaved', 'fp8', 'mla', 'gqa'));
  const baseSpec = () => ({
    model: { preset: 'mixtral-8x7b' }, hardware: { preset: 'h100', devices: 16 },
    parallel: { tp: 2, pp: 2, ep: 4 }, training: { seq_len: 4096, global_batch: 64 },
  } as Record<string, Record<string, unknown>>);
  it('simulate (and sometimes search): finite outputs, or one line naming the field', () => {
    const t = tally('plan-spec');
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...FIELDS), plausible), { minLength: 1, maxLength: 3 }), fc.boolean(), (edits, doSearch) => {
      const raw = baseSpec();
      for (const [[s, k], v] of edits) raw[s][k] = v;
      const r = outcome(t, () => {
        const spec = resolveSpec(structuredClone(raw), 'fuzz.yaml', { template: doSearch });
        if (!doSearch) return simJson(simulate(spec));
        if (spec.devices > 256) return null; // a search of a large cluster is bounded but slow: simulate covers it
        const res = search(spec, { top: 3 });
        return res.top.map((x) => simJson(x.result));
      }, (e) => !!e.file);
      if (r) expect(allFinite(r), JSON.stringify(edits)).toBe(true);
    }), { seed: SEED, numRuns: runs(250) });
  });
});

describe('CLI flags and token ids', () => {
  const flagValue = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('1', '2', '4', '8', '16', '64', 'selective', 'full', 'bf16') },
    fc.constantFrom('', '0', '1', '2', '-1', '1e3', '1e308', '0x10', '1.5', 'abc', 'NaN', 'Infinity', '9007199254740993', '99999999999999999999', ' 4', '4 ', '+4'),
    fc.integer({ min: 0, max: 64 }).map(String),
    fc.string({ maxLength: 5 }),
  );
  it('plan simulate / search flags: exit 0 with finite output, or exit 1 with one line', async () => {
    const spec = path.join(tmp(), 'spec.yaml');
    fs.writeFileSync(spec, 'model: mixtral-8x7b\nhardware: { preset: h100, devices: 16 }\nparallel: { tp: 2, pp: 2, ep: 4 }\ntraining: { seq_len: 4096, global_batch: 64 }\n');
    const FLAGS = ['--tp', '--pp', '--ep', '--etp', '--cp', '--vpp', '--dp', '--zero', '--devices', '--seq-len', '--micro-batch', '--global-batch', '--recompute', '--schedule', '--precision', '--top'];
    await fc.assert(fc.asyncProperty(fc.constantFrom('simulate', 'search'), fc.array(fc.tuple(fc.constantFrom(...FLAGS), flagValue), { minLength: 1, maxLength: 3 }), async (sub, flags) => {
      const argv = ['plan', sub, spec, '--json', ...flags.flat()];
      const t0 = Date.now();
      const r = await runCli(argv);
      expect(Date.now() - t0, argv.join(' ')).toBeLessThan(10000);
      tally('plan-flags')[r.code === 0 ? 'ok' : 'refused']++;
      if (r.code === 0) expect(r.out, argv.join(' ')).not.toMatch(/NaN|Infinity/);
      else {
        expect(r.code, argv.join(' ') + r.err).toBe(1);
        // search prints "no valid layout" on stdout with exit 1; any other refusal is one stderr line
        if (r.err) expect(r.err.trimEnd().split('\n'), argv.join(' ')).toHaveLength(1);
        expect(r.err).not.toMatch(/\n\s+at /);
      }
    }), { seed: SEED, numRuns: runs(60) });
  }, 120000);
  it('generate --ids and sampling flags on the tiny model: tokens, or exit 1 with one line', async () => {
    const id = fc.oneof(fc.integer({ min: 0, max: 511 }).map(String), flagValue, fc.constantFrom('512', '4294967297', '-0', '1.0', '2e0'));
    const FLAGS = ['--temperature', '--top-k', '--top-p', '--seed'];
    await fc.assert(fc.asyncProperty(fc.array(id, { minLength: 0, maxLength: 5 }), fc.array(fc.tuple(fc.constantFrom(...FLAGS), flagValue), { maxLength: 2 }), async (ids, flags) => {
      const argv = ['generate', TINY, '--ids', ids.join(','), '--max-new-tokens', '2', '--json', ...flags.flat()];
      const t0 = Date.now();
      const r = await runCli(argv);
      expect(Date.now() - t0, argv.join(' ')).toBeLessThan(10000);
      tally('generate-flags')[r.code === 0 ? 'ok' : 'refused']++;
      if (r.code === 0) expect(r.out).not.toMatch(/NaN/);
      else {
        expect(r.code, argv.join(' ') + r.err).toBe(1);
        expect(r.err.trimEnd().split('\n'), argv.join(' ')).toHaveLength(1);
      }
    }), { seed: SEED, numRuns: runs(40) });
  }, 120000);
});

describe('safetensors headers', () => {
  const entry = fc.record({
    dtype: fc.oneof(fc.constantFrom('F32', 'BF16', 'F16', 'I32', 'I64', 'U8', 'F64', 'BOOL'), fc.string({ maxLength: 4 })),
    shape: fc.oneof(fc.array(fc.integer({ min: -1, max: 6 }), { maxLength: 3 }), badValue),
    data_offsets: fc.oneof(fc.tuple(fc.integer({ min: -2, max: 200 }), fc.integer({ min: -2, max: 200 })), badValue),
  }, { requiredKeys: [] });
  it('open and read every tensor, or one line naming the file', () => {
    const t = tally('safetensors');
    const file = () => path.join(tmp(), 'fuzz.safetensors');
    fc.assert(fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), entry, { maxKeys: 3 }), fc.nat({ max: 160 }), fc.option(fc.nat({ max: 40 })), (hdr, dataLen, cut) => {
      const json = Buffer.from(JSON.stringify(hdr));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      let bytes = Buffer.concat([len, json, Buffer.alloc(dataLen, 7)]);
      if (cut !== null) bytes = bytes.subarray(0, Math.max(0, bytes.length - cut));
      fs.writeFileSync(file(), bytes);
      outcome(t, () => {
        const f = SafetensorsFile.open(file());
        try {
          for (const n of f.names()) f.readRaw(n);
        } finally {
          f.close();
        }
      }, (e) => e.oneLine().includes(file()));
    }), { seed: SEED, numRuns: runs(300) });
  });
});
