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
 *     quality_tokens: 13.2e12     # optional: also rank by predicted time-to-quality (below)
 *
 * Time-to-quality (the paper prefers 256 experts on model quality, which throughput alone cannot see): each shape's
 * loss follows the fine-grained MoE scaling law of Krajewski et al. 2024 ("Scaling Laws for Fine-Grained Mixture of
 * Experts", arXiv 2402.07871, eq. for L(N, D, G) with its fitted coefficients),
 *   L(N, D, G) = c + (g / G^gamma + a) / N^alpha + b / D^beta,
 * N active non-embedding parameters, D training tokens, G = granularity = 4 x hidden / expert_ffn (their d_ff = 4
 * d_model over the expert width). The target is the loss the spec's own shape (the base model) reaches after
 * `quality_tokens` tokens; each shape needs D* tokens to reach it, and its time-to-quality is D* / (its best layout's
 * tokens/s). Rows keep the throughput (MFU) order; `by_time_to_quality` is the second ranking.
 */
import { MoekitError } from '../util/errors.js';
import { FITTED } from './fitted.js';
import { paramCounts, sharedWidth } from './flops.js';
import type { ModelShape } from './models.js';
import { search, type Ranked, type SearchOptions } from './search.js';
import type { Spec } from './spec.js';

export interface SweepRow {
  shape: Pick<ModelShape, 'layers' | 'hidden' | 'experts' | 'top_k' | 'expert_ffn'>;
  total_params_b: number;
  active_params_b: number;
  best?: { layout: string; tokens_per_s: number; mfu: number; memory_gib_per_device: number };
  pareto: boolean;
  /** time-to-quality (when the spec gives sweep.quality_tokens) */
  quality?: {
    granularity: number;
    /** predicted loss after quality_tokens tokens */
    loss_at_budget: number;
    /** tokens this shape needs to reach the base shape's loss at quality_tokens (Infinity: never) */
    tokens_to_target: number;
    /** wall-clock days to train those tokens at the best layout's throughput */
    days_to_target: number;
  };
}

export interface SweepResult {
  shapes_considered: number;
  shapes_in_budget: number;
  rows: SweepRow[];
  pareto_front: SweepRow[];
  /** rows ordered by time-to-quality (empty without sweep.quality_tokens) */
  by_time_to_quality: SweepRow[];
  /** target loss: the base shape's predicted loss after quality_tokens */
  quality_target?: { tokens: number; loss: number };
  elapsed_s: number;
}

/**
 * Krajewski et al. 2024 (arXiv 2402.07871) Table 1, the MoE row, coefficients of
 * L(N, D, G) = c + (g/G^gamma + a)/N^alpha + b/D^beta, with N the TOTAL number of non-embedding parameters (sec. 5;
 * Table 2 writes N as "64 x 100M"), D training tokens, G = d_ff / d_expert (sec. 4). Fitted at expansion rate E = 64 on
 * models of 129M-3.7B parameters and 16B-130B tokens: applied here far outside that range, to compare shapes, not to
 * predict absolute losses.
 */
export interface LossLaw { a: number; alpha: number; b: number; beta: number; g: number; gamma: number; c: number }
export const FINE_GRAINED_LAW: Readonly<LossLaw> = {
  a: FITTED.krajewski_a.value, alpha: FITTED.krajewski_alpha.value, b: FITTED.krajewski_b.value, beta: FITTED.krajewski_beta.value,
  g: FITTED.krajewski_g.value, gamma: FITTED.krajewski_gamma.value, c: FITTED.krajewski_c.value,
};

/** granularity G of Krajewski et al.: d_ff / d_expert with d_ff = 4 x hidden */
export function granularity(m: Pick<ModelShape, 'hidden' | 'expert_ffn'>): number {
  return (4 * m.hidden) / m.expert_ffn;
}

/** the law's N: total non-embedding parameters (input embedding, LM head and MTP modules excluded) */
export function lawParams(m: ModelShape): number {
  const pc = paramCounts(m);
  return pc.total - pc.embedding - pc.head;
}

export function predictedLoss(N: number, D: number, G: number, k: Readonly<LossLaw> = FINE_GRAINED_LAW): number {
  return k.c + (k.g / G ** k.gamma + k.a) / N ** k.alpha + k.b / D ** k.beta;
}

/** tokens needed to reach `loss` (Infinity when the N, G terms alone are already above it) */
export function tokensToLoss(N: number, G: number, loss: number, k: Readonly<LossLaw> = FINE_GRAINED_LAW): number {
  const rest = loss - k.c - (k.g / G ** k.gamma + k.a) / N ** k.alpha;
  return rest > 0 ? (k.b / rest) ** (1 / k.beta) : Infinity;
}

const list = (v: unknown, where: string, dflt: number[]): number[] => {
  if (v === undefined) return dflt;
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr) if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new MoekitError('must be a list of positive integers', where);
  return arr as number[];
};
const range = (v: unknown, where: string): [number, number] => {
  if (v === undefined) return [0, Infinity];
  if (!Array.isArray(v) || v.length !== 2 || v.some((x) => typeof x !== 'number' || Number.isNaN(x))) throw new MoekitError('must be [min, max] in billions', where);
  if ((v[0] as number) > (v[1] as number)) throw new MoekitError(`must be [min, max] in billions: min ${v[0]} > max ${v[1]}`, where);
  return [v[0] as number, v[1] as number];
};

const SWEEP_KEYS = ['layers', 'hidden', 'experts', 'top_k', 'expert_ffn', 'granularity', 'total_params_b', 'active_params_b', 'quality_tokens'];

export function sweepShapes(spec: Spec): ModelShape[] {
  const sw = spec.sweep;
  if (!sw) throw new MoekitError('spec has no sweep section (layers, hidden, experts, top_k, expert_ffn, total_params_b, active_params_b)', 'sweep');
  for (const k of Object.keys(sw)) if (!SWEEP_KEYS.includes(k)) throw new MoekitError(`unknown sweep field '${k}' (known: ${SWEEP_KEYS.join(', ')})`, `sweep.${k}`);
  if (sw.granularity !== undefined && typeof sw.granularity !== 'boolean') throw new MoekitError(`must be true or false (got ${JSON.stringify(sw.granularity)})`, 'sweep.granularity');
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
  if (paired) {
    for (let i = 0; i < experts.length; i++) {
      if (topk[i] > experts[i]) throw new MoekitError(`top_k ${topk[i]} exceeds experts ${experts[i]} (pair ${i})`, 'sweep.top_k');
      moe.push([experts[i], topk[i], effn[i]]);
    }
  }
  else for (const e of experts) for (const k of topk) for (const f of effn) if (k <= e) moe.push([e, k, f]);
  const out: ModelShape[] = [];
  for (const [e, k, f] of moe) {
    if (e > 0 && k < 1) throw new MoekitError(`needed: the base model is dense (top_k 0) and the sweep gives experts ${e}`, 'sweep.top_k');
    if (e > 0 && f < 1) throw new MoekitError(`needed: the base model is dense (expert_ffn 0) and the sweep gives experts ${e}`, 'sweep.expert_ffn');
  }
  for (const L of layers) for (const h of hidden) for (const [e, k, f] of moe) {
    // a dense model (experts 0) has every layer dense; a MoE made from a dense base has every layer MoE; otherwise
    // the base model's leading dense layers are kept
    const denseLayers = e === 0 ? L : m.experts === 0 ? 0 : Math.min(m.dense_layers, L);
    // the shared experts keep the base model's width: splitting routed experts finer leaves them alone
    out.push({ ...m, layers: L, hidden: h, experts: e, top_k: k, expert_ffn: f, shared_ffn: sharedWidth(m), dense_layers: denseLayers, name: `L${L} H${h} E${e} K${k} I${f}` });
  }
  return out;
}

export function sweep(spec: Spec, opts: Pick<SearchOptions, 'fixed'> = {}): SweepResult {
  const t0 = performance.now();
  const shapes = sweepShapes(spec);
  const [tmin, tmax] = range(spec.sweep?.total_params_b, 'sweep.total_params_b');
  const [amin, amax] = range(spec.sweep?.active_params_b, 'sweep.active_params_b');
  const rows: SweepRow[] = [];
  const qTokens = spec.sweep?.quality_tokens;
  if (qTokens !== undefined && (typeof qTokens !== 'number' || !(qTokens > 0))) throw new MoekitError('must be a positive number of tokens', 'sweep.quality_tokens');
  // the fine-grained law's granularity 4 h / expert_ffn is Infinity for a dense model: it does not apply
  if (qTokens !== undefined && (spec.model.experts === 0 || shapes.some((x) => x.experts === 0))) {
    throw new MoekitError('time-to-quality (Krajewski et al. fine-grained MoE law) needs a MoE base model and MoE shapes (experts > 0)', 'sweep.quality_tokens');
  }
  const target = typeof qTokens === 'number'
    ? { tokens: qTokens, loss: predictedLoss(lawParams(spec.model), qTokens, granularity(spec.model)) } : undefined;
  for (const s of shapes) {
    const pc = paramCounts(s);
    const total = pc.total / 1e9;
    const active = pc.active / 1e9;
    if (total < tmin || total > tmax || active < amin || active > amax) continue;
    const res = search({ ...spec, model: s }, { top: 1, fixed: opts.fixed });
    const b: Ranked | undefined = res.top[0];
    rows.push({
      shape: { layers: s.layers, hidden: s.hidden, experts: s.experts, top_k: s.top_k, expert_ffn: s.expert_ffn },
      total_params_b: total,
      active_params_b: active,
      best: b ? { layout: b.layout, tokens_per_s: b.result.tokens_per_s, mfu: b.result.mfu, memory_gib_per_device: b.result.memory_gib_per_device } : undefined,
      pareto: false,
    });
    if (target) {
      const N = lawParams(s);
      const G = granularity(s);
      const need = tokensToLoss(N, G, target.loss);
      rows[rows.length - 1].quality = {
        granularity: G,
        loss_at_budget: predictedLoss(N, target.tokens, G),
        tokens_to_target: need,
        days_to_target: b ? need / b.result.tokens_per_s / 86400 : Infinity,
      };
    }
  }
  rows.sort((a, b) => (b.best?.mfu ?? -1) - (a.best?.mfu ?? -1));
  for (const r of rows) {
    if (!r.best) continue;
    r.pareto = !rows.some((o) => o !== r && o.best && o.total_params_b >= r.total_params_b && o.best.mfu >= r.best!.mfu &&
      (o.total_params_b > r.total_params_b || o.best.mfu > r.best!.mfu));
  }
  const byTime = target ? [...rows].filter((r) => r.quality).sort((a, b) => a.quality!.days_to_target - b.quality!.days_to_target) : [];
  return {
    shapes_considered: shapes.length,
    shapes_in_budget: rows.length,
    rows,
    pareto_front: rows.filter((r) => r.pareto).sort((a, b) => a.total_params_b - b.total_params_b),
    by_time_to_quality: byTime,
    quality_target: target,
    elapsed_s: (performance.now() - t0) / 1e3,
  };
}
