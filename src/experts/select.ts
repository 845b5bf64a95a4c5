/**
 * Probabilistic expert pruning (PEP): per MoE layer, keep the M experts of highest score. PreMoe's PEP
 * ranks by TCESS, the expected selection score (probability mass the router gives an expert when it
 * selects it): "probabilistic" is in the score, not in the choice, so the choice is the deterministic
 * top-M (ties: higher selection frequency, then lower id). Architecture rules:
 * - group-limited routers (n_group > 1) keep M / n_group experts in every group (the groups stay
 *   contiguous and equal, as a config needs), so M must be a multiple of n_group; DeepSeek-V3's group
 *   score is the sum of a group's top-2, so it keeps ≥ 2 per group;
 * - top-k becomes min(k, M) and, with group limits, at most topk_group · M / n_group (the experts a token
 *   may reach).
 */
import type { ModelDesc } from '../models/desc.js';
import type { SubModel } from '../models/pass.js';
import { MoekitError } from '../util/errors.js';

/** a keep budget checked against the architecture: M experts per MoE layer, and the top-k that goes with it */
export interface Budget {
  keep: number;
  topK: number;
}

export function checkBudget(d: ModelDesc, M: number, flag = '--keep-experts'): Budget {
  const E = d.moe.experts, G = d.moe.nGroup;
  if (!Number.isInteger(M) || M < 1 || M > E) throw new MoekitError(`${flag} must be an integer in [1, ${E}] (the experts per layer), got ${M}`);
  if (G > 1 && M % G !== 0) throw new MoekitError(`${flag} ${M} is not a multiple of the ${G} routing groups (group-limited routing keeps the same number in each group)`);
  if (G > 1 && d.moe.router === 'sigmoid_group' && M / G < 2) throw new MoekitError(`${flag} ${M} keeps ${M / G} per routing group; DeepSeek-V3's group score (the sum of a group's top-2) needs ≥ 2 per group, so M ≥ ${2 * G}`);
  let K = Math.min(d.moe.topK, M);
  if (G > 1) K = Math.min(K, (d.moe.topkGroup * M) / G);
  return { keep: M, topK: K };
}

/** the budgets of the keep ratios (e.g. 1, 0.75, 0.5, 0.25): M = ratio · E rounded down to what the architecture can express */
export function ratioBudget(d: ModelDesc, ratio: number): Budget {
  const E = d.moe.experts, G = d.moe.nGroup;
  const step = G > 1 ? G : 1, min = G > 1 && d.moe.router === 'sigmoid_group' ? 2 * G : step;
  const M = Math.max(min, Math.floor((ratio * E) / step) * step);
  return checkBudget(d, Math.min(M, E));
}

/** the M best experts of one layer by `score` [E] (ties: `tie` [E] higher first, then lower id), ascending ids */
export function topExperts(d: ModelDesc, score: readonly number[], M: number, tie?: readonly number[]): number[] {
  const E = d.moe.experts, G = d.moe.nGroup > 1 ? d.moe.nGroup : 1, per = E / G;
  checkBudget(d, M);
  if (score.length !== E) throw new MoekitError(`a score list has ${score.length} entries, the model ${E} experts`);
  const out: number[] = [];
  for (let g = 0; g < G; g++) {
    const ids = Array.from({ length: per }, (_, j) => g * per + j);
    ids.sort((a, b) => score[b] - score[a] || (tie ? tie[b] - tie[a] : 0) || a - b);
    out.push(...ids.slice(0, M / G));
  }
  return out.sort((a, b) => a - b);
}

/** a keep set (decoder layer → expert ids) as the engine's sub-model mask over the full model */
export function keepSub(d: ModelDesc, keep: Record<number, number[]>, topK: number): SubModel {
  const experts: Uint8Array[] = [];
  d.layers.forEach((l, i) => {
    if (l.mlp !== 'moe') return;
    const ids = keep[i];
    if (!ids) throw new MoekitError(`the pattern has no experts for MoE layer ${i}`);
    const a = new Uint8Array(d.moe.experts);
    for (const e of ids) a[e] = 1;
    experts.push(a);
  });
  return { experts, topK };
}
