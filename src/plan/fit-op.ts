/**
 * Fitting and checking `plan op`'s constants against the H200 measurements, kept apart: `fitOpConstants` sees only
 * the rows it is given (the fit set, OP_MEASUREMENT_SETS.fit in fitted.ts); `opErrors` / `errorStats` score any
 * constants on any rows (the check set is scored, never fitted). bench/plan/fit_op_model.mjs runs the fit;
 * test/plan/op.test.ts refits on the fit set and checks on the check set.
 */
import type { OpMeasurementSet } from './fitted.js';
import type { Hardware } from './hardware.js';
import { predictAttention, predictMoeLayer, type OpConstants } from './op.js';

interface Timed { name: string; set?: string; fwd_ms: number; fwd_bwd_ms: number }
export interface MeasuredMoeLayer extends Timed { impl?: string; tokens: number; hidden: number; experts: number; top_k: number; expert_ffn: number }
export interface MeasuredAttention extends Timed { batch: number; seq: number; hidden: number; heads: number; kv_heads: number; head_dim: number }
/** the shape of a bench/plan/measure_ops.py results file */
export interface OpMeasurementFile { moe_layer: MeasuredMoeLayer[]; attention: MeasuredAttention[] }

export type OpRow = ({ kind: 'moe' } & MeasuredMoeLayer | { kind: 'attention' } & MeasuredAttention) & { lease: string };

/** The rows of one measurement file a set names: MoE layers with grouped GEMMs (not the per-expert loop) and attention. */
export function selectOpRows(data: OpMeasurementFile, set: OpMeasurementSet): OpRow[] {
  const keep = (r: Timed) => set.rows === 'all' || r.set === set.rows;
  return [
    ...data.moe_layer.filter((r) => r.impl === 'grouped' && keep(r)).map((r) => ({ ...r, kind: 'moe' as const, lease: set.lease })),
    ...data.attention.filter(keep).map((r) => ({ ...r, kind: 'attention' as const, lease: set.lease })),
  ];
}

/** the shape of a row, for telling shapes apart (the fit and check sets share none) */
export function opShapeKey(r: OpRow): string {
  return r.kind === 'moe'
    ? `moe T${r.tokens} H${r.hidden} E${r.experts} K${r.top_k} I${r.expert_ffn}`
    : `attention B${r.batch} S${r.seq} H${r.hidden} N${r.heads} G${r.kv_heads} D${r.head_dim}`;
}

export interface OpError {
  name: string;
  kind: OpRow['kind'];
  lease: string;
  fwd: { predicted_ms: number; measured_ms: number; error: number };
  fwd_bwd: { predicted_ms: number; measured_ms: number; error: number };
}

/** predicted / measured - 1 of fwd and fwd+bwd for each row */
export function opErrors(rows: OpRow[], hw: Hardware, c?: OpConstants): OpError[] {
  return rows.map((r) => {
    const p = r.kind === 'moe'
      ? predictMoeLayer({ tokens: r.tokens, hidden: r.hidden, experts: r.experts, top_k: r.top_k, expert_ffn: r.expert_ffn }, hw, c)
      : predictAttention({ batch: r.batch, seq: r.seq, hidden: r.hidden, heads: r.heads, kv_heads: r.kv_heads, head_dim: r.head_dim }, hw, c);
    return {
      name: r.name, kind: r.kind, lease: r.lease,
      fwd: { predicted_ms: p.fwd_ms, measured_ms: r.fwd_ms, error: p.fwd_ms / r.fwd_ms - 1 },
      fwd_bwd: { predicted_ms: p.fwd_bwd_ms, measured_ms: r.fwd_bwd_ms, error: p.fwd_bwd_ms / r.fwd_bwd_ms - 1 },
    };
  });
}

export interface ErrorStats {
  shapes: number;
  /** numbers scored: fwd and fwd+bwd of each shape */
  numbers: number;
  /** root mean square of the relative errors */
  rms: number;
  /** the largest |relative error|, and where */
  worst: number;
  worst_at: string;
}

export function errorStats(errs: OpError[]): ErrorStats {
  let sq = 0;
  let worst = 0;
  let worst_at = '';
  for (const e of errs) {
    for (const [what, x] of [['fwd', e.fwd.error], ['fwd+bwd', e.fwd_bwd.error]] as const) {
      sq += x * x;
      if (Math.abs(x) > worst) { worst = Math.abs(x); worst_at = `${e.name} ${what} (lease ${e.lease})`; }
    }
  }
  return { shapes: errs.length, numbers: 2 * errs.length, rms: Math.sqrt(sq / Math.max(1, 2 * errs.length)), worst, worst_at };
}

export interface OpFit {
  gemm_eff: number;
  scatter_eff: number;
  launch_s: number;
  flash_fwd_eff: number;
  flash_bwd_eff: number;
  /** root mean square of log(predicted / measured) at the optimum, the fit's objective */
  rms_log_err: number;
}

export function nelderMead(f: (x: number[]) => number, x0: number[], iters: number): { x: number[]; f: number } {
  const n = x0.length;
  let simplex = [x0, ...x0.map((_, i) => x0.map((v, j) => (i === j ? v + 0.3 : v)))].map((x) => ({ x, f: f(x) }));
  for (let it = 0; it < iters; it++) {
    simplex.sort((a, b) => a.f - b.f);
    const c = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c[j] += simplex[i].x[j] / n;
    const w = simplex[n];
    const pt = (t: number) => c.map((v, j) => v + t * (w.x[j] - v));
    const rx = pt(-1);
    const r = { x: rx, f: f(rx) };
    if (r.f < simplex[0].f) {
      const ex = pt(-2);
      const e = { x: ex, f: f(ex) };
      simplex[n] = e.f < r.f ? e : r;
    } else if (r.f < simplex[n - 1].f) simplex[n] = r;
    else {
      const kx = pt(0.5);
      const k = { x: kx, f: f(kx) };
      if (k.f < w.f) simplex[n] = k;
      else {
        const b0 = simplex[0];
        simplex = simplex.map((s, i) => {
          if (i === 0) return s;
          const x = s.x.map((v, j) => b0.x[j] + 0.5 * (v - b0.x[j]));
          return { x, f: f(x) };
        });
      }
    }
  }
  simplex.sort((a, b) => a.f - b.f);
  return simplex[0];
}

/** a neutral starting point (not the committed values), so a refit shows the fit set alone determines them */
export const OP_FIT_START: Omit<OpFit, 'rms_log_err'> = { gemm_eff: 0.6, scatter_eff: 0.1, launch_s: 20e-6, flash_fwd_eff: 0.5, flash_bwd_eff: 0.5 };

/**
 * Least squares on log time of fwd and fwd+bwd over `rows` (Nelder-Mead on the logs of the five constants): gemm_eff
 * of `hw`, and the OpConstants. bw_eff is not fitted (the measured copy bandwidth of `hw`).
 */
export function fitOpConstants(rows: OpRow[], hw: Hardware, start: Omit<OpFit, 'rms_log_err'> = OP_FIT_START, iters = 4000): OpFit {
  const unpack = (x: number[]) => {
    const [gemm_eff, scatter_eff, launch_s, flash_fwd_eff, flash_bwd_eff] = x.map(Math.exp);
    return { hw: { ...hw, gemm_eff }, c: { scatter_eff, launch_s, flash_fwd_eff, flash_bwd_eff } };
  };
  const loss = (x: number[]) => {
    const { hw: h, c } = unpack(x);
    let s = 0;
    for (const e of opErrors(rows, h, c)) s += Math.log1p(e.fwd.error) ** 2 + Math.log1p(e.fwd_bwd.error) ** 2;
    return s;
  };
  const x0 = [start.gemm_eff, start.scatter_eff, start.launch_s, start.flash_fwd_eff, start.flash_bwd_eff].map(Math.log);
  const best = nelderMead(loss, x0, iters);
  const { hw: h, c } = unpack(best.x);
  return { gemm_eff: h.gemm_eff, ...c, rms_log_err: Math.sqrt(best.f / Math.max(1, 2 * rows.length)) };
}
