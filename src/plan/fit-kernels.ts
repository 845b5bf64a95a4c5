/**
 * The H200 kernel measurements of issue 13 (scripts/plan_h200_kernels.py -> docs/plan-kernels-h200.json): a model of
 * each measured kernel, a fit of its constants on the rows marked `set: 'fit'` only, and the errors on the rows marked
 * `set: 'check'` (the split is fixed in the script, by shape, before anything was measured).
 *
 * Every row times `reps` back-to-back calls, so a call costs max(host, GPU): the host issue time of one eager op
 * (`host_s`, a floor) or the GPU's roofline, whichever is longer (op.ts' roofline: weight bytes add, activation bytes
 * overlap the math). Kernels:
 *   gemm     y[M,N] = x[M,K] w[K,N]: bf16 at alpha_bf16 x 989 TFLOP/s, FP8 (torch._scaled_mm, per-tensor scales) at
 *            alpha_fp8 x 1,979 TFLOP/s, its own host floor (host_fp8_s: _scaled_mm's Python path is longer)
 *   grouped  G experts' GEMMs in one kernel (torch._grouped_mm bf16, torch._scaled_grouped_mm FP8 rowwise)
 *   sdpa     causal attention per backend: F = 4 B N D S (S+1)/2 forward, 2.5 F backward, each at the backend's
 *            fraction of the BF16 peak, plus the kv-head expansion (repeat_interleave: a copy) and its backward
 *   route    router GEMM + fp32 cast + softmax + top-k (4 eager ops)
 *   permute  argsort (radix sort: ~4 passes over the keys) + index_select of the T k rows
 *   unpermute zeros + weighting + index_add_ (bf16 atomic scatter at scatter_eff of HBM)
 * The constants (KernelConstants) and their fit are what `plan op gemm` and `plan op attention --backend` use; the
 * training simulator takes the GEMM efficiencies and the cuDNN attention efficiencies from here (fitted.ts).
 */
import type { Hardware } from './hardware.js';
import { nelderMead } from './fit-op.js';

export interface KernelRow {
  group: 'gemm' | 'grouped' | 'cast' | 'sdpa' | 'route' | 'copy';
  name: string;
  set: 'fit' | 'check';
  [k: string]: unknown;
}
export interface KernelFile { info: Record<string, string>; rows: KernelRow[] }

export type SdpaBackend = 'flash' | 'efficient' | 'cudnn';
export const SDPA_BACKENDS: SdpaBackend[] = ['flash', 'efficient', 'cudnn'];

export interface KernelConstants {
  alpha_bf16: number;
  alpha_fp8: number;
  /** host floor of one eager op (s) */
  host_s: number;
  /** host floor of torch._scaled_mm / _scaled_grouped_mm (s) */
  host_fp8_s: number;
  /** fraction of HBM bandwidth of bf16 atomic scatter-add */
  scatter_eff: number;
  /** causal attention forward / backward fraction of the BF16 peak, per SDPA backend */
  sdpa: Record<SdpaBackend, { fwd: number; bwd: number }>;
}

/** one measured number of a row: what it is, the measured and the predicted time */
export interface KernelNumber { row: string; what: string; set: 'fit' | 'check'; measured_ms: number; predicted_ms: number; error: number }

const num = (r: KernelRow, k: string): number => r[k] as number;

function roof(hw: Hardware, flops: number, actBytes: number, wBytes: number, rate: number): number {
  const bw = hw.hbm_bw * hw.bw_eff;
  return Math.max(flops / rate, actBytes / bw) + wBytes / bw;
}

/** GEMM [M,K] x [K,N] (x groups, rows M each group's share) at e bytes an element, bf16 output, seconds */
export function gemmTime(hw: Hardware, c: KernelConstants, M: number, N: number, K: number, fp8: boolean, groups = 1): number {
  const e = fp8 ? 1 : 2;
  const rate = fp8 ? c.alpha_fp8 * hw.peak_fp8 : c.alpha_bf16 * hw.peak_bf16;
  const gpu = roof(hw, 2 * M * N * K, e * M * K + 2 * M * N, e * groups * K * N, rate);
  return Math.max(fp8 ? c.host_fp8_s : c.host_s, gpu);
}

/** causal SDPA of [B, N, S, D] queries over G kv heads (expanded to N), forward and forward + backward, seconds */
export function sdpaTime(hw: Hardware, c: KernelConstants, backend: SdpaBackend, s: { B: number; S: number; N: number; G: number; D: number }): { fwd: number; fwd_bwd: number } {
  const F = 4 * s.B * s.N * s.D * s.S * ((s.S + 1) / 2);
  const eff = c.sdpa[backend];
  const bw = hw.hbm_bw * hw.bw_eff;
  // repeat_interleave of k and v: read B G S D, write B N S D, 2 bytes, twice; backward: the sum back over the copies
  const expand = s.G !== s.N ? Math.max(c.host_s, (2 * 2 * s.B * s.S * s.D * (s.G + s.N)) / bw) : 0;
  // the kernel's own HBM traffic (q, k, v read, o written; backward: q, k, v, o, do read, dq, dk, dv written) does not
  // hide behind the math at a tile's start and end: added, like the weight bytes of a GEMM
  const io = (2 * s.B * s.S * s.D * (2 * s.N + 2 * s.G)) / bw;
  const fwd = Math.max(c.host_s, F / (eff.fwd * hw.peak_bf16) + io) + expand;
  const bwd = Math.max(c.host_s, (2.5 * F) / (eff.bwd * hw.peak_bf16) + 2 * io) + expand;
  return { fwd, fwd_bwd: fwd + bwd };
}

const memOp = (hw: Hardware, c: KernelConstants, bytes: number) => Math.max(c.host_s, bytes / (hw.hbm_bw * hw.bw_eff));

/** the predicted numbers of one row (ms), keyed as the row's measured fields */
export function predictKernelRow(r: KernelRow, hw: Hardware, c: KernelConstants): Record<string, number> {
  const ms = (s: number) => s * 1e3;
  switch (r.group) {
    case 'gemm':
      return { bf16_ms: ms(gemmTime(hw, c, num(r, 'M'), num(r, 'N'), num(r, 'K'), false)), fp8_ms: ms(gemmTime(hw, c, num(r, 'M'), num(r, 'N'), num(r, 'K'), true)) };
    case 'grouped': {
      const G = num(r, 'G'), R = num(r, 'R'), H = num(r, 'H'), I = num(r, 'I');
      return {
        w13_bf16_ms: ms(gemmTime(hw, c, G * R, 2 * I, H, false, G)), w2_bf16_ms: ms(gemmTime(hw, c, G * R, H, I, false, G)),
        // torch._scaled_grouped_mm (rowwise FP8) is data only: 235-937 TFLOP/s with no roofline order (its w2 of
        // Qwen3-235B's shape at 317 TFLOP/s, below bf16); Transformer Engine does not run it
      };
    }
    case 'sdpa': {
      const t = sdpaTime(hw, c, r.backend as SdpaBackend, { B: num(r, 'B'), S: num(r, 'S'), N: num(r, 'N'), G: num(r, 'G'), D: num(r, 'D') });
      return { fwd_ms: ms(t.fwd), fwd_bwd_ms: ms(t.fwd_bwd) };
    }
    case 'route': {
      const T = num(r, 'T'), H = num(r, 'H'), E = num(r, 'E'), K = num(r, 'K');
      const route = gemmTime(hw, c, T, E, H, false) + memOp(hw, c, 6 * T * E) + memOp(hw, c, 8 * T * E) + memOp(hw, c, 4 * T * E + 12 * T * K);
      // argsort of T K int64 keys: a radix sort, ~4 passes of read + write of keys and values (16 B each); the
      // gather of the token ids; index_select of T K rows [H] bf16
      const permute = 4 * memOp(hw, c, 32 * T * K) + memOp(hw, c, 24 * T * K) + memOp(hw, c, 4 * T * K * H);
      const unpermute = memOp(hw, c, 2 * T * H) + memOp(hw, c, 6 * T * K * H) + Math.max(c.host_s, (2 * T * K * H) / (hw.hbm_bw * c.scatter_eff));
      return { route_ms: ms(route), permute_ms: ms(permute), unpermute_ms: ms(unpermute) };
    }
    default:
      return {};
  }
}

/** every measured number of the rows with a prediction (casts and the copy are data, not modelled here) */
export function kernelNumbers(rows: KernelRow[], hw: Hardware, c: KernelConstants): KernelNumber[] {
  const out: KernelNumber[] = [];
  for (const r of rows) {
    const p = predictKernelRow(r, hw, c);
    for (const [k, pred] of Object.entries(p)) {
      const m = r[k];
      if (typeof m !== 'number' || !(m > 0)) continue;
      out.push({ row: r.name, what: r.group === 'sdpa' ? `${r.backend} ${k}` : k, set: r.set, measured_ms: m, predicted_ms: pred, error: pred / m - 1 });
    }
  }
  return out;
}

export interface KernelStats { numbers: number; rms: number; median_abs: number; worst: number; worst_at: string; within_15: number }

export function kernelStats(ns: KernelNumber[]): KernelStats {
  const abs = ns.map((n) => Math.abs(n.error)).sort((a, b) => a - b);
  let worst = 0, worst_at = '';
  for (const n of ns) if (Math.abs(n.error) > worst) { worst = Math.abs(n.error); worst_at = `${n.row} ${n.what}`; }
  return {
    numbers: ns.length,
    rms: Math.sqrt(ns.reduce((a, n) => a + n.error ** 2, 0) / Math.max(1, ns.length)),
    median_abs: abs.length ? (abs.length % 2 ? abs[(abs.length - 1) / 2] : (abs[abs.length / 2 - 1] + abs[abs.length / 2]) / 2) : 0,
    worst, worst_at,
    within_15: ns.filter((n) => Math.abs(n.error) <= 0.15).length,
  };
}

/** a neutral start for the fit (not the committed values) */
export const KERNEL_FIT_START: KernelConstants = {
  alpha_bf16: 0.5, alpha_fp8: 0.5, host_s: 10e-6, host_fp8_s: 10e-6, scatter_eff: 0.1,
  sdpa: { flash: { fwd: 0.3, bwd: 0.3 }, efficient: { fwd: 0.3, bwd: 0.3 }, cudnn: { fwd: 0.3, bwd: 0.3 } },
};

const pack = (c: KernelConstants) => [c.alpha_bf16, c.alpha_fp8, c.host_s, c.host_fp8_s, c.scatter_eff, ...SDPA_BACKENDS.flatMap((b) => [c.sdpa[b].fwd, c.sdpa[b].bwd])].map(Math.log);
const unpack = (x: number[]): KernelConstants => {
  const v = x.map(Math.exp);
  const sdpa = {} as KernelConstants['sdpa'];
  SDPA_BACKENDS.forEach((b, i) => { sdpa[b] = { fwd: v[5 + 2 * i], bwd: v[6 + 2 * i] }; });
  return { alpha_bf16: v[0], alpha_fp8: v[1], host_s: v[2], host_fp8_s: v[3], scatter_eff: v[4], sdpa };
};

/**
 * Least squares on log time over the given rows' numbers (call it with the fit rows only): all eleven constants at
 * once, Nelder-Mead on their logs, restarted from its own optimum (the simplex collapses on this many parameters).
 */
export function fitKernelConstants(rows: KernelRow[], hw: Hardware, start: KernelConstants = KERNEL_FIT_START): { constants: KernelConstants; rms_log_err: number } {
  const loss = (x: number[]) => {
    let s = 0;
    for (const n of kernelNumbers(rows, hw, unpack(x))) s += Math.log1p(n.error) ** 2;
    return s;
  };
  let best = nelderMead(loss, pack(start), 3000);
  for (let i = 0; i < 4; i++) best = nelderMead(loss, best.x, 3000);
  const n = kernelNumbers(rows, hw, unpack(best.x)).length;
  return { constants: unpack(best.x), rms_log_err: Math.sqrt(best.f / Math.max(1, n)) };
}
