/**
 * src/plan/simulate.ts worked by hand on tiny made-up models and round-number machines (fast: the mutation run executes
 * this file for every covered mutant; test/plan/simulate.test.ts checks the published runs, terms.test.ts the
 * communication terms on published shapes). Each case picks a machine on which one kind of cost survives, so each
 * expected number is a count or a short sum worked out in the comment:
 *  - LAUNCH: infinite peak, HBM and link bandwidths, no collective latency: every kernel costs exactly its launch
 *    (launchS = 1 s), so a layer's time is its kernel count;
 *  - BYTES: infinite peak, HBM 1 B/s: a kernel costs its bytes (a GEMM's max(F/P, act/BW) + W/BW is all its bytes);
 *  - FLOPS: peak 1 FLOP/s (GEMM and flash efficiencies 1), infinite HBM: a kernel costs its FLOPs;
 *  - and links of a few dozen B/s, so a collective of a tiny activation takes whole seconds.
 * Kernels per layer (forward / backward; a linear layer is 1 GEMM forward, dgrad + wgrad backward; FP8 adds a quantise
 * kernel to each):
 *   GQA attention  qkv, o, flash, norms            4 / 6
 *   dense FFN      fc1, swiglu, fc2                3 / 5
 *   MoE route      router GEMM, top-k              2 / 3
 *   dispatch       permute                         1 / 1
 *   experts        w13 (E/ep launches), swiglu, w2 2E/ep + 1 / 4E/ep + 1
 *   combine        unpermute                       1 / 1
 *   LM head        one linear                      1 / 2
 */
import { describe, expect, it } from 'vitest';
import { FITTED } from '../../src/plan/fitted.js';
import type { Hardware } from '../../src/plan/hardware.js';
import { memoryPerDevice } from '../../src/plan/memory.js';
import type { ModelShape } from '../../src/plan/models.js';
import { OP_CONSTANTS, type OpConstants } from '../../src/plan/op.js';
import {
  DEEPEP_COMM_SM_FRACTION, DUALPIPE_COMM_SM_FRACTION, EP_OVERLAP, GRAPH_LAUNCH_S, HOST_KERNEL_S, simulate, TP_EXPOSED, trainConstants,
  type Breakdown, type SimOptions,
} from '../../src/plan/simulate.js';
import type { Parallel, Training } from '../../src/plan/spec.js';
import { MoekitError } from '../../src/util/errors.js';

// ---------------------------------------------------------------------------------------------------------------------
// fixtures

const NO_MLA = { q_lora_rank: 0, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0 };
/**
 * Dense GQA: 2 layers, hidden 8, 2 query heads and 1 KV head of 4, FFN 16, vocab 16, untied. Parameters: attention
 * Q 8x8 + K,V 2x8x4 + O 8x8 = 64 + 64 + 64 = 192, FFN 3x8x16 = 384, embedding = head = 16x8 = 128.
 */
const D: ModelShape = {
  name: 'hand-dense', layers: 2, hidden: 8, heads: 2, kv_heads: 1, head_dim: 4, attention: 'gqa', ...NO_MLA, vocab: 16,
  dense_layers: 2, dense_ffn: 16, experts: 0, shared_experts: 0, top_k: 0, expert_ffn: 0, mtp_layers: 0, tied_embeddings: false,
};
/** MoE: D's first layer dense, the second MoE: 4 experts of width 8, top-2 (expert 3x8x8 = 192 parameters, router 8x4 = 32) */
const MO: ModelShape = { ...D, name: 'hand-moe', dense_layers: 1, experts: 4, top_k: 2, expert_ffn: 8 };
/** MO with one shared expert of width 12 */
const MS: ModelShape = { ...MO, name: 'hand-moe-shared', shared_experts: 1, shared_ffn: 12 };
/** MLA, one dense layer: hidden 8, 2 heads, q LoRA 2, kv LoRA 6, nope 2, rope 2, v 2 (d_qk 4, d_v 2), one KV head given */
const MLA: ModelShape = {
  name: 'hand-mla', layers: 1, hidden: 8, heads: 2, kv_heads: 1, head_dim: 0, attention: 'mla',
  q_lora_rank: 2, kv_lora_rank: 6, qk_nope_head_dim: 2, qk_rope_head_dim: 2, v_head_dim: 2, vocab: 16,
  dense_layers: 1, dense_ffn: 16, experts: 0, shared_experts: 0, top_k: 0, expert_ffn: 0, mtp_layers: 0, tied_embeddings: false,
};

const P = (o: Partial<Parallel> = {}): Parallel => ({
  tp: 1, pp: 1, vpp: 1, ep: 1, etp: 1, cp: 1, dp: 1, zero: 1, recompute: 'none', offload: 0, schedule: '1f1b', ep_overlap: 'none',
  a2a: 'flat', tp_overlap: false, dispatcher: 'alltoall', shared_expert_overlap: false, dp_overlap: false, cuda_graphs: false, ...o,
});
/** micro-batch 1 x 4 tokens, 4 sequences a step (4 micro-batches at dp 1), a fixed expert load of 1 */
const TR = (o: Partial<Training> = {}): Training => ({
  seq_len: 4, micro_batch: 1, global_batch: 4, precision: 'bf16', optimizer_precision: 'fp32', grad_precision: 'fp32',
  load_imbalance: 1, expert_load_cv: 0, dispatch_bytes: 2, node_limit: 0, capacity_factor: 0, ...o,
});
/** a machine on which everything is free: the tests give back one cost at a time */
const FREE: Hardware = {
  preset: 'test', name: 'hand-computed', devices_per_node: 8, scaleup_domain: 8, intra_bw: Infinity, intra_topology: 'switch',
  inter_bw: Infinity, host_bw: Infinity, hbm_bytes: 80e9, hbm_bw: Infinity, peak_bf16: Infinity, peak_fp8: 0, gemm_eff: 1,
  fp8_gemm_eff: 1, bw_eff: 1, coll_eff: 1, coll_latency: 0, source: {},
};
const BYTES: Partial<Hardware> = { hbm_bw: 1 };
const FLOPS: Partial<Hardware> = { peak_bf16: 1 };
/** kernel constants: flash at the full peak, the launch cost set per test (launchS) */
const K0: OpConstants = { scatter_eff: 1, launch_s: 0, flash_fwd_eff: 1, flash_bwd_eff: 1 };

interface Case { hw?: Partial<Hardware>; t?: Partial<Training>; devices?: number; opts?: SimOptions }
/** simulate m under P(p) on FREE + hw; by default every kernel costs 1 s (launchS 1) and the host is free */
function sim(m: ModelShape, p: Partial<Parallel> = {}, c: Case = {}) {
  const parallel = P(p);
  return simulate({ model: m, hardware: { ...FREE, ...c.hw }, devices: c.devices ?? 1, parallel, training: TR(c.t) },
    { constants: K0, launchS: 1, hostKernelS: 0, ...c.opts });
}
/** compute free too: only the communication (and whatever hw gives back) costs */
const COMM: SimOptions = { launchS: 0 };

const close = (got: number, want: number, what = '') =>
  expect(Math.abs(got - want), `${what}: ${got} vs ${want}`).toBeLessThanOrEqual(1e-12 * Math.abs(want) + 1e-12);
const ZERO_BD: Breakdown = {
  compute: 0, route: 0, dispatch: 0, experts: 0, combine: 0, recompute: 0, tp_comm: 0, cp_comm: 0, host: 0, pp_comm: 0,
  dp_comm: 0, bubble: 0, offload: 0, optimizer: 0,
};
/** the whole breakdown: the fields named, every other field 0, and the step their sum */
function expectBreakdown(r: { breakdown: Breakdown; step_time_s: number }, want: Partial<Breakdown>, step?: number) {
  const full = { ...ZERO_BD, ...want };
  expect(Object.keys(r.breakdown).sort()).toEqual(Object.keys(full).sort());
  for (const k of Object.keys(full) as (keyof Breakdown)[]) close(r.breakdown[k], full[k], k);
  if (step !== undefined) close(r.step_time_s, step, 'step');
  close(r.step_time_s, Object.values(full).reduce((a, b) => a + b, 0), 'step = sum of the breakdown');
}

// ---------------------------------------------------------------------------------------------------------------------

describe('constants', () => {
  it('training kernels: fused permutation at the streaming rate, the framework launch cost, cuDNN attention', () => {
    const hw = { ...FREE, bw_eff: 0.7 };
    expect(trainConstants(hw)).toEqual({
      ...OP_CONSTANTS, scatter_eff: 0.7, launch_s: FITTED.launch_train_s.value,
      flash_fwd_eff: FITTED.sdpa_cudnn_fwd_eff.value, flash_bwd_eff: FITTED.sdpa_cudnn_bwd_eff.value,
    });
    expect(trainConstants(hw).launch_s).toBe(28.5e-6);
  });
  it('host and CUDA-graph seconds per kernel, EP overlap fractions, TP exposure, the SMs DualPipe and DeepEP reserve', () => {
    expect(HOST_KERNEL_S()).toBe(FITTED.host_kernel_s.value);
    expect(GRAPH_LAUNCH_S()).toBe(FITTED.graph_launch_s.value);
    expect(EP_OVERLAP).toEqual({ none: 0, adaptive: FITTED.ep_overlap_adaptive.value, dualpipe: FITTED.ep_overlap_dualpipe.value });
    expect([EP_OVERLAP.adaptive, EP_OVERLAP.dualpipe]).toEqual([0.8, 0.95]);
    expect(TP_EXPOSED).toEqual({ overlap: FITTED.tp_exposed_overlap.value, none: 1 });
    expect(TP_EXPOSED.overlap).toBe(0.3);
    // DeepSeek-V3 sec. 3.2.2: 20 of the H800's 132 SMs; DeepEP's default 20 SMs
    expect(DUALPIPE_COMM_SM_FRACTION).toBe(20 / 132);
    expect(DEEPEP_COMM_SM_FRACTION).toBe(20 / 132);
  });
});

describe('a step on the launch-only machine: kernel counts', () => {
  it('dense GQA, pp 1: 2 layers x (7 + 11) kernels + the head (1 + 2), 4 micro-batches', () => {
    const r = sim(D);
    // t_f = 2 x 7 + 1 = 15, t_b = 2 x 11 + 2 = 24; step = 4 x 39 = 156
    expectBreakdown(r, { compute: 156 }, 156);
    expect(r.microbatches).toBe(4);
    // 4 sequences x 4 tokens = 16 tokens in 156 s
    close(r.tokens_per_s, 16 / 156);
    close(r.tokens_per_s_per_device, 16 / 156);
    // model FLOPs per token: 6 x (head 128 + 2 x (192 + 384)) + 3 x 2 layers x 2 x 2 heads x (4 + 4) x (4 + 1)/2 = 7680 + 480
    expect(r.model_flops_per_token).toBe(8160);
    // MFU divides by the (infinite) peak
    expect([r.mfu, r.hfu]).toEqual([0, 0]);
    expect(r.parallel).toEqual(P());
  });
  it('the result carries the very parallel object it simulated, and the devices divide tokens/s', () => {
    const parallel = P({ dp: 2 });
    const r = simulate({ model: D, hardware: FREE, devices: 2, parallel, training: TR() }, { constants: K0, launchS: 1, hostKernelS: 0 });
    expect(r.parallel).toBe(parallel);
    // 2 micro-batches per pipeline: 2 x 39 = 78 s
    expect(r.microbatches).toBe(2);
    close(r.tokens_per_s, 16 / 78);
    close(r.tokens_per_s_per_device, 8 / 78);
  });
  it('FP8: each layer linear gains a quantise kernel forward and backward, the LM head stays BF16', () => {
    // layer 7 + 4 = 11 forward, 11 + 4 = 15 backward; head 1 + 2: 2 x 26 + 3 = 55 per micro-batch
    expectBreakdown(sim(D, {}, { t: { precision: 'fp8' } }), { compute: 220 }, 220);
    // MoE: attention 6 / 8, route 2 / 3 (the router stays BF16), dispatch 1 / 1, combine 1 / 1, experts: each grouped
    // GEMM quantise + GEMM at 2 local experts 2 x 2 forward, 3 x 2 backward, SwiGLU 1 / 1: 9 / 13; outside the MoE
    // blocks the dense layer 26, attention 14 and the head 3
    expectBreakdown(sim(MO, { ep: 2 }, { t: { precision: 'fp8' } }), { compute: 4 * (26 + 14 + 3), route: 20, dispatch: 8, experts: 88, combine: 8 }, 296);
  });
  it('the launch cost: SimOptions.launchS over the constants\' launch_s, which applies without it', () => {
    const r = simulate({ model: D, hardware: FREE, devices: 1, parallel: P(), training: TR() }, { constants: { ...K0, launch_s: 2 }, hostKernelS: 0 });
    expectBreakdown(r, { compute: 312 }, 312);
    const s = simulate({ model: D, hardware: FREE, devices: 1, parallel: P(), training: TR() }, { constants: { ...K0, launch_s: 2 }, launchS: 0.5, hostKernelS: 0 });
    expectBreakdown(s, { compute: 78 }, 78);
  });
  it('without constants: trainConstants(hardware), the framework launch cost per kernel', () => {
    const spec = { model: D, hardware: FREE, devices: 1, parallel: P(), training: TR() };
    const r = simulate(spec, { hostKernelS: 0 });
    // 156 kernels a step at 28.5 us
    expectBreakdown(r, { compute: 156 * FITTED.launch_train_s.value });
    expect(r.breakdown).toEqual(simulate(spec, { constants: trainConstants(FREE), hostKernelS: 0 }).breakdown);
  });
  it('MoE at ep 1: 4 local experts, no all-to-all', () => {
    // MoE layer: attention 4 / 6, route 2 / 3, dispatch 1 / 1, experts 9 / 17, combine 1 / 1; dense 7 / 11; head 1 / 2
    // compute outside the MoE blocks 18 + 10 + 3 = 31 per micro-batch
    expectBreakdown(sim(MO), { compute: 124, route: 20, dispatch: 8, experts: 104, combine: 8 }, 264);
  });
  it('MTP modules: a dense model adds dense layers, an MoE model MoE layers, and each adds an LM head pass', () => {
    // dense: 3 layers x 18 + 2 heads x 3 = 60 per micro-batch
    expectBreakdown(sim({ ...D, mtp_layers: 1 }), { compute: 240 }, 240);
    // MoE at ep 1: 1 dense layer (18) + 2 MoE layers (2 x 45) + 2 heads (6) = 114; the MoE blocks 2 x 35 of it
    expectBreakdown(sim({ ...MO, mtp_layers: 1 }), { compute: 176, route: 40, dispatch: 16, experts: 208, combine: 16 }, 456);
  });
});

describe('recompute: the recomputed forward of each module the setting names, in the backward', () => {
  const rc = (m: ModelShape, recompute: Parallel['recompute'], p: Partial<Parallel> = {}) => sim(m, { recompute, ...p }).breakdown.recompute;
  it('dense GQA: per layer full 7, attention 3 (qkv, o, flash), core_attn / selective 1 (flash), layernorm 1, mlp 3', () => {
    // 2 layers x 4 micro-batches x kernels
    expect(rc(D, 'full')).toBe(56);
    expect(rc(D, ['attention'])).toBe(24);
    expect(rc(D, ['core_attn'])).toBe(8);
    expect(rc(D, 'selective')).toBe(8);
    expect(rc(D, ['layernorm'])).toBe(8);
    expect(rc(D, ['mlp'])).toBe(24);
    expect(rc(D, ['mlp', 'layernorm'])).toBe(32);
    // modules the dense GQA layer does not have
    expect(rc(D, ['mla_up'])).toBe(0);
    expect(rc(D, ['moe', 'moe_act'])).toBe(0);
    expect(rc(D, 'none')).toBe(0);
  });
  it('full recompute: the step gains the forward again, in the backward', () => {
    // 156 + 4 x 14
    expectBreakdown(sim(D, { recompute: 'full' }), { compute: 156, recompute: 56 }, 212);
  });
  it('MoE: moe recomputes route, dispatch, experts and combine, moe_act the experts\' SwiGLU only', () => {
    // route 2 + dispatch 1 + experts 5 + combine 1 at 2 local experts
    expect(rc(MO, ['moe'], { ep: 2 })).toBe(36);
    expect(rc(MO, ['moe_act'], { ep: 2 })).toBe(4);
    // full: the dense layer 7 and the MoE layer 13
    expect(rc(MO, 'full', { ep: 2 })).toBe(80);
    // shared experts (fc1, swiglu, fc2) are recomputed with moe
    expect(rc(MS, ['moe'], { ep: 2 })).toBe(48);
    expect(rc(MS, ['moe_act'], { ep: 2 })).toBe(4);
  });
  it('MLA: up-projections (q_b, kv_b) with mla_up or attention; attention adds the down- and output projections and flash', () => {
    // q LoRA: q_b + kv_b = 2; attention: 2 + q_a, kv_a, o + flash = 6; no q LoRA: kv_b = 1, attention 5
    expect(rc(MLA, ['mla_up'])).toBe(8);
    expect(rc(MLA, ['attention'])).toBe(24);
    expect(rc(MLA, ['core_attn'])).toBe(4);
    expect(rc({ ...MLA, q_lora_rank: 0 }, ['mla_up'])).toBe(4);
    expect(rc({ ...MLA, q_lora_rank: 0 }, ['attention'])).toBe(20);
    // MLA layer 10 / 17 kernels (q LoRA) or 9 / 15, head 3
    expectBreakdown(sim(MLA), { compute: 120 }, 120);
    expectBreakdown(sim({ ...MLA, q_lora_rank: 0 }), { compute: 108 }, 108);
  });
});

describe('pipeline: the bubble per schedule and the p2p sends', () => {
  // dense GQA at pp 2: t_f = 15 / 2 = 7.5, t_b = 24 / 2 = 12 per stage; 4 micro-batches: 4 x 19.5 = 78
  it('1F1B: (p - 1)(t_f + t_b)', () => {
    expectBreakdown(sim(D, { pp: 2 }), { compute: 78, bubble: 19.5 }, 97.5);
    // pp 4: 3 x 9.75
    expectBreakdown(sim(D, { pp: 4 }), { compute: 39, bubble: 29.25 }, 68.25);
  });
  it('interleaved: (p - 1)(t_f + t_b) / v', () => {
    expectBreakdown(sim(D, { pp: 2, vpp: 2, schedule: 'interleaved' }), { compute: 78, bubble: 9.75 }, 87.75);
  });
  it('zero-bubble (ZB-H1): (p - 1) t_f', () => {
    expectBreakdown(sim(D, { pp: 2, schedule: 'zero-bubble' }), { compute: 78, bubble: 7.5 }, 85.5);
  });
  it('DualPipe and DualPipeV: (p/2 - 1) t_f / 2', () => {
    // pp 4: t_f = 3.75, 1 x 1.875
    expectBreakdown(sim(D, { pp: 4, schedule: 'dualpipe' }), { compute: 39, bubble: 1.875 }, 40.875);
    expectBreakdown(sim(D, { pp: 4, schedule: 'dualpipev' }), { compute: 39, bubble: 1.875 }, 40.875);
  });
  it('p2p: 2 (pp - 1) vpp sends of a [T/tp, h] bf16 activation over the NIC, plus a latency each', () => {
    const comm = (p: Partial<Parallel>, hw: Partial<Hardware>) => sim(D, p, { hw }).breakdown.pp_comm;
    // 4 x 8 x 2 = 64 bytes at 32 B/s = 2 s
    expect(comm({ pp: 2 }, { inter_bw: 32 })).toBe(4);
    expect(comm({ pp: 4 }, { inter_bw: 32 })).toBe(12);
    expect(comm({ pp: 2, vpp: 2, schedule: 'interleaved' }, { inter_bw: 32 })).toBe(8);
    // tp 2: 32 bytes, 1 s; at coll_eff 0.5 2 s again
    expect(comm({ pp: 2, tp: 2 }, { inter_bw: 32 })).toBe(2);
    expect(comm({ pp: 2, tp: 2 }, { inter_bw: 32, coll_eff: 0.5 })).toBe(4);
    // the NIC, not the scale-up fabric
    expect(comm({ pp: 2 }, { inter_bw: 32, intra_bw: 1 })).toBe(4);
    // a latency of 0.25 s a send
    expect(comm({ pp: 2 }, { coll_latency: 0.25 })).toBe(0.5);
    expect(comm({ pp: 1 }, { inter_bw: 32 })).toBe(0);
    const r = sim(D, { pp: 2 }, { hw: { inter_bw: 32 } });
    expectBreakdown(r, { compute: 78, bubble: 19.5, pp_comm: 4 }, 101.5);
  });
  it('what goes into t_f and t_b: zero-bubble\'s bubble is t_f alone', () => {
    const bubble = (m: ModelShape, p: Partial<Parallel>, c: Case = {}) => sim(m, { pp: 2, schedule: 'zero-bubble', ...p }, c).breakdown.bubble;
    // recompute is backward: t_f stays 15 / 2
    expect(bubble(D, { recompute: 'full' })).toBe(7.5);
    // TP: half of the 16 s of collectives forward (below): (15 + 8) / 2
    expect(bubble(D, { tp: 2 }, { hw: { intra_bw: 32 } })).toBe(11.5);
    // host: forward 2 x 7 x (3 - 1) = 28 (below): (15 + 28) / 2
    expect(bubble(D, {}, { opts: { hostKernelS: 3 } })).toBe(21.5);
    // EP: half of the 4 s exposed all-to-all (below): (21 + 2) / 2
    expect(bubble(MO, { ep: 2 }, { hw: { intra_bw: 64 } })).toBe(11.5);
    // CP: a third of the 1 s per step exposed ring (below): (15 + 1/3) / 2
    close(bubble(D, { cp: 2 }, { hw: { coll_latency: 0.75 } }), (15 + 1 / 3) / 2);
  });
});

describe('kernel bytes (HBM-only machine)', () => {
  // a GEMM [M,K] x [K,N] moves 2(MK + KN + MN) bytes forward (bf16), its dgrad and wgrad twice that;
  // every backward kernel here moves twice its forward's bytes
  it('dense GQA, tp 1: qkv, o, norms, fc1, SwiGLU, fc2; the optimizer 30 bytes per parameter', () => {
    // T = 4, h = 8: qkv 2(32 + 128 + 64) = 448, o 2(32 + 64 + 32) = 256, norms 24 x 4 x 8 = 768,
    // fc1 [4,8]x[8,32] 2(32 + 256 + 128) = 832, SwiGLU 10 x 4 x 16 = 640, fc2 [4,16]x[16,8] 2(64 + 128 + 32) = 448:
    // 3392 forward, 6784 backward; head [4,8]x[8,16] 448 / 896; per micro-batch 3 x (2 x 3392 + 448) = 21696
    // optimizer: (2 x 192 + 2 x 384 + 128 + 128) = 1408 parameters x 30 bytes
    expectBreakdown(sim(D, {}, { hw: BYTES, opts: COMM }), { compute: 86784, optimizer: 42240 }, 129024);
  });
  it('dense GQA, tp 2: the GEMMs\' widths and the SwiGLU split, norms on the T/tp sequence shard', () => {
    // qkv [4,8]x[8,8] 256, o [4,4]x[4,8] 160, norms 24 x 2 x 8 = 384, fc1 [4,8]x[8,16] 448, SwiGLU 320, fc2 [4,8]x[8,8] 256:
    // 1824; head [4,8]x[8,8] 256; per micro-batch 3 x (2 x 1824 + 256) = 11712; optimizer 1408 / 2 x 30
    expectBreakdown(sim(D, { tp: 2 }, { hw: BYTES, opts: COMM }), { compute: 46848, optimizer: 21120 }, 67968);
  });
  it('MoE at ep 2: the phases\' kernels', () => {
    // rows R = T k = 8 (load 1), 2 local experts of width I = 8
    // route: router [4,8]x[8,4] 2(32 + 32 + 16) = 160, top-k 20 x 4 x 4 = 320: 480 / 640
    // dispatch: permute 4 R h = 256 / 256
    // experts: w13 2(R h + 2 x h x 2I) + 2 R 2I = 2(64 + 256) + 256 = 896, SwiGLU 10 R I = 640, w2 2(64 + 128) + 128 = 512:
    //   2048 / 4096
    // combine: 4 R h + 2 T h = 320 / 6 R h = 384
    // attention 448 + 256 + 768 = 1472 / 2944; MoE layer 4576 / 8320; dense layer 3392 / 6784; head 448 / 896
    // per micro-batch 24416, of it route 1120, dispatch 512, experts 6144, combine 704; 2 micro-batches at dp 2
    // optimizer: dense 2 x 192 + 32 + 384 + 256 = 1056 over dp 2, experts 4 x 192 / ep 2 = 384 (expert dp 1): 912 x 30
    const r = sim(MO, { ep: 2, dp: 2 }, { hw: BYTES, devices: 2, opts: COMM });
    expectBreakdown(r, { compute: 31872, route: 2240, dispatch: 1024, experts: 12288, combine: 1408, optimizer: 27360 }, 76192);
  });
  it('MoE with expert TP 2, tp 2 and a load of 1.5: rows T/tp k etp load, expert width I/etp', () => {
    // T/tp = 2, R = 2 x 2 x 2 x 1.5 = 12, I = 4, 2 local experts
    // route: router [2,8]x[8,4] 2(16 + 32 + 8) = 112, top-k 20 x 2 x 4 = 160: 272 / 384
    // dispatch 4 x 12 x 8 = 384 / 384; combine 384 + 2 x 2 x 8 = 416 / 576
    // experts: w13 2(96 + 2 x 64) + 2 x 96 = 640, SwiGLU 10 x 12 x 4 = 480, w2 2(48 + 64) + 192 = 416: 1536 / 3072
    // attention (tp 2) 256 + 160 + 384 = 800 / 1600; MoE layer 3408 / 6016; dense layer 1824 / 3648; head 256 / 512
    // per micro-batch 15664, MoE blocks 656 + 768 + 4608 + 992 = 7024; 2 micro-batches
    // optimizer: dense 1056 / tp 2 / dp 2 = 264, experts 768 / (ep 2 x etp 2) = 192 (expert dp max(1, 4/4) = 1): 456 x 30
    const r = sim(MO, { tp: 2, etp: 2, ep: 2, dp: 2 }, { hw: BYTES, devices: 4, t: { load_imbalance: 1.5 }, opts: COMM });
    expectBreakdown(r, { compute: 17280, route: 1312, dispatch: 1536, experts: 9216, combine: 1984, optimizer: 13680 }, 45008);
  });
  it('shared experts: a TP-split dense FFN of the shared width inside the experts phase', () => {
    // fc1 [4,8]x[8,24] 2(32 + 192 + 96) = 640, SwiGLU 10 x 4 x 12 = 480, fc2 [4,12]x[12,8] 2(48 + 96 + 32) = 352:
    // 1472 / 2944; experts phase 2 x (6144 + 4416); optimizer: dense + 3 x 8 x 12 = 288 -> 1344 / 2 + 384 = 1056 x 30
    const r = sim(MS, { ep: 2, dp: 2 }, { hw: BYTES, devices: 2, opts: COMM });
    expectBreakdown(r, { compute: 31872, route: 2240, dispatch: 1024, experts: 21120, combine: 1408, optimizer: 31680 }, 89344);
    // tp 2: fc1 [4,8]x[8,12] 2(32 + 96 + 48) = 352, SwiGLU 240, fc2 [4,6]x[6,8] 2(24 + 48 + 32) = 208: 800 / 1600, x 2
    const a = sim(MS, { tp: 2, ep: 2, dp: 2 }, { hw: BYTES, devices: 4, opts: COMM }).breakdown;
    const b = sim(MO, { tp: 2, ep: 2, dp: 2 }, { hw: BYTES, devices: 4, opts: COMM }).breakdown;
    expect(a.experts - b.experts).toBe(4800);
    expect([a.compute, a.route, a.dispatch, a.combine]).toEqual([b.compute, b.route, b.dispatch, b.combine]);
  });
});

describe('kernel FLOPs (compute-only machine): MFU and HFU', () => {
  // dense GQA, tp 1, T = 4: qkv 2 x 4 x 16 x 8 = 1024, o 512, flash 4 x 80 = 320 (x 2.5 backward), fc1 2048, fc2 1024:
  // layer 4928 / 10016; head 1024 / 2048; per micro-batch 2 x 14944 + 3072 = 32960
  it('no recompute: MFU = 16 tokens x 8160 FLOPs / (step x peak); the backward flash\'s 2.5x sets it below 1', () => {
    const r = sim(D, {}, { hw: FLOPS, opts: COMM });
    expectBreakdown(r, { compute: 131840 }, 131840);
    // 130560 / 131840 = 102 / 103
    close(r.mfu, 102 / 103);
    close(r.hfu, 102 / 103);
  });
  it('tp 2, cp 2, micro-batch 2, full recompute: HFU adds the recomputed forward FLOPs, scaled back to the whole model', () => {
    // T = 2 x 4 / 2 = 4 per CP rank; tp 2 halves every GEMM and flash: layer 2464 / 5008, head 512 / 1024;
    // 2 micro-batches of 2 x 7472 + 1536 = 16480, recompute 2 x 2464 = 4928 each: step 2 x 21408 = 42816
    const r = sim(D, { tp: 2, cp: 2, recompute: 'full' }, { hw: FLOPS, devices: 4, t: { micro_batch: 2 }, opts: COMM });
    expectBreakdown(r, { compute: 32960, recompute: 9856 }, 42816);
    // MFU over 4 devices' peak: 130560 / (4 x 42816); recomputed 4928 FLOPs per device per micro-batch x tp x cp / 8 tokens
    // = 2464 a token: HFU 16 x (8160 + 2464) / (4 x 42816)
    close(r.mfu, 130560 / 171264);
    close(r.hfu, 169984 / 171264);
    close(r.tokens_per_s, 16 / 42816);
    close(r.tokens_per_s_per_device, 4 / 42816);
    const n = sim(D, { tp: 2, cp: 2 }, { hw: FLOPS, devices: 4, t: { micro_batch: 2 }, opts: COMM });
    close(n.mfu, 102 / 103);
    close(n.hfu, 102 / 103);
  });
  it('flash forward at flash_fwd_eff, backward at flash_bwd_eff, both scaled by the hardware\'s attn_eff', () => {
    // forward 320 / (0.5 x 0.5) = 1280, backward 800 / (0.25 x 0.5) = 6400: layer 4608 + 1280 / 9216 + 6400, head 3072
    const r = sim(D, {}, { hw: { ...FLOPS, attn_eff: 0.5 }, opts: { constants: { ...K0, flash_fwd_eff: 0.5, flash_bwd_eff: 0.25 }, launchS: 0 } });
    expectBreakdown(r, { compute: 4 * (2 * (5888 + 15616) + 3072) });
    // zero-bubble at pp 2: the bubble is t_f = (2 x 5888 + 1024) / 2
    const z = sim(D, { pp: 2, schedule: 'zero-bubble' }, { hw: { ...FLOPS, attn_eff: 0.5 }, opts: { constants: { ...K0, flash_fwd_eff: 0.5, flash_bwd_eff: 0.25 }, launchS: 0 } });
    expect(z.breakdown.bubble).toBe(6400);
  });
  it('selective recompute counts flash\'s FLOPs; a recomputed norm counts none', () => {
    // flash 2 x 160 per micro-batch: 2 x (16480 + 320) = 33600; 320 x 4 / 8 = 160 FLOPs a token
    const r = sim(D, { tp: 2, cp: 2, recompute: ['core_attn'] }, { hw: FLOPS, devices: 4, t: { micro_batch: 2 }, opts: COMM });
    expectBreakdown(r, { compute: 32960, recompute: 640 }, 33600);
    close(r.mfu, 130560 / 134400);
    close(r.hfu, 133120 / 134400);
    const l = sim(D, { tp: 2, cp: 2, recompute: ['layernorm'] }, { hw: FLOPS, devices: 4, t: { micro_batch: 2 }, opts: COMM });
    close(l.hfu, l.mfu);
  });
  it('MLA with a q LoRA: down-projections on the T/tp shard, up-projections, the output projection, flash over d_qk + d_v', () => {
    // q_a [4,8]x[8,2] 128, q_b [4,2]x[2,8] 128, kv_a [4,8]x[8,8] 512, kv_b [4,6]x[6,8] 384, o [4,4]x[4,8] 256,
    // flash 4 x 2 x 2 x (4 + 2) x 2.5 = 240 (600 backward); FFN 3072 / 6144: layer 4720 / 9560; head 1024 / 2048
    const r = sim(MLA, {}, { hw: FLOPS, opts: COMM });
    expectBreakdown(r, { compute: 69408 }, 69408);
    // model FLOPs: 6 x (head 128 + attention 32 + 64 + 48 + 32 + FFN 384) + 3 x 60 = 4308 a token
    expect(r.model_flops_per_token).toBe(4308);
    close(r.mfu, (16 * 4308) / 69408);
    // mla_up: q_b + kv_b = 512 recomputed per micro-batch, 128 FLOPs a token
    const u = sim(MLA, { recompute: ['mla_up'] }, { hw: FLOPS, opts: COMM });
    expectBreakdown(u, { compute: 69408, recompute: 2048 }, 71456);
    close(u.hfu, (16 * (4308 + 128)) / 71456);
  });
  it('MLA without a q LoRA: one q projection [4,8]x[8,8]', () => {
    // q 512 / 1024: layer 4976 / 10072, head 3072: 4 x 18120
    expectBreakdown(sim({ ...MLA, q_lora_rank: 0 }, {}, { hw: FLOPS, opts: COMM }), { compute: 72480 }, 72480);
    expectBreakdown(sim({ ...MLA, q_lora_rank: 0 }, { recompute: ['mla_up'] }, { hw: FLOPS, opts: COMM }), { compute: 72480, recompute: 1536 }, 74016);
  });
  it('MLA at tp 2: the head dimensions of the up- and output projections split, the tokens of the down-projections', () => {
    // q_a [2,8]x[8,2] 64, q_b [4,2]x[2,4] 64, kv_a [2,8]x[8,8] 256, kv_b [4,6]x[6,4] 192, o [4,2]x[2,8] 128, flash 120,
    // FFN 1536: 2360 / 4780; head [4,8]x[8,8] 512 / 1024: 4 x 8676, half of tp 1
    expectBreakdown(sim(MLA, { tp: 2 }, { hw: FLOPS, opts: COMM }), { compute: 34704 }, 34704);
    // no q LoRA: q [4,8]x[8,4] 256 / 512: 2488 / 5036 + 1536
    expectBreakdown(sim({ ...MLA, q_lora_rank: 0 }, { tp: 2 }, { hw: FLOPS, opts: COMM }), { compute: 36240 }, 36240);
  });
  it('GQA with K and V for 2 of 4 heads: qkv [4,8]x[8,(4 + 2 x 2) x 4]', () => {
    // heads 4, kv_heads 2, head_dim 4: qkv 2 x 4 x 32 x 8 = 2048, o [4,16]x[16,8] 1024, flash 4 x 2 x 4 x 8 x 2.5 = 640,
    // FFN 3072: layer 6784 / 13888; head 3072: 4 x 44416
    expectBreakdown(sim({ ...D, heads: 4, kv_heads: 2 }, {}, { hw: FLOPS, opts: COMM }), { compute: 177664 }, 177664);
  });
});

describe('TP collectives (sequence parallel)', () => {
  // tp 2 on 32 B/s: all-gather / reduce-scatter of the [4, 8] bf16 activation, 1/2 x 64 bytes = 1 s each
  it('an all-gather and a reduce-scatter around attention and around the FFN, forward and backward', () => {
    // per layer 2 x (2 + 2) = 8 s, 2 layers: 16 s per micro-batch, half in t_f
    expectBreakdown(sim(D, { tp: 2 }, { hw: { intra_bw: 32 } }), { compute: 156, tp_comm: 64 }, 220);
  });
  it('--tp-comm-overlap leaves TP_EXPOSED.overlap of it', () => {
    expectBreakdown(sim(D, { tp: 2, tp_overlap: true }, { hw: { intra_bw: 32 } }), { compute: 156, tp_comm: 64 * TP_EXPOSED.overlap });
  });
  it('a recomputed forward repeats the forward collectives', () => {
    // 16 + 2 layers x 4 per micro-batch
    expectBreakdown(sim(D, { tp: 2, recompute: 'full' }, { hw: { intra_bw: 32 } }), { compute: 156, recompute: 56, tp_comm: 96 }, 308);
    expectBreakdown(sim(D, { tp: 2, recompute: 'full', tp_overlap: true }, { hw: { intra_bw: 32 } }), { compute: 156, recompute: 56, tp_comm: 96 * TP_EXPOSED.overlap });
    // with compute free nothing is recomputed, so nothing repeats
    expectBreakdown(sim(D, { tp: 2, recompute: 'full' }, { hw: { intra_bw: 32 }, opts: COMM }), { tp_comm: 64 }, 64);
  });
  it('MLA with a q LoRA gathers its latents (q_lora + kv_lora + rope = 10 wide) for attention, not the hidden state', () => {
    // attention: all-gather 1/2 x 4 x 10 x 2 / 32 = 1.25 + reduce-scatter 1; FFN 2: 2 x 4.25 per micro-batch
    expectBreakdown(sim(MLA, { tp: 2 }, { hw: { intra_bw: 32 }, opts: COMM }), { tp_comm: 34 }, 34);
    // without a q LoRA the hidden state, as GQA (kv LoRA 4: its latents, 6 wide, would take 0.75 s)
    expectBreakdown(sim({ ...MLA, q_lora_rank: 0, kv_lora_rank: 4 }, { tp: 2 }, { hw: { intra_bw: 32 }, opts: COMM }), { tp_comm: 32 }, 32);
  });
  it('shared experts add the FFN\'s pair; routed experts none', () => {
    const tpc = (m: ModelShape) => sim(m, { tp: 2 }, { hw: { intra_bw: 32 }, opts: COMM }).breakdown.tp_comm;
    // dense layer 8 + MoE layer 2 x (2 + 2) = 16 per micro-batch; without the shared expert 8 + 4
    expect(tpc(MS)).toBe(64);
    expect(tpc(MO)).toBe(48);
  });
  it('collective latency per step: 1 step of 0.25 s for a 2-rank ring', () => {
    // 4 collectives a layer forward, 2 layers, x 2 (forward + backward)
    expectBreakdown(sim(D, { tp: 2 }, { hw: { coll_latency: 0.25 }, opts: COMM }), { tp_comm: 16 }, 16);
  });
});

describe('context parallelism: the ring K/V exchange beyond the flash kernels (launch-only: flash 1 s each way)', () => {
  it('cp 2, a 0.75 s step: forward hidden, backward 2 x 0.75 - 1 = 0.5 exposed', () => {
    // per layer 0.5, 2 layers: 1 s a micro-batch; the DP group dp x cp = 2: reduce-scatter + all-gather latencies 0.75 each
    expectBreakdown(sim(D, { cp: 2 }, { hw: { coll_latency: 0.75 } }), { compute: 156, cp_comm: 4, dp_comm: 1.5 }, 161.5);
  });
  it('cp 4 on 16 B/s: K/V of T = 1 token, 1 KV head, d 4 + 4, bf16 = 16 bytes a step, 3 steps', () => {
    // forward 3 - 1 = 2, backward 6 - 1 = 5 exposed: 7 a layer; DP over dp x cp = 4: 3/4 x 1408 x 4 / 16 + 3/4 x 1408 x 2 / 16
    expectBreakdown(sim(D, { cp: 4 }, { hw: { intra_bw: 16 } }), { compute: 156, cp_comm: 56, dp_comm: 396 }, 608);
  });
  it('a ring of tp-strided ranks that leaves the node runs on the NIC; K/V heads split over at most kv_heads TP ranks', () => {
    // cp 2 x tp 2 spans 4 > 2 ranks: 8 B/s; T = 2, 1 KV head over min(tp, 1) = 1 rank: 32 bytes, 4 s:
    // forward 4 - 1 = 3, backward 8 - 1 = 7
    const r = sim(D, { cp: 2, tp: 2 }, { hw: { scaleup_domain: 2, inter_bw: 8 } });
    expect(r.breakdown.cp_comm).toBe(80);
  });
  it('K/V heads split over the TP ranks: 2 KV heads over tp 2', () => {
    // heads 4, kv_heads 2: T = 2 x 2 heads x 8 x 2 bytes / 2 = 32 bytes at 16 B/s: 2 s; forward 1, backward 3 exposed
    expect(sim({ ...D, heads: 4, kv_heads: 2 }, { cp: 2, tp: 2 }, { hw: { intra_bw: 16 } }).breakdown.cp_comm).toBe(32);
    // MLA at tp 2: its 2 heads over 2 ranks, 24 bytes at 12 B/s
    expect(sim(MLA, { cp: 2, tp: 2 }, { hw: { intra_bw: 12 } }).breakdown.cp_comm).toBe(16);
  });
  it('MLA passes K and V of every head (d_qk 4 + d_v 2)', () => {
    // T = 2 x 2 heads x 6 x 2 bytes = 48 at 24 B/s: 2 s; forward 2 - 1, backward 4 - 1: 4 a layer, 1 layer
    expect(sim(MLA, { cp: 2 }, { hw: { intra_bw: 24 } }).breakdown.cp_comm).toBe(16);
  });
});

describe('EP all-to-all: exposed per overlap mode, split between dispatch and combine', () => {
  // MO at ep 2 on 64 B/s: the all-to-all of [T, k, h] = 4 x 2 x 8 bf16 = 128 bytes, 1/2 of it leaves: 1 s;
  // forward dispatch + combine, backward 2 combines: 4 s a layer. MoE layer 13 / 20 kernels, MoE blocks route 5,
  // dispatch 2, experts 14, combine 2; per micro-batch 54 kernels, 31 outside the MoE blocks
  const ep = (p: Partial<Parallel> = {}, c: Case = {}) => sim(MO, { ep: 2, ...p }, { ...c, hw: { intra_bw: 64, ...c.hw } });
  it('no overlap: all 4 s exposed, half in dispatch', () => {
    expectBreakdown(ep(), { compute: 124, route: 20, dispatch: 16, experts: 56, combine: 16 }, 232);
  });
  it('FP8 dispatch payload: the forward dispatch takes half; dispatch holds 1.5 / 3.5 of the layer\'s all-to-all', () => {
    expectBreakdown(ep({}, { t: { dispatch_bytes: 1 } }), { compute: 124, route: 20, dispatch: 14, experts: 56, combine: 16 }, 230);
  });
  it('a recomputed MoE block repeats its forward all-to-alls', () => {
    // 4 + 2 = 6 s, dispatch share (1 + 1 + 1) / 6; recompute 9 kernels a micro-batch
    expectBreakdown(ep({ recompute: ['moe'] }), { compute: 124, route: 20, dispatch: 20, experts: 56, combine: 20, recompute: 36 }, 276);
    // FP8 dispatch: 3.5 + 1.5 = 5 s, dispatch (0.5 + 1 + 0.5) / 5 = 0.4
    expectBreakdown(ep({ recompute: ['moe'] }, { t: { dispatch_bytes: 1 } }), { compute: 124, route: 20, dispatch: 16, experts: 56, combine: 20, recompute: 36 }, 272);
  });
  it('adaptive overlap: max(c - eta x compute, (1 - eta) c), both sides', () => {
    const eta = EP_OVERLAP.adaptive;
    // compute of the MoE layer 13 + 20 = 33 s: 4 - 0.8 x 33 < 0.2 x 4
    const x = Math.max(4 - eta * 33, (1 - eta) * 4);
    close(x, 0.8);
    expectBreakdown(ep({ ep_overlap: 'adaptive' }), { compute: 124, route: 20, dispatch: 4 * (2 + x / 2), experts: 56, combine: 4 * (2 + x / 2) }, 4 * (54 + x));
    // at 1 B/s: 64 s an all-to-all, 256 a layer: 256 - 0.8 x 33 = 229.6 > 51.2
    const y = Math.max(256 - eta * 33, (1 - eta) * 256);
    close(y, 229.6);
    expectBreakdown(ep({ ep_overlap: 'adaptive' }, { hw: { intra_bw: 1 } }), { compute: 124, route: 20, dispatch: 4 * (2 + y / 2), experts: 56, combine: 4 * (2 + y / 2) }, 4 * (54 + y));
    // adaptive with a recomputed block: compute 33 + 9, communication 6
    const z = Math.max(384 - eta * 42, (1 - eta) * 384);
    close(ep({ ep_overlap: 'adaptive', recompute: ['moe'] }, { hw: { intra_bw: 1 } }).step_time_s, 4 * (54 + 9 + z));
  });
  it('DualPipe: eta_dualpipe of the all-to-all hidden, the MoE layers\' compute slowed by 132/112 (SMs for communication)', () => {
    const s = 132 / 112, eta = EP_OVERLAP.dualpipe;
    // MoE layer 33 s x s: 4 - 0.95 x 38.9 < 0.05 x 4
    const x = Math.max(4 - eta * 33 * s, (1 - eta) * 4);
    close(x, 0.2);
    // the MoE layer's attention (10 kernels) is slowed too, the dense layer and the head are not
    expectBreakdown(ep({ ep_overlap: 'dualpipe' }), {
      compute: 4 * (21 + 10 * s), route: 20 * s, dispatch: 4 * (2 * s + x / 2), experts: 56 * s, combine: 4 * (2 * s + x / 2),
    }, 4 * (21 + 33 * s + x));
    // a recomputed forward is slowed as well: 9 s
    close(ep({ ep_overlap: 'dualpipe', recompute: ['moe'] }).breakdown.recompute, 36 * s);
    // a dense model has nothing to slow
    expect(sim(D, { ep_overlap: 'dualpipe' }).breakdown).toEqual(sim(D).breakdown);
  });
  it('combined 1F1B with DeepEP (flex dispatcher): the MoE compute slowed by 132/112 as well; with alltoall not', () => {
    const s = 132 / 112;
    // pp 1, 4 micro-batches: 1 of 4 chunks unpaired (its 4 s exposed); the paired ones hide all (stages of 1 s against
    // attention 4 s and MoE compute 9 s forward, 6 and 14 backward): 1 s a micro-batch
    expectBreakdown(ep({ ep_overlap: 'a2a-1f1b', dispatcher: 'flex' }), {
      compute: 4 * (21 + 10 * s), route: 20 * s, dispatch: 4 * (2 * s + 0.5), experts: 56 * s, combine: 4 * (2 * s + 0.5),
    }, 4 * (21 + 33 * s + 1));
    expectBreakdown(ep({ ep_overlap: 'a2a-1f1b' }), { compute: 124, route: 20, dispatch: 10, experts: 56, combine: 10 }, 220);
    // flex without the combined schedule: plain, unscaled
    expectBreakdown(ep({ dispatcher: 'flex' }), { compute: 124, route: 20, dispatch: 16, experts: 56, combine: 16 }, 232);
  });
  it('combined 1F1B, each all-to-all against its partner stage: max(0, cB - aF) + max(0, dF - mB) + max(0, dB - mF) + max(0, cF - aB)', () => {
    // 8 B/s: 8 s an all-to-all, 32 a layer. Stages: attention 4 / 6 s, MoE 9 / 14 s:
    // paired (8 - 4) + 0 + 0 + (8 - 6) = 6; 1/4 unpaired: 0.25 x 32 + 0.75 x 6 = 12.5
    expectBreakdown(ep({ ep_overlap: 'a2a-1f1b' }, { hw: { intra_bw: 8 } }), {
      compute: 124, route: 20, dispatch: 4 * (2 + 6.25), experts: 56, combine: 4 * (2 + 6.25),
    }, 4 * (54 + 12.5));
    // recomputing attention (3 kernels) and the MoE block (9): backward attention 6 + 12 - 23 = 9 beside MoE 14 + 9 = 23;
    // the backward's all-to-alls carry the recomputed forward ones: dB = cB = 16; communication 32 + 16 = 48:
    // paired (16 - 4) + 0 + (16 - 9) + 0 = 19; 0.25 x 48 + 0.75 x 19 = 26.25, dispatch half
    expectBreakdown(ep({ ep_overlap: 'a2a-1f1b', recompute: ['attention', 'moe'] }, { hw: { intra_bw: 8 } }), {
      compute: 124, route: 20, dispatch: 4 * (2 + 13.125), experts: 56, combine: 4 * (2 + 13.125), recompute: 60,
    }, 4 * (54 + 15 + 26.25));
  });
  it('combined 1F1B: the unpaired chunks are the warm-up, 2(p - 1) + (v - 1)p of the m v chunk-forwards, at most all', () => {
    // dispatch per step = m / p x (2 + x / 2); x = u x 32 + (1 - u) x 6
    const disp = (p: Partial<Parallel>, m: number) => ep({ ep_overlap: 'a2a-1f1b', ...p }, { hw: { intra_bw: 8 }, t: { global_batch: m } }).breakdown.dispatch;
    // pp 2, 4 micro-batches: u = 2 / 4
    close(disp({ pp: 2 }, 4), 2 * (2 + (0.5 * 32 + 0.5 * 6) / 2));
    // pp 4, 4 micro-batches: 6 warm-up > 4: u = 1
    close(disp({ pp: 4 }, 4), 1 * (2 + 32 / 2));
    // pp 4, vpp 2, 16 micro-batches: u = (6 + 4) / 32
    const u = 10 / 32;
    close(disp({ pp: 4, vpp: 2, schedule: 'interleaved' }, 16), 4 * (2 + (u * 32 + (1 - u) * 6) / 2));
  });
  it('--moe-shared-expert-overlap: the shared experts\' forward (3 s) hides up to the forward all-to-alls, never below 0', () => {
    const sh = (p: Partial<Parallel>, bw: number) => sim(MS, { ep: 2, shared_expert_overlap: true, ...p }, { hw: { intra_bw: bw } }).breakdown;
    // 64 B/s: forward all-to-alls 2 s < 3: 4 - 2 = 2 exposed; experts phase 14 + 3 + 5 = 22 kernels
    const a = sh({}, 64);
    expect([a.dispatch, a.combine, a.experts]).toEqual([4 * (2 + 1), 4 * (2 + 1), 88]);
    // 8 B/s: forward 16 s > 3: 32 - 3 = 29
    const b = sh({}, 8);
    expect([b.dispatch, b.combine]).toEqual([4 * (2 + 14.5), 4 * (2 + 14.5)]);
    // adaptive at 64 B/s: (1 - 0.8) x 4 = 0.8 left, minus 2: 0
    const c = sh({ ep_overlap: 'adaptive' }, 64);
    expect([c.dispatch, c.combine]).toEqual([8, 8]);
    // off: all 4 s
    const d = sim(MS, { ep: 2 }, { hw: { intra_bw: 64 } }).breakdown;
    expect([d.dispatch, d.combine]).toEqual([16, 16]);
  });
  it('allgather dispatcher: every rank gathers the EP group\'s tokens, whatever their routing', () => {
    // ep 4 (1 local expert: experts 3 / 5 kernels), FP8 dispatch: gather 4 x 4 x 8 x 1 = 128 bytes, 3/4 of it in 1.5 s;
    // combine 256 bytes, 3 s: forward 4.5, backward 6; dispatch 4.5 / 10.5; per micro-batch 18 + 27 + 3 = 48 kernels
    const a = sim(MO, { ep: 4, dispatcher: 'allgather' }, { hw: { intra_bw: 64 }, t: { dispatch_bytes: 1 } });
    expectBreakdown(a, { compute: 124, route: 20, dispatch: 4 * (2 + 4.5), experts: 32, combine: 4 * (2 + 6) }, 4 * (48 + 10.5));
    // the all-to-all moves [T, k, h] instead: 3/4 x 64 bytes = 0.75 s dispatch, 1.5 s combine
    const b = sim(MO, { ep: 4 }, { hw: { intra_bw: 64 }, t: { dispatch_bytes: 1 } });
    expectBreakdown(b, { compute: 124, route: 20, dispatch: 4 * (2 + 2.25), experts: 32, combine: 4 * (2 + 3) }, 4 * (48 + 5.25));
  });
  it('the load imbalance scales the all-to-all', () => {
    // load 1.5: 1.5 s an all-to-all, 6 a layer
    const r = ep({}, { t: { load_imbalance: 1.5 } });
    expect([r.breakdown.dispatch, r.breakdown.combine]).toEqual([4 * (2 + 3), 4 * (2 + 3)]);
  });
  describe('across nodes (2 devices a node, 64 B/s inside, 32 B/s NIC), ep 4', () => {
    const HW2: Partial<Hardware> = { scaleup_domain: 2, devices_per_node: 2, intra_bw: 64, inter_bw: 32 };
    const disp = (p: Partial<Parallel>, t: Partial<Training> = {}) => sim(MO, { ep: 4, ...p }, { hw: HW2, t }).breakdown.dispatch;
    // dispatch per step = 4 x (2 + 2a) for an all-to-all of a seconds (4a a layer, half dispatch)
    it('flat: the remote half at 32 B/s sets the time: 1/2 x 128 / 32 = 2 s', () => {
      expect(disp({})).toBe(24);
    });
    it('hierarchical: 1 x (1 - (1/2)^2) = 0.75 remote nodes a token (48 bytes, 1.5 s), then 1/2 x 128 / 64 inside: 2.5 s', () => {
      expect(disp({ a2a: 'hierarchical' })).toBe(28);
      // node limit 1: 1 x (1 - 1/2) = 0.5 remote nodes: 1 + 1
      expect(disp({ a2a: 'hierarchical' }, { node_limit: 1 })).toBe(24);
      expect(disp({ a2a: 'hierarchical' }, { node_limit: 2 })).toBe(28);
    });
    it('hierarchical-allgather (MindSpeed): tp 2 inner x 2 outer: all-gather of the 32-byte tokens to the remote outer peer, all-to-allv inside', () => {
      // tp 2: T/tp = 2 tokens; all-gather 32 / 32 = 1 s, all-to-allv 1/2 x 64 / 64 = 0.5 s
      expect(disp({ tp: 2, a2a: 'hierarchical-allgather' })).toBe(4 * (2 + 3));
      // flat at tp 2: 1/2 x 64 / 32 = 1 s
      expect(disp({ tp: 2 })).toBe(4 * (2 + 2));
    });
  });
  it('expert TP 2: its all-gather / reduce-scatter of the R x h rows around the experts; the EP group strided by etp', () => {
    // compute free; tp 2, etp 2, ep 2 on 2-device nodes: the EP group spans 4 ranks, 2 nodes, 1 EP rank a node: the NIC
    // (32 B/s). T/tp = 2, R = 2 x 2 x 2 = 8. FP8 dispatch 1/2 x 32 / 32 = 0.5 s, combine 1 s; ETP all-gather and
    // reduce-scatter of 8 x 8 x 2 = 128 bytes at 64 B/s, 1 s each. Forward 0.5 + 1 + 2 = 3.5, backward 2 + 2 = 4;
    // dispatch 0.5 + 1 (all-gather) + 1 (combine's gradient) + 1 (reduce-scatter) = 3.5 of 7.5
    // TP (64 B/s inside the 2-device node): 1/2 x 64 / 64 = 0.5 s a collective; dense layer 2 x 2, MoE layer 2 x 1
    const r = sim(MO, { tp: 2, etp: 2, ep: 2 }, { hw: { scaleup_domain: 2, devices_per_node: 2, intra_bw: 64, inter_bw: 32 }, t: { dispatch_bytes: 1 }, opts: COMM });
    expectBreakdown(r, { tp_comm: 24, dispatch: 14, combine: 16 }, 54);
  });
  it('expert TP 2 in combined 1F1B: half the ETP pair with each all-to-all\'s stage', () => {
    // as above at an eighth of the bandwidth: dispatch 4, combine 8, ETP all-gather 8 + reduce-scatter 8. Stages:
    // forward dispatch 4 + 8 = 12, forward combine 8 + 8 = 16, backward dispatch 8 + 8 = 16, backward combine 16;
    // launch-only compute: attention 4 / 6, MoE 9 / 14: paired (16 - 4) + 0 + (16 - 9) + (16 - 6) = 29;
    // communication 28 + 32 = 60, a quarter unpaired: 15 + 0.75 x 29; dispatch 12 + 8 + 8 = 28 of 60
    const r = sim(MO, { tp: 2, etp: 2, ep: 2, ep_overlap: 'a2a-1f1b' }, { hw: { scaleup_domain: 2, devices_per_node: 2, intra_bw: 8, inter_bw: 4 }, t: { dispatch_bytes: 1 } });
    const x = 15 + 0.75 * 29;
    close(r.breakdown.dispatch, 4 * (2 + (x * 28) / 60));
    close(r.breakdown.combine, 4 * (2 + (x * 32) / 60));
  });
});

describe('host time and CUDA graphs', () => {
  it('the host issues each kernel in hostKernelS; a layer takes the slower of host and GPU, the LM head is not counted', () => {
    // 3 s a kernel against 1 s: per layer forward 7 x 2 = 14, backward 11 x 2 = 22; 2 layers
    expectBreakdown(sim(D, {}, { opts: { hostKernelS: 3 } }), { compute: 156, host: 288 }, 444);
    // a recomputed forward is issued in the backward: 18 kernels, 36 over the GPU's 18
    expectBreakdown(sim(D, { recompute: 'full' }, { opts: { hostKernelS: 3 } }), { compute: 156, recompute: 56, host: 4 * (28 + 72) }, 612);
    // a host faster than the GPU adds nothing
    expectBreakdown(sim(D, {}, { opts: { hostKernelS: 0.5 } }), { compute: 156 }, 156);
  });
  it('default host cost: HOST_KERNEL_S() a kernel', () => {
    const spec = { model: D, hardware: FREE, devices: 1, parallel: P(), training: TR() };
    // free GPU: 4 micro-batches x 2 layers x 18 kernels of host time
    const r = simulate(spec, { constants: K0, launchS: 0 });
    close(r.breakdown.host, 144 * HOST_KERNEL_S());
    expect(r.breakdown).toEqual(simulate(spec, { constants: K0, launchS: 0, hostKernelS: FITTED.host_kernel_s.value }).breakdown);
  });
  it('CUDA graphs: a captured layer\'s kernels at the in-graph cost, one launch for the host; the head outside', () => {
    // graph 0.5 s a kernel: layer 3.5 / 5.5; host 5 s a graph: forward 5 - 3.5 = 1.5, backward hidden; head 3 at 1 s
    const r = sim(D, { cuda_graphs: true }, { opts: { hostKernelS: 5, graphLaunchS: 0.5 } });
    expectBreakdown(r, { compute: 4 * 21, host: 4 * 3 }, 96);
    // the default in-graph cost
    const spec = { model: D, hardware: FREE, devices: 1, parallel: P({ cuda_graphs: true }), training: TR() };
    const g = simulate(spec, { constants: K0, launchS: 1, hostKernelS: 0 });
    close(g.breakdown.compute, 4 * (36 * GRAPH_LAUNCH_S() + 3));
    // graphLaunchS without cuda_graphs changes nothing
    expectBreakdown(sim(D, {}, { opts: { graphLaunchS: 0.5 } }), { compute: 156 }, 156);
  });
  it('CUDA graphs with a dropless MoE block: its routed part (dispatch, experts, combine) is not captured', () => {
    // MoE layer: attention 4 / 6 and route 2 / 3 at 0.5, routed part 7 / 11 at 1: 10 / 15.5; host: 1 + 7 and 1 + 11
    // launches at 2 s: 16 - 10 = 6, 24 - 15.5 = 8.5; dense layer 3.5 / 5.5 under 2 s: nothing; head 3
    const r = sim(MO, { ep: 2, cuda_graphs: true }, { opts: { hostKernelS: 2, graphLaunchS: 0.5 } });
    expectBreakdown(r, { compute: 4 * (9 + 5 + 3), route: 10, dispatch: 8, experts: 56, combine: 8, host: 4 * 14.5 }, 208);
  });
  it('CUDA graphs with token drop (capacity factor 1.25): the whole MoE layer captured, one launch', () => {
    // load = the capacity factor; MoE layer 13 / 20 at 0.5: 6.5 / 10; host 8 s a graph: dense layer 8 - 3.5 and 8 - 5.5,
    // MoE layer 8 - 6.5 and hidden: 4.5 + 2.5 + 1.5 = 8.5
    const r = sim(MO, { ep: 2, cuda_graphs: true }, { t: { load_imbalance: 0, capacity_factor: 1.25 }, opts: { hostKernelS: 8, graphLaunchS: 0.5 } });
    expectBreakdown(r, { compute: 4 * (9 + 5 + 3), route: 10, dispatch: 4, experts: 28, combine: 4, host: 34 }, 148);
    // without graphs token drop changes no kernel count: every kernel issued at 1 s, host 8 s a kernel
    const n = sim(MO, { ep: 2 }, { t: { load_imbalance: 0, capacity_factor: 1.25 }, opts: { hostKernelS: 8 } });
    // per micro-batch: (7 + 13) x 7 forward, (11 + 20) x 7 backward
    expect(n.breakdown.host).toBe(4 * 7 * 51);
  });
});

describe('activation offload over the host link', () => {
  // dense GQA activations per token per layer: norms 2 x 2h, qkv input + output 2h + 2 x 16, flash out 2 x 8 + 4 x 2,
  // FFN 2h + 6 x 16 = 16 + 48 + 24 + 16 + 112 = 216 bytes; 4 tokens x 2 layers = 1728 bytes a micro-batch
  it('out during the forward, back during the backward; what the compute of that pass does not hide is exposed', () => {
    // half of it, 864 bytes, at 96 x 0.5 B/s = 18 s: 18 - 15 forward, hidden by the 24 s backward
    expectBreakdown(sim(D, { offload: 0.5 }, { hw: { host_bw: 96, coll_eff: 0.5 } }), { compute: 156, offload: 12 }, 168);
    // 24 B/s: 36 s: 21 + 12
    expectBreakdown(sim(D, { offload: 0.5 }, { hw: { host_bw: 24 } }), { compute: 156, offload: 132 }, 288);
  });
  it('no offload: no host link needed', () => {
    expectBreakdown(sim(D, { offload: 0 }, { hw: { host_bw: 0 } }), { compute: 156 }, 156);
  });
});

describe('data parallelism and the optimizer', () => {
  // dense GQA, dp 2: 2 micro-batches, t_f 15, t_b 24; 1408 local parameters (fp32 gradients 5632 bytes, bf16 weights 2816)
  const dp = (p: Partial<Parallel>, bw: number, t: Partial<Training> = {}) => sim(D, { dp: 2, ...p }, { hw: { intra_bw: bw }, devices: 2, t }).breakdown.dp_comm;
  it('ZeRO >= 1: reduce-scatter of the gradients and all-gather of the weights, after the step without overlap', () => {
    // 88 B/s: 1/2 x 5632 / 88 = 32, 1/2 x 2816 / 88 = 16
    expect(dp({ zero: 1 }, 88)).toBe(48);
    expect(dp({ zero: 2 }, 88)).toBe(48);
    // bf16 gradients: 16 + 16
    expect(dp({ zero: 1 }, 88, { grad_precision: 'bf16' })).toBe(32);
  });
  it('ZeRO-0: an all-reduce, 2 x 1/2 x 5632 / 88 = 64, nothing gathered', () => {
    expect(dp({ zero: 0 }, 88)).toBe(64);
  });
  it('with --overlap-grad-reduce / --overlap-param-gather: behind the last backward and the first forward', () => {
    // max(0, 32 - 24) + max(0, 16 - 15)
    expect(dp({ zero: 1, dp_overlap: true }, 88)).toBe(9);
    expect(dp({ zero: 0, dp_overlap: true }, 88)).toBe(40);
    // interleaved pp 2, vpp 2 (t_f 7.5, t_b 12 a stage): a stage holds 1 layer + the larger of embedding and head,
    // 192 + 384 + 128 = 704 parameters: reduce-scatter 16, all-gather 8, 8 and 4 a chunk. Chunk 1's reduction starts
    // 3 chunk-backwards (18 s) before the end, chunk 0's behind it or at its own last backward (6 s before):
    // max(8 - 18, -6) + 8 = 2; all-gathers max(4 - 3.75, 8 - 3 x 3.75) = 0.25
    expect(dp({ zero: 1, dp_overlap: true, pp: 2, vpp: 2, schedule: 'interleaved' }, 88)).toBe(2.25);
  });
  it('ZeRO-3: the weights gathered again forward and backward of every micro-batch, beyond its compute', () => {
    // 44 B/s: reduce-scatter 64, all-gather 32; overlapped 40 + 17; per micro-batch max(0, 2 x 32 - 39) = 25, x 2
    expect(dp({ zero: 3, dp_overlap: true }, 44)).toBe(107);
    expect(dp({ zero: 3 }, 44)).toBe(96 + 50);
    // 88 B/s: 2 x 16 < 39
    expect(dp({ zero: 3, dp_overlap: true }, 88)).toBe(9);
  });
  it('MoE: dense gradients over dp x cp, expert gradients over the expert-data-parallel group tp cp dp / (ep etp), strided by ep etp', () => {
    // MO, dp 4, ep 2 at 96 B/s; 1056 dense, 384 expert parameters; expert DP 2
    // reduce-scatter 3/4 x 4224 / 96 = 33 + 1/2 x 1536 / 96 = 8; all-gather 16.5 + 4
    const r = sim(MO, { ep: 2, dp: 4 }, { hw: { intra_bw: 96 }, devices: 4 });
    expect(r.breakdown.dp_comm).toBe(61.5);
    const z = sim(MO, { ep: 2, dp: 4, zero: 0 }, { hw: { intra_bw: 96 }, devices: 4 });
    expect(z.breakdown.dp_comm).toBe(66 + 16);
    // expert DP 4 / 2 = 2 ranks at stride 2 span 4 > 2 devices of a node: the NIC (24 B/s) for the experts, and for the
    // dense group (4 ranks, stride 1) too: 3/4 x 4224 / 24 + 1/2 x 1536 / 24, 3/4 x 2112 / 24 + 1/2 x 768 / 24
    const n = sim(MO, { ep: 2, dp: 4 }, { hw: { intra_bw: 96, inter_bw: 24, scaleup_domain: 2 }, devices: 4 });
    expect(n.breakdown.dp_comm).toBe(132 + 32 + 66 + 16);
    // expert TP 2, ep 1, tp 2, dp 2: 528 dense parameters over dp 2 at stride tp 2 (span 4: the NIC), 384 expert over
    // expert DP 2 x 2 / 2 = 2 at stride ep x etp = 2 (the NIC): 1/2 x 2112 / 24 + 1/2 x 1536 / 24, 1/2 x 1056 / 24 + 1/2 x 768 / 24
    const e = sim(MO, { tp: 2, etp: 2, dp: 2 }, { hw: { intra_bw: 96, inter_bw: 24, scaleup_domain: 2 }, devices: 4 });
    expect(e.breakdown.dp_comm).toBe(44 + 32 + 22 + 16);
    // ZeRO-0: all-reduces of twice the reduce-scatters
    expect(sim(MO, { tp: 2, etp: 2, dp: 2, zero: 0 }, { hw: { intra_bw: 96, inter_bw: 24, scaleup_domain: 2 }, devices: 4 }).breakdown.dp_comm).toBe(88 + 64);
  });
  it('the optimizer: 30 bytes of HBM traffic per locally updated parameter, sharded with ZeRO >= 1', () => {
    // 60 B/s x bw_eff 0.5: a second a parameter
    const opt = (p: Partial<Parallel>, devices = 4) => sim(MO, p, { hw: { hbm_bw: 60, bw_eff: 0.5 }, devices, opts: COMM }).breakdown.optimizer;
    // dense 1056 / dp 4 + experts 384 / expert dp 2
    expect(opt({ ep: 2, dp: 4 })).toBe(456);
    expect(opt({ ep: 2, dp: 4, zero: 3 })).toBe(456);
    // ZeRO-0: every local parameter
    expect(opt({ ep: 2, dp: 4, zero: 0 })).toBe(1440);
    // dp 2 x cp 2: dense over 4, experts over 2 x 2 / 2 = 2
    expect(opt({ ep: 2, dp: 2, cp: 2 })).toBe(456);
    expect(opt({ ep: 2, dp: 2 }, 2)).toBe(528 + 384);
    // expert DP below 1 (ep 2 > dp 1) counts as 1
    expect(opt({ ep: 2, dp: 1 }, 1)).toBe(1440);
  });
});

describe('whole layers per stage (stage_split, reported beside the step)', () => {
  const D4: ModelShape = { ...D, layers: 4, dense_layers: 4 };
  it('balanced: 2 + 2 layers of 18 s and the head\'s 3 s on the last stage', () => {
    const r = sim(D4, { pp: 2 });
    // busiest 2 x 18 + 3 = 39 over the mean (72 + 3) / 2
    expect(r.stage_split).toEqual({ layers: [2, 2], busiest_over_mean: 39 / 37.5 });
    expect(r.stage_split).toBe(r.stage_split);
  });
  it('a layer\'s work counts its recompute, TP (a recomputed forward\'s again), CP and exposed EP', () => {
    // tp 2 at 32 B/s: 7 + 11 + 7 recomputed + 8 TP + 4 repeated = 37 a layer; head 3
    const r = sim(D4, { pp: 2, tp: 2, recompute: 'full' }, { hw: { intra_bw: 32 } });
    expect(r.stage_split).toEqual({ layers: [2, 2], busiest_over_mean: 77 / 75.5 });
    // without recompute no forward repeats: 18 + 8
    expect(sim(D4, { pp: 2, tp: 2 }, { hw: { intra_bw: 32 } }).stage_split).toEqual({ layers: [2, 2], busiest_over_mean: 55 / 53.5 });
    // cp 4 at 16 B/s: 18 + 7 a layer
    const c = sim(D4, { pp: 2, cp: 4 }, { hw: { intra_bw: 16 } });
    expect(c.stage_split).toEqual({ layers: [2, 2], busiest_over_mean: 53 / 51.5 });
  });
  it('an MTP module on the last stage with the LM heads: dense MTP as a dense layer', () => {
    // last stage: 18 (MTP layer) + 2 heads x 3 = 24: [3, 1] with 54 against (72 + 24) / 2
    expect(sim({ ...D4, mtp_layers: 1 }, { pp: 2 }).stage_split).toEqual({ layers: [3, 1], busiest_over_mean: 54 / 48 });
  });
  it('MoE MTP as an MoE layer, with its exposed all-to-all', () => {
    // ep 2 at 64 B/s: MoE layer 13 + 20 + 4 = 37, dense 18: unit (18 + 37 + 37 - 37) / 2 = 27.5; last 37 + 6 = 43:
    // both layers on the first stage (55) beats 27.5 + 43 + 27.5
    const r = sim({ ...MO, mtp_layers: 1 }, { ep: 2, pp: 2 }, { hw: { intra_bw: 64 } });
    expect(r.stage_split).toEqual({ layers: [2, 0], busiest_over_mean: 55 / 49 });
  });
});

describe('memory, fit, and the result\'s other fields', () => {
  it('memory per device in GiB, by part, from memoryPerDevice with the step\'s micro-batches', () => {
    const par = P({ pp: 4 });
    const r = sim(D, { pp: 4 }, { t: { global_batch: 2 } });
    // 2 micro-batches: 2 in flight on the first stage, not pp = 4
    const mem = memoryPerDevice(D, par, TR({ global_batch: 2 }), 2);
    expect(mem.total).toBeLessThan(memoryPerDevice(D, par, TR({ global_batch: 2 }), 4).total);
    expect(r.memory_gib_per_device).toBe(mem.total / 2 ** 30);
    expect(r.memory_breakdown_gib).toEqual({
      weights: mem.weights / 2 ** 30, gradients: mem.gradients / 2 ** 30, optimizer: mem.optimizer / 2 ** 30,
      activations: mem.activations / 2 ** 30, comm_buffers: mem.comm_buffers / 2 ** 30, reserved: mem.reserved / 2 ** 30, total: mem.total / 2 ** 30,
    });
  });
  it('fits: the total at most all of HBM (USABLE_HBM_FRACTION 1)', () => {
    const total = memoryPerDevice(D, P(), TR(), 4).total;
    expect(sim(D, {}, { hw: { hbm_bytes: total } }).fits).toBe(true);
    expect(sim(D, {}, { hw: { hbm_bytes: total - 1 } }).fits).toBe(false);
  });
});

describe('errors', () => {
  const thrown = (f: () => unknown): MoekitError => {
    try { f(); } catch (e) { return e as MoekitError; }
    throw new Error('did not throw');
  };
  it('a non-finite output names the field', () => {
    // no peak: a GEMM takes forever
    const e = thrown(() => sim(D, {}, { hw: { peak_bf16: 0 } }));
    expect(e).toBeInstanceOf(MoekitError);
    expect(e.message).toBe('the simulation of this layout gives a non-finite step_time_s (Infinity); a spec value is out of any modelled range');
    expect(e.file).toBe('spec');
    // everything free: a step of 0 s, infinitely many tokens a second
    const f = thrown(() => sim(D, {}, { opts: COMM }));
    expect(f.message).toBe('the simulation of this layout gives a non-finite tokens_per_s (Infinity); a spec value is out of any modelled range');
  });
  it('a step time that is not positive', () => {
    // a kernel at -1 s, pp 2: t_f = (-15 + host max(0, 0 - (-7)) x 2 layers) / 2 = -0.5, t_b = (-24 + 11 x 2) / 2 = -1;
    // 4 x -1.5, a bubble of -1.5, the offload term's max(0, 0 - t) gives back 4 x 1.5
    const e = thrown(() => sim(D, { pp: 2 }, { opts: { launchS: -1 } }));
    expect(e).toBeInstanceOf(MoekitError);
    expect(e.message).toBe('the simulation of this layout gives a step time of -1.5 s');
    expect(e.file).toBe('spec');
  });
});
