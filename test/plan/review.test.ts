/** Regression tests for defects found reviewing the planner (bad input, edge cases). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { captureOutput } from '../helpers.js';

const io = captureOutput();

const dir = mkdtempSync(join(tmpdir(), 'moekit-plan-review-'));
let n = 0;
const file = (text: string, name = `spec${n++}.yaml`) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const MIXTRAL = 'model: mixtral-8x7b\nhardware: { preset: h100, devices: 16 }\nparallel: { tp: 2, pp: 2, ep: 4 }\ntraining: { seq_len: 4096, global_batch: 64 }\n';

describe('plan CLI flag errors', () => {
  it('unknown or malformed flags give one line, not a stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['plan', 'simulate', file(MIXTRAL), '--bogus'], /^moekit: plan simulate: Unknown option '--bogus'/],
      [['plan', 'search', file(MIXTRAL), '--top'], /^moekit: plan search: Option '--top <value>' argument missing/],
      [['plan', 'simulate', file(MIXTRAL), '--tp', '-1'], /^moekit: plan simulate: Option '--tp' argument is ambiguous/],
      [['plan', 'calibrate', '--x'], /^moekit: plan calibrate: Unknown option '--x'/],
      [['plan', 'presets', '--x'], /^moekit: plan presets: Unknown option '--x'/],
      [['plan', 'op', 'moe-layer', '--foo'], /^moekit: plan op: Unknown option '--foo'/],
    ];
    for (const [argv, re] of cases) {
      io.stderr = '';
      expect(await main(argv)).toBe(1);
      expect(io.stderr).toMatch(re);
      expect(io.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('model: { config: PATH }', () => {
  const specWith = (cfg: string) => file(`model: { config: ${cfg} }\nhardware: { preset: h100, devices: 8 }\ntraining: { seq_len: 2048, global_batch: 64 }\n`);
  it('a config.json that is null, a list or not a path fails on one line', async () => {
    const nul = file('null', 'null-config.json');
    const list = file('[1, 2]', 'list-config.json');
    for (const [spec, re] of [
      // read by the engine's reader (src/io/config.ts), so its messages
      [specWith(nul), /^moekit: .*null-config\.json: config must be a JSON object\n$/],
      [specWith(list), /^moekit: .*list-config\.json: config must be a JSON object\n$/],
      [specWith('5'), /^moekit: model\.config: must be a path to a Hugging Face config\.json \(got 5\)\n$/],
      [specWith(join(dir, 'missing.json')), /^moekit: .*missing\.json: no such model directory or config file\n$/],
      [specWith(file('{"model_type": "llama", "hidden_size": 64}', 'llama-config.json')), /^moekit: .*llama-config\.json: unsupported architecture 'llama'; supported: mixtral, .*\n$/],
    ] as [string, RegExp][]) {
      io.stderr = '';
      expect(await main(['plan', 'simulate', spec])).toBe(1);
      expect(io.stderr).toMatch(re);
    }
  });
  it('ERNIE 4.5 MoE field names (moe_num_experts, moe_k, moe_num_shared_experts, moe_layer_start_index) are read', async () => {
    const { resolveModel } = await import('../../src/plan/spec.js');
    const { paramCounts } = await import('../../src/plan/flops.js');
    const m = resolveModel({ config: join(__dirname, '../../fixtures/configs/ernie-4.5-21b-a3b.json') });
    expect(m).toMatchObject({ experts: 64, top_k: 6, shared_experts: 2, expert_ffn: 1536, dense_layers: 1, layers: 28 });
    const pc = paramCounts(m);
    expect(pc.total / 1e9).toBeCloseTo(21.8, 1); // ERNIE-4.5-21B-A3B
    expect(pc.active / 1e9).toBeGreaterThan(3);
    expect(pc.active / 1e9).toBeLessThan(3.5);
    const tiny = resolveModel({ config: join(__dirname, '../../fixtures/hf-tiny-moe/ernie4_5_moe/config.json') });
    expect(tiny).toMatchObject({ experts: 8, top_k: 2, shared_experts: 1, dense_layers: 1 });
  });
  it('every architecture in the fixtures simulates and searches as a MoE', async () => {
    const { readdirSync } = await import('node:fs');
    const root = join(__dirname, '../../fixtures');
    const cfgs = [
      ...readdirSync(join(root, 'configs')).filter((f) => f.endsWith('.json')).map((f) => join(root, 'configs', f)),
      ...readdirSync(join(root, 'hf-tiny-moe'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(root, 'hf-tiny-moe', d.name, 'config.json')),
    ];
    expect(cfgs.length).toBeGreaterThanOrEqual(18);
    const { resolveModel } = await import('../../src/plan/spec.js');
    let refused = 0;
    for (const c of cfgs) {
      // what the planner does not model, refused on one line: Llama 4 Maverick's (and the tiny llama4_text's) dense
      // layers between MoE ones, Qwen3-Next's linear-attention layers, JetMoE's mixture of attention heads
      const why = /interleaved dense\/MoE layers are not modelled|(Gated DeltaNet linear attention|lightning linear attention|Mamba-2 state-space mixers): the planner's cost model has attention layers only|shortcut-connected MoE layers .* are not modelled|a mixture of attention heads .*: the planner's cost model has dense attention projections only/;
      let shape;
      try { shape = resolveModel({ config: c }); } catch (e) {
        expect(String(e), c).toMatch(why);
        io.stderr = '';
        expect(await main(['plan', 'simulate', specWith(c)]), c).toBe(1);
        expect(io.stderr, c).toMatch(why);
        refused++;
        continue;
      }
      expect(shape.experts, c).toBeGreaterThan(0);
      io.stdout = '';
      expect(await main(['plan', 'simulate', specWith(c), '--json']), c).toBe(0);
      const j = JSON.parse(io.stdout);
      expect(Number.isFinite(j.step_time_s), c).toBe(true);
      io.stdout = '';
      await main(['plan', 'search', specWith(c), '--json', '--top', '1']);
      expect(JSON.parse(io.stdout).layouts_enumerated, c).toBeGreaterThan(0);
    }
    // llama-4-maverick, llama4_text, qwen3-next-80b-a3b, qwen3_next, minimax-text-01, minimax, longcat-flash-chat, longcat_flash,
    // granite-4.0-h-small, -tiny, granitemoehybrid, jetmoe-8b, jetmoe (+ later families)
    expect(refused).toBeGreaterThanOrEqual(13);
  });
  it('interleaved dense/MoE layers are refused on one line', async () => {
    const cfg = file(JSON.stringify({ model_type: 'ernie4_5_moe', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 4, vocab_size: 100, intermediate_size: 128, rope_theta: 10000, moe_num_experts: 4, moe_k: 2, moe_intermediate_size: 32, moe_layer_interval: 2 }), 'ernie-interval.json');
    expect(await main(['plan', 'simulate', specWith(cfg)])).toBe(1);
    // ERNIE's layers (l + 1) % 2 == 0 are MoE: 1 and 3, so dense layer 2 sits between them
    expect(io.stderr).toMatch(/ernie-interval\.json: dense layer 2 after MoE layer 1: interleaved dense\/MoE layers are not modelled \(dense layers first, then MoE\)\n$/);
  });
});

describe('hardware overrides that made the step Infinity or NaN', () => {
  it('host_gbps 0 with offload, fp8_gemm_eff 0 with FP8: one-line errors', async () => {
    const off = file(MIXTRAL.replace('devices: 16', 'devices: 16, host_gbps: 0').replace('ep: 4', 'ep: 4, offload: 0.5'));
    expect(await main(['plan', 'simulate', off])).toBe(1);
    expect(io.stderr).toBe('moekit: hardware.host_bw: must be positive to offload activations (parallel.offload 0.5)\n');
    io.stderr = '';
    expect(await main(['plan', 'search', off])).toBe(1);
    expect(io.stderr).toMatch(/^moekit: hardware\.host_bw:/);
    io.stderr = '';
    const f8 = file(MIXTRAL.replace('devices: 16', 'devices: 16, fp8_gemm_eff: 0'));
    expect(await main(['plan', 'simulate', f8, '--precision', 'fp8'])).toBe(1);
    expect(io.stderr).toMatch(/^moekit: hardware\.fp8_gemm_eff: must be positive when peak_fp8 > 0/);
    // no offload: a zero host link is fine
    io.stdout = '';
    expect(await main(['plan', 'simulate', file(MIXTRAL.replace('devices: 16', 'devices: 16, host_gbps: 0')), '--json'])).toBe(0);
    expect(Number.isFinite(JSON.parse(io.stdout).step_time_s)).toBe(true);
  });
});

describe('search --top', () => {
  it('--top 0 is an error, not "no layout fits"', async () => {
    expect(await main(['plan', 'search', file(MIXTRAL), '--top', '0'])).toBe(1);
    expect(io.stderr).toBe('moekit: --top: must be at least 1 (got 0)\n');
    expect(io.stdout).not.toMatch(/no layout fits/);
  });
});

describe('sweep section validation', () => {
  const QWEN = 'model: qwen3-30b-a3b\nhardware: { preset: h100, devices: 16 }\ntraining: { seq_len: 4096, global_batch: 64 }\n';
  it('paired top_k > experts, unknown keys, wrong types: one-line errors naming the field', async () => {
    const cases: [string, string][] = [
      ['sweep: { experts: [4, 128], top_k: [8, 8], expert_ffn: [768, 768], granularity: true }\n', 'moekit: sweep.top_k: top_k 8 exceeds experts 4 (pair 0)\n'],
      ['sweep: { layer: [48, 52] }\n', "moekit: sweep.layer: unknown sweep field 'layer' (known: layers, hidden, experts, top_k, expert_ffn, granularity, total_params_b, active_params_b, quality_tokens)\n"],
      ['sweep: { experts: [64], granularity: "yes" }\n', 'moekit: sweep.granularity: must be true or false (got "yes")\n'],
      ['sweep: [48, 52]\n', 'moekit: sweep: must be a mapping (layers, hidden, experts, top_k, expert_ffn, ...)\n'],
    ];
    for (const [sw, msg] of cases) {
      io.stderr = '';
      expect(await main(['plan', 'sweep', file(QWEN + sw)])).toBe(1);
      expect(io.stderr).toBe(msg);
    }
  });
});

describe('sweep from a dense base model', () => {
  const DENSE = 'model: { layers: 4, hidden: 512, heads: 8, vocab: 1000, dense_ffn: 2048 }\nhardware: { preset: h100, devices: 8 }\ntraining: { seq_len: 512, global_batch: 8 }\n';
  it('deeper dense shapes stay dense (all layers dense), not MoE layers with 0 experts', async () => {
    const { sweepShapes } = await import('../../src/plan/sweep.js');
    const { loadSpec } = await import('../../src/plan/spec.js');
    const shapes = sweepShapes(loadSpec(file(DENSE + 'sweep: { layers: [4, 6] }\n'), { template: true }));
    expect(shapes.map((s) => [s.layers, s.dense_layers])).toEqual([[4, 4], [6, 6]]);
    expect(await main(['plan', 'sweep', file(DENSE + 'sweep: { layers: [4, 6] }\n'), '--json'])).toBe(0);
    const rows = JSON.parse(io.stdout).rows as { shape: { layers: number }; best: { tokens_per_s: number } }[];
    const tps = (L: number) => rows.find((r) => r.shape.layers === L)!.best.tokens_per_s;
    expect(tps(6)).toBeLessThan(tps(4) * 0.75); // 1.5x the layers: much slower (was nearly equal)
  });
  it('experts swept from a dense base make every layer MoE; top_k is required', async () => {
    const { sweepShapes } = await import('../../src/plan/sweep.js');
    const { loadSpec } = await import('../../src/plan/spec.js');
    const shapes = sweepShapes(loadSpec(file(DENSE + 'sweep: { experts: [8], top_k: [2], expert_ffn: [512] }\n'), { template: true }));
    expect(shapes[0]).toMatchObject({ experts: 8, top_k: 2, dense_layers: 0 });
    expect(await main(['plan', 'sweep', file(DENSE + 'sweep: { experts: [8], expert_ffn: [512] }\n')])).toBe(1);
    expect(io.stderr).toBe('moekit: sweep.top_k: needed: the base model is dense (top_k 0) and the sweep gives experts 8\n');
  });
  it('quality_tokens on a dense base is an error, not granularity Infinity / null in the output', async () => {
    expect(await main(['plan', 'sweep', file(DENSE + 'sweep: { layers: [4, 6], quality_tokens: 1e9 }\n'), '--json'])).toBe(1);
    expect(io.stderr).toMatch(/^moekit: sweep\.quality_tokens: time-to-quality .* needs a MoE base model/);
  });
});

describe('export launcher world size', () => {
  const launch = async (devices: number) => {
    io.stdout = '';
    expect(await main(['plan', 'export', file(MIXTRAL), '--engine', 'megatron', '--json', '--devices', String(devices), '--tp', '1', '--pp', '1', '--ep', '1', '--global-batch', '48'])).toBe(0);
    const j = JSON.parse(io.stdout) as { command: string; notes: string[] };
    const [, nn, np] = /--nnodes (\d+) --nproc-per-node (\d+)/.exec(j.command)!;
    return { nodes: Number(nn), perNode: Number(np), notes: j.notes };
  };
  it('nnodes x nproc-per-node equals the device count (1 device, 6, 12, 16)', async () => {
    for (const d of [1, 6, 12, 16, 24]) {
      const l = await launch(d);
      expect(l.nodes * l.perNode, `devices ${d}`).toBe(d);
      expect(l.perNode).toBeLessThanOrEqual(8);
    }
    expect((await launch(12)).notes.join('\n')).toMatch(/12 devices are not a multiple of 8 per node: launched as 2 nodes x 6 processes/);
    expect((await launch(16)).perNode).toBe(8);
  });
});

describe('boolean spec fields', () => {
  it('tp_overlap and tied_embeddings must be booleans ("no" used to read as true)', async () => {
    expect(await main(['plan', 'simulate', file(MIXTRAL.replace('ep: 4', 'ep: 4, tp_overlap: "no"'))])).toBe(1);
    expect(io.stderr).toBe('moekit: parallel.tp_overlap: must be true or false (got "no")\n');
    io.stderr = '';
    expect(await main(['plan', 'simulate', file(MIXTRAL.replace('model: mixtral-8x7b', 'model: { preset: mixtral-8x7b, tied_embeddings: "false" }'))])).toBe(1);
    expect(io.stderr).toBe('moekit: model.tied_embeddings: must be true or false (got "false")\n');
    io.stdout = '';
    expect(await main(['plan', 'simulate', file(MIXTRAL.replace('ep: 4', 'ep: 4, tp_overlap: false')), '--json'])).toBe(0);
    expect(JSON.parse(io.stdout).parallel.tp_overlap).toBe(false);
  });
});

describe('search with no valid layout', () => {
  const TINY = 'model: { layers: 1, hidden: 384, heads: 3, vocab: 1000, experts: 4, top_k: 2, expert_ffn: 256 }\nhardware: { preset: h100, devices: 16 }\ntraining: { seq_len: 512, global_batch: 3 }\n';
  it('says why instead of "no layout fits in memory"', async () => {
    expect(await main(['plan', 'search', file(TINY)])).toBe(1);
    expect(io.stdout).toMatch(/no valid layout: none of the 12 layouts suits the batch \(e\.g\. TP1 PP1 EP1 DP16: global_batch 3 not divisible by micro_batch\*dp = 16\)/);
    expect(io.stdout).not.toMatch(/fits in memory\./);
    io.stdout = '';
    expect(await main(['plan', 'search', file(TINY), '--schedule', 'dualpipe', '--json'])).toBe(1);
    const j = JSON.parse(io.stdout);
    expect(j.layouts_enumerated).toBe(0);
    expect(j.no_valid_layout).toMatch(/^no \(tp, cp, pp, vpp, ep, etp\) layout of 1 layers, 3 heads, 4 experts passes/);
  });
});

describe('empty YAML parallel section', () => {
  it('`parallel:` with nothing under it means the defaults, a scalar is an error', async () => {
    const spec = (par: string) => file(`model: mixtral-8x7b\nhardware: { preset: h100, devices: 8 }\nparallel:${par}\ntraining: { seq_len: 4096, global_batch: 64 }\n`);
    expect(await main(['plan', 'simulate', spec(''), '--json'])).toBe(0);
    expect(JSON.parse(io.stdout).parallel).toMatchObject({ tp: 1, pp: 1, ep: 1, dp: 8 });
    expect(await main(['plan', 'simulate', spec(' 4'), '--json'])).toBe(1);
    expect(io.stderr).toBe('moekit: parallel: must be a mapping (got 4)\n');
  });
});

describe('usage text', () => {
  it('lists every documented override flag, --model included', async () => {
    await main(['plan', '--help']);
    for (const f of ['--hardware', '--devices', '--model', '--tp', '--pp', '--vpp', '--ep', '--etp', '--cp', '--dp', '--zero', '--schedule', '--recompute', '--seq-len', '--micro-batch', '--global-batch', '--precision']) {
      expect(io.stdout, f).toMatch(new RegExp(`${f}(\\s|$)`, 'm'));
    }
  });
});

describe('sweep text output', () => {
  it('a shape with no fitting layout reads "no fitting layout", not "Infinity days"', async () => {
    const spec = file('model: qwen3-30b-a3b\nhardware: { preset: h100, devices: 1 }\ntraining: { seq_len: 4096, global_batch: 1 }\nsweep: { layers: [48, 4], quality_tokens: 1e12 }\n');
    expect(await main(['plan', 'sweep', spec])).toBe(0);
    expect(io.stdout).not.toMatch(/Infinity|NaN/);
    expect(io.stdout).toMatch(/2 L48 H2048 E128 K8 I768 .* 1\.00T tokens  no fitting layout/);
  });
});

describe('tied embeddings', () => {
  it('the LM head matmul counts in the model FLOPs whether or not its weight is tied', async () => {
    const { paramCounts, modelFlopsPerToken } = await import('../../src/plan/flops.js');
    const { modelPreset } = await import('../../src/plan/models.js');
    const m = modelPreset('qwen3-30b-a3b');
    const tied = { ...m, tied_embeddings: true };
    expect(paramCounts(tied).active_matmul).toBe(paramCounts(m).active_matmul);
    expect(modelFlopsPerToken(tied, 4096)).toBe(modelFlopsPerToken(m, 4096));
    expect(paramCounts(tied).total).toBe(paramCounts(m).total - m.vocab * m.hidden);
  });
});

describe('tied embeddings memory', () => {
  it('with pp > 1 the last stage holds the tied LM head weight; with pp = 1 one copy', async () => {
    const { localParams } = await import('../../src/plan/memory.js');
    const { modelPreset } = await import('../../src/plan/models.js');
    const m = modelPreset('qwen3-30b-a3b');
    const tied = { ...m, tied_embeddings: true };
    const par = (pp: number) => ({ tp: 1, pp, vpp: 1, ep: 1, etp: 1, cp: 1, dp: 1, zero: 1 as const, recompute: 'none' as const, offload: 0, schedule: '1f1b' as const, ep_overlap: 'none' as const, a2a: 'flat' as const, tp_overlap: true, dispatcher: 'alltoall' as const, shared_expert_overlap: false, dp_overlap: true, cuda_graphs: false });
    // pp 2 with an MTP module: the last stage (head + MTP) is the larger edge and holds the V x h head either way
    const mtp = { ...m, mtp_layers: 1, dense_layers: 0 };
    expect(localParams({ ...mtp, tied_embeddings: true }, par(2)).dense).toBe(localParams(mtp, par(2)).dense);
    expect(localParams(tied, par(2)).dense).toBe(localParams(m, par(2)).dense);
    // pp 1: untied holds embedding + head, tied only one of them
    expect(localParams(m, par(1)).dense - localParams(tied, par(1)).dense).toBe(m.vocab * m.hidden);
  });
});

describe('model.preset of the wrong type', () => {
  it('names model.preset, not model.layers', async () => {
    expect(await main(['plan', 'simulate', file('model: { preset: 5 }\nhardware: { preset: h100, devices: 8 }\ntraining: { seq_len: 4096, global_batch: 64 }\n')])).toBe(1);
    expect(io.stderr).toBe('moekit: model.preset: must be a model preset name (got 5)\n');
  });
});

describe('layout flags on search and sweep', () => {
  it('--tp/--ep/--pp pin the searched layouts instead of being silently ignored', async () => {
    const spec = file('model: qwen3-30b-a3b\nhardware: { preset: h100, devices: 12 }\ntraining: { seq_len: 4096, global_batch: 48 }\n');
    expect(await main(['plan', 'search', spec, '--json', '--top', '100', '--tp', '2', '--ep', '4'])).toBe(0);
    const j = JSON.parse(io.stdout);
    expect(j.top.length).toBeGreaterThan(0);
    for (const r of j.top) expect(r.parallel).toMatchObject({ tp: 2, ep: 4 });
    io.stdout = '';
    const sw = file('model: qwen3-30b-a3b\nhardware: { preset: h100, devices: 12 }\ntraining: { seq_len: 4096, global_batch: 48 }\nsweep: { layers: [24, 48] }\n');
    expect(await main(['plan', 'sweep', sw, '--json', '--pp', '3'])).toBe(0);
    for (const r of JSON.parse(io.stdout).rows) expect(r.best.layout).toMatch(/ PP3 /);
  });
});

describe('interleaved schedule with vpp 1', () => {
  it('is 1F1B: same step and memory (it held 2p-1 micro-batches of activations)', async () => {
    io.stdout = '';
    await main(['plan', 'simulate', file(MIXTRAL), '--json', '--pp', '4', '--tp', '1', '--global-batch', '64']);
    const a = JSON.parse(io.stdout);
    io.stdout = '';
    await main(['plan', 'simulate', file(MIXTRAL), '--json', '--pp', '4', '--tp', '1', '--global-batch', '64', '--schedule', 'interleaved']);
    const b = JSON.parse(io.stdout);
    expect(b.parallel.schedule).toBe('interleaved');
    expect(b.memory_gib_per_device).toBeCloseTo(a.memory_gib_per_device, 9);
    expect(b.step_time_s).toBeCloseTo(a.step_time_s, 9);
  });
});

describe('--recompute with one module', () => {
  it('--recompute moe_act is the module list [moe_act] (it was rejected as not none/selective/full)', async () => {
    expect(await main(['plan', 'simulate', file(MIXTRAL), '--json', '--recompute', 'moe_act'])).toBe(0);
    expect(JSON.parse(io.stdout).parallel.recompute).toEqual(['moe_act']);
    io.stdout = '';
    expect(await main(['plan', 'simulate', file(MIXTRAL), '--json', '--recompute', 'full'])).toBe(0);
    expect(JSON.parse(io.stdout).parallel.recompute).toBe('full');
    expect(await main(['plan', 'simulate', file(MIXTRAL), '--recompute', 'foo'])).toBe(1);
    expect(io.stderr).toBe("moekit: --recompute: must be none, selective, full, or module names separated by commas (attention, core_attn, mla_up, mlp, moe, moe_act, layernorm); got 'foo'\n");
  });
});

describe('spec recompute with one module', () => {
  it('recompute: moe_act in the spec reads as [moe_act]', async () => {
    expect(await main(['plan', 'simulate', file(MIXTRAL.replace('ep: 4', 'ep: 4, recompute: moe_act')), '--json'])).toBe(0);
    expect(JSON.parse(io.stdout).parallel.recompute).toEqual(['moe_act']);
    expect(await main(['plan', 'simulate', file(MIXTRAL.replace('ep: 4', 'ep: 4, recompute: bogus'))])).toBe(1);
    expect(io.stderr).toMatch(/^moekit: parallel\.recompute: must be one of none, selective, full, attention, /);
  });
});

describe('sweep budget range', () => {
  it('[max, min] is an error, not a silent "0 of N shapes in budget"', async () => {
    const spec = file('model: qwen3-30b-a3b\nhardware: { preset: h100, devices: 8 }\ntraining: { seq_len: 4096, global_batch: 64 }\nsweep: { layers: [24, 48], total_params_b: [40, 10] }\n');
    expect(await main(['plan', 'sweep', spec])).toBe(1);
    expect(io.stderr).toBe('moekit: sweep.total_params_b: must be [min, max] in billions: min 40 > max 10\n');
  });
});

describe('vpp without a pipeline', () => {
  it('vpp > 1 with pp 1 is an error (Megatron refuses it; export emitted virtual stages for pp 1)', async () => {
    expect(await main(['plan', 'simulate', file(MIXTRAL), '--pp', '1', '--vpp', '2'])).toBe(1);
    expect(io.stderr).toBe('moekit: parallel.vpp: vpp 2 needs pp > 1\n');
  });
});

describe('flags of another subcommand', () => {
  it('--top outside search and --engine outside export are errors, not ignored', async () => {
    expect(await main(['plan', 'simulate', file(MIXTRAL), '--top', '3'])).toBe(1);
    expect(io.stderr).toBe('moekit: --top: only for plan search, not plan simulate\n');
    io.stderr = '';
    expect(await main(['plan', 'search', file(MIXTRAL), '--engine', 'megatron'])).toBe(1);
    expect(io.stderr).toBe('moekit: --engine: only for plan export, not plan search\n');
  });
});

describe('FP8 on hardware without FP8 GEMMs', () => {
  it('is an error (GEMMs ran at the BF16 rate while memory and dispatch were modelled in FP8)', async () => {
    const spec = file('model: mixtral-8x7b\nhardware: { preset: 910b, devices: 16 }\nparallel: { tp: 2, pp: 2, ep: 4 }\ntraining: { seq_len: 4096, global_batch: 64, precision: fp8 }\n');
    expect(await main(['plan', 'simulate', spec])).toBe(1);
    expect(io.stderr).toBe('moekit: training.precision: fp8 needs FP8 GEMMs: 910b has none (peak_fp8 0); use bf16, or set hardware.peak_fp8_tflops\n');
    io.stdout = '';
    expect(await main(['plan', 'simulate', spec, '--precision', 'bf16', '--json'])).toBe(0);
    expect(Number.isFinite(JSON.parse(io.stdout).step_time_s)).toBe(true);
  });
});

describe('Qwen mlp_only_layers', () => {
  it('a leading prefix counts as dense layers, anything else is refused', async () => {
    const { resolveModel } = await import('../../src/plan/spec.js');
    const base = { model_type: 'qwen3_moe', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 4, vocab_size: 100, num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 32, intermediate_size: 128, rope_theta: 10000 };
    expect(resolveModel({ config: file(JSON.stringify({ ...base, mlp_only_layers: [1, 0] }), 'q-prefix.json') }).dense_layers).toBe(2);
    expect(() => resolveModel({ config: file(JSON.stringify({ ...base, mlp_only_layers: [3] }), 'q-last.json') })).toThrow(/dense layer 3 after MoE layer 0: interleaved dense\/MoE layers are not modelled/);
    expect(() => resolveModel({ config: file(JSON.stringify({ ...base, decoder_sparse_step: 2 }), 'q-step.json') })).toThrow(/dense layer 2 after MoE layer 1: interleaved/);
  });
});

describe('plan op flags of the other op', () => {
  it('--heads for moe-layer is an error, not ignored', async () => {
    expect(await main(['plan', 'op', 'moe-layer', '--tokens', '8', '--hidden', '64', '--experts', '4', '--top-k', '2', '--expert-ffn', '32', '--heads', '8'])).toBe(1);
    expect(io.stderr).toBe('moekit: --heads: not an option of plan op moe-layer (--tokens --hidden --experts --top-k --expert-ffn)\n');
    expect(await main(['plan', 'op', 'attention', '--batch', '1', '--seq', '128', '--hidden', '64', '--heads', '4', '--head-dim', '16', '--json'])).toBe(0);
  });
});
