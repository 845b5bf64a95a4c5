/**
 * Operator-level time model: a roofline with shape-dependent efficiency, and the two single-device
 * operators `moekit plan op` predicts (one MoE layer, one causal attention block).
 *
 * Kernel time (one device):
 *   GEMM  t = max(F / (alpha * P), B_act / (eta * BW)) + B_w / (eta * BW) + lambda
 *         F = 2*M*N*K summed over groups, B_w = bytes of every group's weights, B_act = the other operands' bytes.
 *         The weight term ADDS rather than max(): on the measured H200 a grouped GEMM whose groups hold
 *         few rows (fine-grained experts: 64-256 tokens per expert) streams its weights at close to HBM
 *         rate and its math does not hide that traffic. With large M the byte term vanishes and
 *         alpha*P remains; with small M the weight bytes dominate ("small grouped GEMMs of fine-grained
 *         experts run far below peak"). This is the roofline of Williams et al. (CACM 2009) with the
 *         overlap of compute and memory traffic set to zero, which fits our measurements better.
 *   mem   t = B / (eta * BW) + lambda                       (elementwise, gather, sort, copies)
 *   scat  t = B / (eta_s * BW) + lambda                     (atomic scatter-add, index_add_/index_put_ in bf16)
 *   flash t = F / (alpha_fa * P) + lambda, alpha_fa separate for forward and backward (FlashAttention-2,
 *         Dao 2023: backward does 2.5x the forward matmul FLOPs and runs at lower utilisation).
 *
 * Constants: alpha (hardware.gemm_eff) and eta (hardware.bw_eff, a measured copy) come from the hardware
 * preset; eta_s, lambda, alpha_fa_fwd, alpha_fa_bwd are the OP_CONSTANTS below. alpha, eta_s, lambda and the two
 * alpha_fa are fitted together by least squares on log time over the fit set only (lease A,
 * docs/plan-op-measurements.json; fit-op.ts, bench/plan/fit_op_model.mjs) and checked on the held-out shapes; their
 * values, provenance and the split live in fitted.ts. They are global constants of "PyTorch eager on one H200", not
 * per-shape values.
 *
 * MoE phases follow the engine's names: route -> dispatch -> experts -> combine.
 */
import { FITTED } from './fitted.js';
import type { Hardware } from './hardware.js';

export interface OpConstants {
  /** fraction of HBM bandwidth reached by bf16 atomic scatter-add (index_add_, index_put_ accumulate) */
  scatter_eff: number;
  /** per-kernel overhead, seconds (launch + tail; in eager PyTorch also the host dispatch it cannot hide) */
  launch_s: number;
  /** FlashAttention forward / backward fraction of peak_bf16 */
  flash_fwd_eff: number;
  flash_bwd_eff: number;
}

/** Fitted on the fit set (lease A, docs/plan-op-measurements.json; H200, torch 2.11, bf16): values and provenance in fitted.ts. */
export const OP_CONSTANTS: OpConstants = {
  scatter_eff: FITTED.scatter_eff.value,
  launch_s: FITTED.launch_s.value,
  flash_fwd_eff: FITTED.flash_fwd_eff.value,
  flash_bwd_eff: FITTED.flash_bwd_eff.value,
};

export type Kernel =
  | { kind: 'gemm'; flops: number; bytes: number; weight_bytes: number; fp8?: boolean; name: string; launches?: number }
  | { kind: 'mem'; bytes: number; name: string; launches?: number }
  | { kind: 'scatter'; bytes: number; name: string }
  | { kind: 'flash'; flops: number; bwd: boolean; name: string };

export function kernelTime(k: Kernel, hw: Hardware, c: OpConstants = OP_CONSTANTS): number {
  const bw = hw.hbm_bw * hw.bw_eff;
  switch (k.kind) {
    case 'gemm': {
      const rate = k.fp8 && hw.peak_fp8 > 0 ? hw.fp8_gemm_eff * hw.peak_fp8 : hw.gemm_eff * hw.peak_bf16;
      // weight bytes add to the time; activation bytes overlap the math (see the header)
      return Math.max(k.flops / rate, (k.bytes - k.weight_bytes) / bw) + k.weight_bytes / bw + (k.launches ?? 1) * c.launch_s;
    }
    case 'mem':
      return k.bytes / bw + (k.launches ?? 1) * c.launch_s;
    case 'scatter':
      return k.bytes / (hw.hbm_bw * c.scatter_eff) + c.launch_s;
    case 'flash':
      return k.flops / ((k.bwd ? c.flash_bwd_eff : c.flash_fwd_eff) * (hw.attn_eff ?? 1) * hw.peak_bf16) + c.launch_s;
  }
}

/** kernel launches of a list (a kernel with `launches` n stands for n launches: one per expert of a per-expert GEMM loop) */
export function launchesOf(ks: Kernel[]): number {
  let n = 0;
  for (const k of ks) n += k.kind === 'gemm' || k.kind === 'mem' ? k.launches ?? 1 : 1;
  return n;
}

export function kernelsTime(ks: Kernel[], hw: Hardware, c: OpConstants = OP_CONSTANTS): number {
  let t = 0;
  for (const k of ks) t += kernelTime(k, hw, c);
  return t;
}

/**
 * A (grouped) GEMM C[M,N] = A[M,K] B[K,N] with `groups` distinct B matrices (experts), `e` bytes per element
 * (2 = bf16, 1 = fp8 operands with a bf16 output).
 */
export function gemm(name: string, M: number, N: number, K: number, groups = 1, e = 2): Kernel {
  return { kind: 'gemm', name, flops: 2 * M * N * K, bytes: e * (M * K + groups * K * N) + 2 * M * N, weight_bytes: e * groups * K * N, fp8: e === 1 };
}

/** Forward and backward (dgrad + wgrad) GEMMs of a linear layer y = x W, x [M, K], W [K, N] (per group). */
export function linearFwdBwd(name: string, M: number, N: number, K: number, groups = 1, e = 2): { fwd: Kernel[]; bwd: Kernel[] } {
  const fwd: Kernel[] = [gemm(`${name}`, M, N, K, groups, e)];
  // dgrad: dx[M,K] = dy[M,N] W^T ; wgrad: dW[K,N] = x^T dy, reduction over M
  const bwd: Kernel[] = [gemm(`${name}.dgrad`, M, K, N, groups, e), { kind: 'gemm', name: `${name}.wgrad`, flops: 2 * M * N * K, bytes: e * (M * K + M * N) + 2 * groups * K * N, weight_bytes: 2 * groups * K * N, fp8: e === 1 }];
  if (e === 1) {
    // FP8 with fine-grained scaling quantises its operands on the fly (read bf16, write fp8 + scales: ~3 bytes an
    // element): the input x forward; the output gradient dy for dgrad; x^T and dy^T, re-quantised along the other
    // axis, for wgrad (DeepSeek-V3 sec. 3.3; Transformer Engine's cast-transpose kernels). Weights are cast once a step.
    fwd.unshift({ kind: 'mem', name: `${name}.quant`, bytes: 3 * M * K });
    bwd.unshift({ kind: 'mem', name: `${name}.quant.bwd`, bytes: 3 * M * N + 3 * (M * K + M * N) });
  }
  return { fwd, bwd };
}

const mem = (name: string, bytes: number): Kernel => ({ kind: 'mem', name, bytes });
const scatter = (name: string, bytes: number): Kernel => ({ kind: 'scatter', name, bytes });

export interface MoeShape {
  tokens: number;
  hidden: number;
  experts: number;
  top_k: number;
  expert_ffn: number;
}

export type MoePhase = 'route' | 'dispatch' | 'experts' | 'combine';
export const MOE_PHASES: MoePhase[] = ['route', 'dispatch', 'experts', 'combine'];

/**
 * Kernels of one MoE layer on one device, no EP, as PyTorch eager runs it (bench/plan/measure_ops.py):
 *  route    : logits = x Wr; softmax (fp32); top-k; renormalise
 *  dispatch : argsort of the T*k expert ids; bincount; cumsum; gather of the rows  x[tok]
 *  experts  : grouped GEMM (T*k, 2I, H) over E groups; SwiGLU; grouped GEMM (T*k, H, I)
 *  combine  : scale rows by the routing weights; index_add_ back into [T, H]
 * Backward mirrors it: the gather's backward is an atomic scatter-add, index_add_'s backward a gather.
 * `skew` (>= 1) scales the rows the experts see (the most-loaded device's share when this layer is one EP rank).
 */
export function moeLayerKernels(s: MoeShape, skew = 1, e = 2): Record<MoePhase, { fwd: Kernel[]; bwd: Kernel[] }> {
  const { tokens: T, hidden: H, experts: E, top_k: K, expert_ffn: I } = s;
  const R = T * K * skew; // rows through the experts
  const TE = T * E;
  const route = linearFwdBwd('router', T, E, H);
  const w1 = linearFwdBwd('experts.w13', R, 2 * I, H, E, e);
  const w2 = linearFwdBwd('experts.w2', R, H, I, E, e);
  return {
    route: {
      fwd: [...route.fwd, mem('softmax.cast', 6 * TE), mem('softmax', 8 * TE), mem('topk', 4 * TE + 12 * T * K), mem('topk.sum', 4 * T * K), mem('topk.div', 8 * T * K), mem('topk.cast', 6 * T * K)],
      bwd: [mem('topk.cast.bwd', 6 * T * K), mem('topk.div.bwd', 12 * T * K), mem('topk.scatter.bwd', 4 * TE), mem('softmax.bwd', 12 * TE), mem('cast.bwd', 6 * TE), ...route.bwd],
    },
    dispatch: {
      fwd: [mem('argsort', 8 * 16 * T * K), mem('argsort.aux', 16 * T * K), mem('tok', 16 * T * K), mem('bincount', 8 * T * K), mem('cumsum', 8 * E), mem('gather', 4 * R * H)],
      bwd: [mem('zeros', 2 * T * H), scatter('gather.bwd', 2 * R * H), mem('x.grad.add', 6 * T * H)],
    },
    experts: {
      fwd: [...w1.fwd, mem('silu', 4 * R * I), mem('mul', 6 * R * I), ...w2.fwd],
      bwd: [...w2.bwd, mem('mul.bwd', 10 * R * I), mem('silu.bwd', 6 * R * I), mem('chunk.bwd', 8 * R * I), ...w1.bwd],
    },
    combine: {
      fwd: [mem('w.gather', 4 * T * K), mem('scale', 4 * R * H), mem('zeros', 2 * T * H), scatter('index_add', 2 * R * H)],
      bwd: [mem('index_add.bwd', 4 * R * H), mem('scale.bwd.x', 6 * R * H), mem('scale.bwd.w', 4 * R * H), mem('w.gather.bwd', 8 * T * K)],
    },
  };
}

export interface OpPrediction {
  fwd_ms: number;
  fwd_bwd_ms: number;
  phases_fwd_ms: Record<string, number>;
  phases_bwd_ms: Record<string, number>;
  flops_fwd: number;
}

function predict(parts: Record<string, { fwd: Kernel[]; bwd: Kernel[] }>, hw: Hardware, c: OpConstants): OpPrediction {
  const pf: Record<string, number> = {};
  const pb: Record<string, number> = {};
  let f = 0;
  let b = 0;
  let flops = 0;
  for (const [name, ks] of Object.entries(parts)) {
    pf[name] = kernelsTime(ks.fwd, hw, c) * 1e3;
    pb[name] = kernelsTime(ks.bwd, hw, c) * 1e3;
    f += pf[name];
    b += pb[name];
    for (const k of ks.fwd) if (k.kind === 'gemm' || k.kind === 'flash') flops += k.flops;
  }
  return { fwd_ms: f, fwd_bwd_ms: f + b, phases_fwd_ms: pf, phases_bwd_ms: pb, flops_fwd: flops };
}

/** `moekit plan op moe-layer`: one MoE layer in bf16 on one device, no EP. */
export function predictMoeLayer(s: MoeShape, hw: Hardware, c: OpConstants = OP_CONSTANTS): OpPrediction {
  return predict(moeLayerKernels(s), hw, c);
}

export interface AttnShape {
  batch: number;
  seq: number;
  hidden: number;
  heads: number;
  kv_heads: number;
  head_dim: number;
}

/**
 * Kernels of a causal attention block: QKV projection, FlashAttention (causal), output projection.
 * Flash forward does 2 matmuls of 2*S*S/2*D FLOPs per head (causal half); its backward 5 (2.5x).
 */
export function attentionKernels(a: AttnShape, e = 2): Record<string, { fwd: Kernel[]; bwd: Kernel[] }> {
  const T = a.batch * a.seq;
  const qkvN = (a.heads + 2 * a.kv_heads) * a.head_dim;
  const oK = a.heads * a.head_dim;
  const flashF = 4 * a.batch * a.heads * a.head_dim * a.seq * ((a.seq + 1) / 2);
  const qkv = linearFwdBwd('qkv', T, qkvN, a.hidden, 1, e);
  const out = linearFwdBwd('o', T, a.hidden, oK, 1, e);
  return {
    qkv: { fwd: qkv.fwd, bwd: [mem('qkv.cat.bwd', 4 * T * qkvN), ...qkv.bwd] },
    flash: {
      fwd: [{ kind: 'flash', name: 'flash.fwd', flops: flashF, bwd: false }],
      bwd: [{ kind: 'flash', name: 'flash.bwd', flops: 2.5 * flashF, bwd: true }],
    },
    out: { fwd: [mem('o.transpose', 4 * T * oK), ...out.fwd], bwd: [...out.bwd, mem('o.transpose.bwd', 4 * T * oK)] },
  };
}

/** `moekit plan op attention`: one causal attention block in bf16 on one device. */
export function predictAttention(a: AttnShape, hw: Hardware, c: OpConstants = OP_CONSTANTS): OpPrediction {
  return predict(attentionKernels(a), hw, c);
}
