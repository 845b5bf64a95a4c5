/**
 * Learning-rate schedules, lr(step) for step = 0, 1, …: linear warmup from 0 over `warmup` steps, then
 * - constant: lr;
 * - cosine: lr → minLr along half a cosine by the last step (Loshchilov & Hutter 2017);
 * - wsd: warmup-stable-decay (Hu et al. 2024, MiniCPM): lr until the last `decayFraction` of the steps, then a
 *   linear decay to minLr.
 */
export type ScheduleKind = 'constant' | 'cosine' | 'wsd';

export interface Schedule {
  kind: ScheduleKind;
  lr: number;
  minLr: number;
  warmup: number;
  steps: number;
  decayFraction: number;
}

export function lrAt(s: Schedule, step: number): number {
  if (s.warmup > 0 && step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  if (s.kind === 'constant') return s.lr;
  const rest = Math.max(1, s.steps - s.warmup);
  const t = Math.min(1, (step - s.warmup) / rest);
  if (s.kind === 'cosine') return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * t));
  // wsd
  const decaySteps = Math.max(1, Math.round(s.decayFraction * s.steps));
  const start = s.steps - decaySteps;
  if (step < start) return s.lr;
  return s.lr + ((s.minLr - s.lr) * Math.min(1, (step - start + 1) / decaySteps));
}
