/**
 * Pipeline schedules: the bubble each adds to a step and how many micro-batches' activations the busiest
 * (first) stage holds at once. t_f, t_b: forward and backward time of one micro-batch through one device's
 * layers; p = pp, v = vpp, m = micro-batches per step per pipeline.
 *
 *  schedule     bubble                                   activations in flight      source
 *  1f1b         (p-1)(t_f+t_b)                           min(p, m)                  Narayanan et al. 2021 (PipeDream-Flush)
 *  interleaved  (p-1)(t_f+t_b)/v                         p(1 + (p-1)/(p v))         Narayanan et al. SC'21 (Megatron-LM)
 *  zero-bubble  (p-1)(t_f + t_B - t_W) = (p-1) t_f       p                          Qi et al. 2024, ZB-H1 (t_B = t_W = t_b/2)
 *  dualpipe     (p/2-1)(F&B + B - 3W) = (p/2-1) t_f/2    (p+1) chunks = (p+1)/2, params x2        DeepSeek-V3 report Table 2 (chunk = half a stage:
 *  dualpipev    as dualpipe, parameters x1                                           F = t_f/2, B = W = t_b/4, F&B = (t_f+t_b)/2)
 */
import type { Schedule } from './spec.js';

export function bubbleTime(s: Schedule, p: number, v: number, tf: number, tb: number): number {
  if (p <= 1) return 0;
  switch (s) {
    case '1f1b':
      return (p - 1) * (tf + tb);
    case 'interleaved':
      return ((p - 1) * (tf + tb)) / v;
    case 'zero-bubble':
      return (p - 1) * tf;
    case 'dualpipe':
    case 'dualpipev':
      return Math.max(0, p / 2 - 1) * (tf / 2);
  }
}

/** micro-batches (each through all of the device's layers) whose activations the first stage holds */
export function inFlight(s: Schedule, p: number, v: number, m: number): number {
  switch (s) {
    case '1f1b':
    case 'zero-bubble':
      return Math.min(p, m);
    case 'interleaved':
      // one model chunk per rank (v = 1) is plain 1F1B: p in flight, not p(1 + (p-1)/p) = 2p-1
      if (v <= 1) return Math.min(p, m);
      return Math.min(m, p * (1 + (p - 1) / (p * v)));
    case 'dualpipe':
    case 'dualpipev':
      // p+1 micro-batches of one chunk (half the device's layers)
      return Math.min(m, (p + 1) / 2);
  }
}

/** copies of the device's parameters the schedule keeps (DualPipe holds both directions' chunks) */
export function paramCopies(s: Schedule): number {
  return s === 'dualpipe' ? 2 : 1;
}
