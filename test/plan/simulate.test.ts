import { describe, expect, it } from 'vitest';
import { calibrationTable } from '../../src/cli/plan.js';
import { CALIBRATION, goodputFromInterruptions } from '../../src/plan/calibration.js';
import { allGather, epAllToAll, scaleUpBw } from '../../src/plan/comm.js';
import { hardwarePreset } from '../../src/plan/hardware.js';
import { bubbleTime, dpExposed, stageSplit } from '../../src/plan/schedule.js';
import { MOE_PHASES } from '../../src/plan/op.js';
import { simulate } from '../../src/plan/simulate.js';
import { resolveSpec } from '../../src/plan/spec.js';

/**
 * Calibration table: each row a published run (source and assumptions in src/plan/calibration.ts and docs/planner.md).
 * Target: MFU within 3 points, or throughput within 10%.
 */
/**
 * Known miss, held to its current error so a change that makes it worse fails (docs/planner.md says why):
 * Skywork-MoE is -4.6 MFU points with Megatron-LM's fp32 gradient reduction (the report states neither the layout nor
 * the gradient precision; with bf16 reduction it is -2.6).
 */
// Skywork: -4.6 points before issue 13, -5.9 with the global model of the reference set (per-expert GEMM launches at
// the fitted framework cost: 16 experts of 12,288 on 4 GPUs, 4 each); the 3-point target is missed, not moved
const KNOWN_MISSES: Record<string, number> = { 'skywork-moe': 0.06 };

// Every simulation runs inside a test, none at collection time: StrykerJS counts code run while a file is collected as
// covered by no test ("static"), and runs every test file for a mutant it reaches (docs/testing.md).
describe('calibration table', () => {
  for (const row of CALIBRATION) {
    it(`${row.name}: ${row.metric === 'mfu' ? 'MFU within 3 points' : 'throughput within 10%'}`, () => {
      const [r] = calibrationTable([row]);
      expect(r.id).toBe(row.id);
      expect(Math.abs(r.error)).toBeLessThanOrEqual(KNOWN_MISSES[r.id] ?? (r.metric === 'mfu' ? 0.03 : 0.1));
    });
  }
  it('all rows but the known miss are within the target', () => {
    const rows = calibrationTable();
    expect(rows.length).toBe(CALIBRATION.length);
    expect(rows.filter((r) => r.within).length).toBeGreaterThanOrEqual(rows.length - Object.keys(KNOWN_MISSES).length);
  });
  it('MLA down-projections run on the sequence-parallel shard: TP8 does not repeat them', () => {
    const spec = (tp: number) => resolveSpec({ model: 'pangu-ultra-moe', hardware: { preset: '910b', devices: 1024 }, parallel: { tp, pp: 16, ep: 32, etp: 1 }, training: { seq_len: 4096, global_batch: 512 } });
    const a = simulate(spec(4));
    const b = simulate(spec(8));
    // doubling TP halves the per-device attention work; compute per step must not grow by more than small-GEMM losses
    expect(b.breakdown.compute / a.breakdown.compute).toBeLessThan(1.12);
  });
  it('DeepSeek-V3 is compared on whole-run throughput: steady state x batch ramp-up x goodput, each stated', () => {
    const [r] = calibrationTable(CALIBRATION.filter((x) => x.id === 'deepseek-v3'));
    // the steady-state prediction alone is above the cost-accounting figure (1,543 t/s/GPU), the accounting brings it down
    expect(r.steady_tokens_per_s_per_device).toBeGreaterThan(1543);
    expect(r.predicted_tokens_per_s_per_device).toBeLessThan(r.steady_tokens_per_s_per_device);
    // ramp-up (3,072 -> 15,360 sequences over 469B of 14.8T tokens) costs well under 1%; goodput ~0.955
    expect(r.accounting_factor).toBeGreaterThan(0.94);
    expect(r.accounting_factor).toBeLessThan(0.96);
    // the row passes for any goodput up to ~0.958 (a loss of 4.2% of the run; 0.985 before issue 13, 0.965 before the
    // CUDA-graph model lowered the launch cost): the margin over the stated 0.955 is small, so it hinges on the hours
    // lost per interruption (goodput_hours_lost, chosen): docs/planner.md says so
    expect(r.steady_tokens_per_s_per_device * 0.958 / 1543 - 1).toBeLessThan(0.1);
    expect(r.steady_tokens_per_s_per_device * 0.962 / 1543 - 1).toBeGreaterThan(0.1);
  });
  it('goodput from the Llama 3 interruption rate: 16,384 GPUs x 54 days reproduces 466 interruptions', () => {
    // 466 interruptions x 1 h over 54 days = 36% of the time at 16K GPUs; 2,048 GPUs over 54.2 days: ~4.5%
    expect(goodputFromInterruptions(16384, 54, 1)).toBeCloseTo(1 - 466 / (54 * 24), 9);
    expect(goodputFromInterruptions(2048, 2664e3 / 2048 / 24, 1)).toBeCloseTo(0.955, 2);
  });
  it('Qwen3-235B (NeMo 25.09): token drop pads experts to capacity (no imbalance), no A2A overlap, BF16 payload', () => {
    const [r] = calibrationTable(CALIBRATION.filter((x) => x.id === 'qwen3-235b-a22b'));
    expect(r.fits).toBe(true);
    const spec = CALIBRATION.find((x) => x.id === 'qwen3-235b-a22b')!.spec as { training: Record<string, unknown>; parallel: Record<string, unknown> };
    expect(spec.training.load_imbalance).toBe(1);
    expect(spec.parallel.ep_overlap).toBe('none');
    // the all-to-all is still most of the step: EP32 over 4 nodes, flat, unhidden (dispatch and combine hold it)
    const s = simulate(resolveSpec(structuredClone(spec) as Record<string, unknown>));
    expect((s.breakdown.dispatch + s.breakdown.combine) / s.step_time_s).toBeGreaterThan(0.5);
  });
});

const mixtral = (parallel: Record<string, unknown>, training: Record<string, unknown> = {}) =>
  resolveSpec({ model: 'mixtral-8x22b', hardware: { preset: 'h100', devices: 128 }, parallel: { tp: 2, pp: 8, ep: 8, etp: 1, ...parallel }, training: { seq_len: 4096, global_batch: 256, ...training } });

describe('simulation behaviour', () => {
  it('the breakdown sums to the step time, and tokens/s = batch tokens / step', () => {
    const r = simulate(mixtral({}));
    const sum = Object.values(r.breakdown).reduce((a, b) => a + b, 0);
    expect(sum / r.step_time_s).toBeCloseTo(1, 9);
    expect(r.tokens_per_s * r.step_time_s).toBeCloseTo(256 * 4096, 3);
    expect(r.hfu).toBeGreaterThanOrEqual(r.mfu);
  });
  it('the MoE blocks are in the breakdown under the engine\'s phase names; a dense model has none', () => {
    const r = simulate(mixtral({}));
    const b = r.breakdown;
    expect(MOE_PHASES).toEqual(['route', 'dispatch', 'experts', 'combine']);
    for (const ph of MOE_PHASES) expect(b[ph], ph).toBeGreaterThan(0);
    // Mixtral 8x22B's coarse experts: the grouped GEMMs are most of the MoE block, the router a sliver
    expect(b.experts).toBeGreaterThan(10 * (b.route + b.dispatch + b.combine));
    expect(b.route).toBeLessThan(b.dispatch);
    // without EP the all-to-all vanishes; dispatch and combine keep only the permutation
    const noEp = simulate(mixtral({ ep: 1 })).breakdown;
    expect(noEp.dispatch + noEp.combine).toBeLessThan((b.dispatch + b.combine) / 3);
    // a dense model: no MoE phases, everything in compute
    const llama = simulate(resolveSpec({ model: 'llama3.1-405b', hardware: { preset: 'h100', devices: 1024 }, parallel: { tp: 8, pp: 16 }, training: { seq_len: 8192, global_batch: 512 } })).breakdown;
    for (const ph of MOE_PHASES) expect(llama[ph], ph).toBe(0);
    expect(llama.compute).toBeGreaterThan(0);
  });
  it('dispatch and combine hold the exposed EP all-to-all: none hidden without overlap, most with DualPipe', () => {
    const ds = (ep_overlap: string) => simulate(resolveSpec({ model: 'deepseek-v3', hardware: { preset: 'h800', devices: 2048 }, parallel: { pp: 16, ep: 64, schedule: 'dualpipe', ep_overlap, a2a: 'hierarchical' }, training: { seq_len: 4096, global_batch: 15360, precision: 'fp8', node_limit: 4 } }));
    const none = ds('none').breakdown;
    const dual = ds('dualpipe').breakdown;
    expect(dual.dispatch + dual.combine).toBeLessThan((none.dispatch + none.combine) / 3);
    // FP8 dispatch, BF16 combine: the forward dispatch all-to-all moves half the bytes of the combine
    expect(none.dispatch).toBeLessThan(none.combine);
    // experts and route are compute: overlap does not change them (DualPipe's SM reservation slows them by 132/112)
    expect(dual.experts / none.experts).toBeCloseTo(132 / 112, 6);
  });
  it('interleaving shrinks the bubble by v; full recompute costs time and raises HFU over MFU', () => {
    const a = simulate(mixtral({}));
    const b = simulate(mixtral({ vpp: 7 }));
    expect(b.breakdown.bubble).toBeLessThan(a.breakdown.bubble / 5);
    const c = simulate(mixtral({ recompute: 'full' }));
    expect(c.step_time_s).toBeGreaterThan(a.step_time_s);
    expect(c.hfu / c.mfu).toBeGreaterThan(1.2);
  });
  it('bubble formulas: 1F1B (p-1)(f+b), interleaved /v, DualPipe (p/2-1) f/2', () => {
    expect(bubbleTime('1f1b', 8, 1, 1, 2)).toBe(21);
    expect(bubbleTime('interleaved', 8, 7, 1, 2)).toBe(3);
    expect(bubbleTime('dualpipe', 16, 1, 1, 2)).toBe(3.5);
  });
  it('expert load imbalance slows the step (the most-loaded rank sets the pace)', () => {
    const even = simulate(mixtral({}, { load_imbalance: 1 }));
    const skew = simulate(mixtral({}, { load_imbalance: 1.5 }));
    expect(skew.step_time_s).toBeGreaterThan(even.step_time_s * 1.1);
  });
  it('hierarchical all-to-all beats flat when EP spans nodes; both equal on one node', () => {
    const hw = hardwarePreset('910b');
    const a = { tokens: 512, hidden: 7680, top_k: 8, ep: 32, stride: 1, bytes: 2, skew: 1 };
    expect(epAllToAll(hw, { ...a, hierarchical: true })).toBeLessThan(epAllToAll(hw, { ...a, hierarchical: false }));
    const one = { ...a, ep: 8 };
    expect(epAllToAll(hw, { ...one, hierarchical: true })).toBe(epAllToAll(hw, { ...one, hierarchical: false }));
  });
  it('MindSpeed hierarchical all-to-allv: all-gather over the outer EP group, so large EP costs more than deduplicated dispatch', () => {
    const hw = hardwarePreset('910b');
    const a = { tokens: 512, hidden: 7680, top_k: 8, stride: 1, bytes: 2, skew: 1, hierarchical: false };
    // TP8 x 4 nodes (Pangu): each token to the 3 other nodes once; close to node-deduplicated dispatch (2.7 nodes)
    const ag32 = epAllToAll(hw, { ...a, ep: 32, allgatherInner: 8 });
    const dd32 = epAllToAll(hw, { ...a, ep: 32, hierarchical: true });
    expect(ag32 / dd32).toBeGreaterThan(1);
    expect(ag32 / dd32).toBeLessThan(1.2);
    // TP8 x 16 nodes: all-gather sends every token to 15 nodes, deduplicated dispatch to ~6.5
    const ag128 = epAllToAll(hw, { ...a, ep: 128, allgatherInner: 8 });
    const dd128 = epAllToAll(hw, { ...a, ep: 128, hierarchical: true });
    expect(ag128 / dd128).toBeGreaterThan(1.8);
    // not applicable (ep not a multiple of the TP group, or strided by expert TP): falls back to flat
    expect(epAllToAll(hw, { ...a, ep: 36, allgatherInner: 8 })).toBe(epAllToAll(hw, { ...a, ep: 36 }));
  });
  it('full mesh (910B HCCS): a TP4 group uses 3 of 7 links, a switch (H100) gives the full rate to any group', () => {
    const asc = hardwarePreset('910b');
    expect(scaleUpBw(asc, 7)).toBe(392e9);
    expect(scaleUpBw(asc, 3)).toBe(168e9);
    const h100 = hardwarePreset('h100');
    expect(scaleUpBw(h100, 3)).toBe(450e9);
    // so an all-gather of the same bytes over 4 NPUs is slower than over 8 per byte moved
    const bytes = 1e9;
    expect(allGather(asc, bytes, 4, 1) / (3 / 4)).toBeGreaterThan(allGather(asc, bytes, 8, 1) / (7 / 8));
  });
  it('context parallelism: ring K/V exchange is hidden for GQA, exposed when K/V are wide and cross nodes', () => {
    const gqa = simulate(resolveSpec({ model: 'llama3.1-405b', hardware: { preset: 'h100', devices: 256 }, parallel: { tp: 8, pp: 16, cp: 2 }, training: { seq_len: 8192, global_batch: 64 } }));
    expect(gqa.breakdown.cp_comm).toBe(0);
    // MLA sends all 128 heads' K and V (d_qk 192 + d_v 128) around a 16-rank ring over 25 GB/s links
    const mla = simulate(resolveSpec({ model: 'deepseek-v3', hardware: { preset: 'a100', devices: 2048 }, parallel: { tp: 1, pp: 16, ep: 8, cp: 16 }, training: { seq_len: 4096, global_batch: 64 } }));
    expect(mla.breakdown.cp_comm).toBeGreaterThan(0);
  });
  it('a layout that cannot fit says so', () => {
    const r = simulate(resolveSpec({ model: 'deepseek-v3', hardware: { preset: 'h100', devices: 8 }, parallel: { ep: 8 }, training: { seq_len: 4096, global_batch: 64 } }));
    expect(r.fits).toBe(false);
    expect(r.memory_gib_per_device).toBeGreaterThan(1000);
  });
});

describe('DP communication overlap (Megatron --overlap-grad-reduce / --overlap-param-gather)', () => {
  it('one model chunk: the reduction hides behind the last backward, the all-gather behind the first forward', () => {
    expect(dpExposed('1f1b', 8, 1, 3, 2, 0.5, 1)).toBeCloseTo(2 + 1.5, 12);
    expect(dpExposed('1f1b', 8, 1, 0.5, 0.2, 0.5, 1)).toBe(0);
    // interleaved with v = 1 is plain 1F1B
    expect(dpExposed('interleaved', 8, 1, 3, 2, 0.5, 1)).toBe(dpExposed('1f1b', 8, 1, 3, 2, 0.5, 1));
  });
  it('interleaved: chunk j is final j*p chunk-backwards before the end, so only the last chunk\'s share stays exposed', () => {
    const G = 3, A = 2, tf = 0.5, tb = 1, p = 8, v = 4;
    const e = dpExposed('interleaved', p, v, G, A, tf, tb);
    // chunks 3..1 finish long before the end; chunk 0's quarter waits for its own last backward (tb/v)
    expect(e).toBeCloseTo(G / v - tb / v + (A / v - tf / v), 12);
    expect(e).toBeLessThan(dpExposed('1f1b', p, 1, G, A, tf, tb));
    // when the link is slow, the reductions queue up behind the first one, launched (3p + 1) chunk-backwards early
    const slow = dpExposed('interleaved', p, v, 100, 0, tf, tb);
    expect(slow).toBeCloseTo(100 - ((3 * p + 1) * tb) / v, 9);
  });
  it('fp32 gradients double the reduce-scatter bytes: a DP-heavy layout gets slower, never faster', () => {
    const raw = (g: string) => ({ model: 'mixtral-8x22b', hardware: { preset: 'h100', devices: 512 }, parallel: { tp: 2, pp: 4, ep: 8 }, training: { seq_len: 4096, global_batch: 256, grad_precision: g } });
    const a = simulate(resolveSpec(raw('bf16')));
    const b = simulate(resolveSpec(raw('fp32')));
    expect(b.breakdown.dp_comm).toBeGreaterThan(a.breakdown.dp_comm);
    expect(b.step_time_s).toBeGreaterThan(a.step_time_s);
    expect(b.memory_gib_per_device).toBeGreaterThan(a.memory_gib_per_device);
  });
});

describe('whole layers per pipeline stage (reported beside the step)', () => {
  it('the best split of whole layers: the last stage, holding the head, gets fewer', () => {
    expect(stageSplit(4, 10, 1, 0, 2)).toEqual({ layers: [3, 3, 3, 1], busiest_over_mean: 1 });
    expect(stageSplit(1, 61, 1, 0, 3)).toEqual({ layers: [61], busiest_over_mean: 1 });
    // 52 layers over 12 stages: some stage must hold 5 against a mean of 52.5/12
    const sk = stageSplit(12, 52, 1, 0, 0.5);
    expect(sk.layers.reduce((a, b) => a + b, 0)).toBe(52);
    expect(Math.max(...sk.layers)).toBe(5);
    expect(sk.busiest_over_mean).toBeCloseTo(5 / (52.5 / 12), 9);
  });
  it('the published layouts split evenly; Llama 3 takes one layer off its first and last stages, as its paper says', () => {
    const rows = Object.fromEntries(CALIBRATION.map((r) => [r.id, simulate(resolveSpec(structuredClone(r.spec)))]));
    for (const id of ['deepseek-v3', 'pangu-ultra-moe', 'mixtral-8x22b', 'qwen3-235b-a22b', 'llama3.1-405b']) {
      expect(rows[id].stage_split.busiest_over_mean, id).toBeLessThan(1.03);
    }
    expect(rows['llama3.1-405b'].stage_split.layers).toEqual([7, ...Array(14).fill(8), 7]);
    // DeepSeek-V3 and Pangu: 61 layers + MTP + head over 16 stages, the last stage keeps one layer besides them
    expect(rows['deepseek-v3'].stage_split.layers).toEqual([...Array(15).fill(4), 1]);
    // the assumed Skywork layout (52 layers on PP12) does not split evenly
    expect(rows['skywork-moe'].stage_split.busiest_over_mean).toBeGreaterThan(1.1);
  });
});
