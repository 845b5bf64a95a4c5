/**
 * Shape sweep, as in Pangu Ultra MoE's simulation study (arXiv 2505.04519 sec. 3): vary layers x hidden x experts x
 * top-k x expert width around a base model, keep the shapes whose total and active parameter counts fall in the
 * budget, search each shape's best layout on the cluster, and rank shapes by predicted MFU (the throughput of
 * model FLOPs, so shapes with slightly different active sizes compare fairly). Also returns the Pareto front of
 * (total parameters, MFU), both maximised: the shapes no other shape beats on capacity and speed at once.
 *
 * Spec section:
 *   sweep:
 *     layers: [61, 69]            hidden: [7680, 7168]
 *     experts: [64, 128, 256]     top_k: [2, 4, 8]        expert_ffn: [8192, 4096, 2048]
 *     granularity: true           # pair experts/top_k/expert_ffn by index (fine-grained splitting) instead of a product
 *     total_params_b: [680, 760]  active_params_b: [36, 42]
 */
import { MoekitError } from '../util/errors.js';
import { paramCounts, sharedWidth } from './flops.js';
import type { ModelShape } from './models.js';
import { search, type Ranked } from './search.js';
import type { Spec } from './spec.js';

export interface SweepRow {
  shape: Pick<ModelShape, 'layers' | 'hidden' | 'experts' | 'top_k' | 'expert_ffn'>;
  total_params_b: number;
  active_params_b: number;
  best?: { layout: string; tokens_per_s: number; mfu: number; memory_gib_per_device: number };
  pareto: boolean;
}

export interface SweepResult {
  shapes_considered: number;
  shapes_in_budget: number;
  rows: SweepRow[];
  pareto_front: SweepRow[];
  elapsed_s: number;
}

const list = (v: unknown, where: string, dflt: number[]): number[] => {
  if (v === undefined) return dflt;
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr) if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new MoekitError('must be a list of positive integers', where);
  return arr as number[];
};
const range = (v: unknown, where: string): [number, number] => {
  if (v === undefined) return [0, Infinity];
  if (!Array.isArray(v) || v.length !== 2 || v.some((x) => typeof x !== 'number')) throw new MoekitError('must be [min, max] in billions', where);
  return [v[0] as number, v[1] as number];
};

export function sweepShapes(spec: Spec): ModelShape[] {
  const sw = spec.sweep;
  if (!sw) throw new MoekitError('spec has no sweep section (layers, hidden, experts, top_k, expert_ffn, total_params_b, active_params_b)', 'sweep');
  const m = spec.model;
  const layers = list(sw.layers, 'sweep.layers', [m.layers]);
  const hidden = list(sw.hidden, 'sweep.hidden', [m.hidden]);
  const experts = list(sw.experts, 'sweep.experts', [m.experts]);
  const topk = list(sw.top_k, 'sweep.top_k', [m.top_k]);
  const effn = list(sw.expert_ffn, 'sweep.expert_ffn', [m.expert_ffn]);
  const paired = sw.granularity === true;
  if (paired && !(experts.length === topk.length && topk.length === effn.length)) {
    throw new MoekitError('with granularity: true, experts, top_k and expert_ffn must have the same length', 'sweep.granularity');
  }
  const moe: [number, number, number][] = [];
  if (paired) for (let i = 0; i < experts.length; i++) moe.push([experts[i], topk[i], effn[i]]);
  else for (const e of experts) for (const k of topk) for (const f of effn) if (k <= e) moe.push([e, k, f]);
  const out: ModelShape[] = [];
  for (const L of layers) for (const h of hidden) for (const [e, k, f] of moe) {
    // the shared experts keep the base model's width: splitting routed experts finer leaves them alone
    out.push({ ...m, layers: L, hidden: h, experts: e, top_k: k, expert_ffn: f, shared_ffn: sharedWidth(m), dense_layers: Math.min(m.dense_layers, L), name: `L${L} H${h} E${e} K${k} I${f}` });
  }
  return out;
}

export function sweep(spec: Spec): SweepResult {
  const t0 = performance.now();
  const shapes = sweepShapes(spec);
  const [tmin, tmax] = range(spec.sweep?.total_params_b, 'sweep.total_params_b');
  const [amin, amax] = range(spec.sweep?.active_params_b, 'sweep.active_params_b');
  const rows: SweepRow[] = [];
  for (const s of shapes) {
    const pc = paramCounts(s);
    const total = pc.total / 1e9;
    const active = pc.active / 1e9;
    if (total < tmin || total > tmax || active < amin || active > amax) continue;
    const res = search({ ...spec, model: s }, { top: 1 });
    const b: Ranked | undefined = res.top[0];
    rows.push({
      shape: { layers: s.layers, hidden: s.hidden, experts: s.experts, top_k: s.top_k, expert_ffn: s.expert_ffn },
      total_params_b: total,
      active_params_b: active,
      best: b ? { layout: b.layout, tokens_per_s: b.result.tokens_per_s, mfu: b.result.mfu, memory_gib_per_device: b.result.memory_gib_per_device } : undefined,
      pareto: false,
    });
  }
  rows.sort((a, b) => (b.best?.mfu ?? -1) - (a.best?.mfu ?? -1));
  for (const r of rows) {
    if (!r.best) continue;
    r.pareto = !rows.some((o) => o !== r && o.best && o.total_params_b >= r.total_params_b && o.best.mfu >= r.best!.mfu &&
      (o.total_params_b > r.total_params_b || o.best.mfu > r.best!.mfu));
  }
  return {
    shapes_considered: shapes.length,
    shapes_in_budget: rows.length,
    rows,
    pareto_front: rows.filter((r) => r.pareto).sort((a, b) => a.total_params_b - b.total_params_b),
    elapsed_s: (performance.now() - t0) / 1e3,
  };
}
