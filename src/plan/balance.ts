/**
 * Expert load imbalance: how many times the mean number of routed tokens the most-loaded EP rank receives.
 * The most-loaded rank sets the pace of the experts phase and of the all-to-all (every rank waits for it).
 *
 * Model: per micro-batch, the token count of one expert has coefficient of variation cv (`training.expert_load_cv`;
 * 0 = perfect balance). An EP rank holds E/ep experts, so its load has cv / sqrt(E/ep) (independent experts), and
 * the maximum over ep ranks of roughly normal loads is about mean * (1 + cv_rank * sqrt(2 ln ep)) (the expected
 * maximum of n Gaussians, Cramer 1946). A spec can instead fix the ratio with `training.load_imbalance`; with token drop
 * and padding to capacity (`training.capacity_factor`, Megatron --moe-pad-expert-input-to-capacity) it is the capacity factor.
 * Fewer experts per rank (large EP, one expert per GPU) therefore costs more than the same EP over many experts,
 * the effect the Pangu Ultra MoE paper reports when it groups experts per device (arXiv 2505.04519 sec. 4).
 */
import type { ModelShape } from './models.js';
import type { Parallel, Training } from './spec.js';

export function loadImbalance(m: ModelShape, par: Pick<Parallel, 'ep'>, t: Pick<Training, 'load_imbalance' | 'expert_load_cv'> & Partial<Pick<Training, 'capacity_factor'>>): number {
  if (t.load_imbalance > 0) return t.load_imbalance;
  // token drop with padding to capacity: every expert runs exactly capacity_factor x its mean rows, on every rank
  if (t.capacity_factor && t.capacity_factor > 0) return t.capacity_factor;
  if (m.experts === 0 || t.expert_load_cv <= 0) return 1;
  const local = m.experts / par.ep;
  const n = Math.max(par.ep, 1);
  if (n === 1) return 1;
  return 1 + (t.expert_load_cv / Math.sqrt(local)) * Math.sqrt(2 * Math.log(n));
}
