/**
 * Uncertainty bands from the reference set's validation residuals (issue 13): a prediction carries the 80th
 * percentile of |predicted / published - 1| over the validation MoE rows of its GPU generation (all validation MoE
 * rows when that generation has fewer than MIN_ROWS), so the published-like value lies in
 * [predicted / (1 + p80), predicted / (1 - p80)] for about 4 of 5 comparable runs. The fit rows never enter it.
 */
import type { Hardware } from './hardware.js';
import { REFERENCE, referenceErrors, type Generation, type ReferenceResult } from './reference.js';

export const MIN_ROWS = 3;

export interface Band {
  /** the 80th percentile of the comparable validation rows' |relative error| */
  p80_rel_error: number;
  /** the range of throughput (tokens/s, per device when given per device) the band allows */
  lo_factor: number;
  hi_factor: number;
  /** which rows it comes from */
  basis: string;
  rows: number;
}

export function generationOf(hw: Pick<Hardware, 'preset'>): Generation {
  const p = hw.preset.toLowerCase();
  if (/^(b|gb)\d/.test(p)) return 'blackwell';
  if (/^a\d/.test(p)) return 'ampere';
  if (/^9\d\d/.test(p)) return 'ascend';
  return 'hopper';
}

/** the p-quantile (0..1) of xs, linear between order statistics */
export function quantile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = p * (s.length - 1);
  const lo = Math.floor(i);
  return s[lo] + (i - lo) * ((s[Math.min(lo + 1, s.length - 1)] ?? s[lo]) - s[lo]);
}

let cache: ReferenceResult[] | undefined;
/** the validation MoE rows' residuals with the committed constants (computed once) */
export function validationResiduals(): ReferenceResult[] {
  cache ??= referenceErrors(REFERENCE.filter((r) => r.split === 'validation')).filter((r) => r.moe);
  return cache;
}

export function bandFor(hw: Pick<Hardware, 'preset'>, residuals: ReferenceResult[] = validationResiduals()): Band {
  const gen = generationOf(hw);
  const same = residuals.filter((r) => r.generation === gen);
  const use = same.length >= MIN_ROWS ? same : residuals;
  const b = Math.min(0.95, quantile(use.map((r) => Math.abs(r.error)), 0.8));
  return {
    p80_rel_error: b, lo_factor: 1 / (1 + b), hi_factor: 1 / (1 - b), rows: use.length,
    basis: same.length >= MIN_ROWS ? `${use.length} validation MoE rows on ${gen} GPUs, docs/planner.md "Reference set"` : `all ${use.length} validation MoE rows (fewer than ${MIN_ROWS} on ${gen})`,
  };
}

/** whether two predictions' bands overlap: neither is resolved as faster than the other */
export function withinBands(a: number, b: number, band: Band): boolean {
  return Math.min(a, b) * band.hi_factor >= Math.max(a, b) * band.lo_factor;
}
