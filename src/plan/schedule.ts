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

/**
 * DP communication left exposed by a step: the gradient reduce (G seconds for the device's whole share) and the
 * parameter all-gather (A seconds), overlapped with compute as Megatron-LM does with --overlap-grad-reduce /
 * --overlap-param-gather. The gradients of a model chunk are final after that chunk's last backward; Megatron's
 * interleaved schedule (schedules.py, forward_backward_pipelining_with_interleaving: grad_sync_func per model chunk)
 * launches each chunk's reduction then, and its cool-down runs the chunks' last backwards in groups of p
 * micro-batches, the last chunk of the model (chunk v-1 on this rank) first. So chunk j (j = v-1 .. 1) is ready
 * j*p chunk-backwards before the end and only chunk 0's reduction waits for the last backward; bucketing hides one
 * chunk-backward of each. The reductions share the link, one after another. The parameter all-gathers mirror that
 * in the next step's warm-up (chunk j needed j*p chunk-forwards after the start). With one chunk (v = 1) this is
 * max(0, G - t_b) + max(0, A - t_f).
 */
export function dpExposed(s: Schedule, p: number, v: number, G: number, A: number, tf: number, tb: number): number {
  const chunks = s === 'interleaved' && p > 1 ? Math.max(1, v) : 1;
  const g = G / chunks, a = A / chunks, cb = tb / chunks, cf = tf / chunks;
  // gradients: time measured back from the end of the last backward
  let t = -Infinity;
  for (let j = chunks - 1; j >= 0; j--) t = Math.max(t, -(j * p + 1) * cb) + g;
  const gradExposed = Math.max(0, t);
  // parameters: chunk j must be gathered before its first forward ends (j*p + 1 chunk-forwards after the start)
  let agExposed = 0;
  for (let j = 0; j < chunks; j++) agExposed = Math.max(agExposed, (j + 1) * a - (j * p + 1) * cf);
  return gradExposed + agExposed;
}

export interface StageSplit {
  /** decoder layers per pipeline stage, first to last */
  layers: number[];
  /** the busiest stage's work over the mean stage's (1 = an even split) */
  busiest_over_mean: number;
}

/**
 * The best split of whole decoder layers over p stages: `layers` layers of `unit` work each, the first stage also
 * holding `first` (embedding) and the last `last` (LM head, loss, MTP modules). Stages may hold different numbers of
 * layers (Megatron's --decoder-first/last-pipeline-num-layers, MindSpeed's no-op layers: Llama 3 takes one layer off
 * its first and last stages, Pangu Pro MoE pads 48 layers to 50 for 5 x 5 stages); the split minimises the busiest
 * stage. Returns the per-stage layer counts and how much more work the busiest stage has than the mean.
 */
export function stageSplit(p: number, layers: number, unit: number, first: number, last: number): StageSplit {
  const total = layers * unit + first + last;
  if (p <= 1 || unit <= 0) return { layers: [layers], busiest_over_mean: 1 };
  const extra = (s: number) => (s === 0 ? first : 0) + (s === p - 1 ? last : 0);
  const cap = (T: number, s: number) => Math.max(0, Math.floor((T - extra(s)) / unit + 1e-9));
  const fits = (T: number) => {
    let n = 0;
    for (let s = 0; s < p; s++) n += cap(T, s);
    return n >= layers && T + 1e-12 >= Math.max(first, last);
  };
  // the optimum is some stage's extra plus a whole number of layers: for each extra, the fewest layers that fit
  let T = Infinity;
  for (const e of [0, first, last, first + last]) {
    let lo = 0, hi = layers;
    if (!fits(e + hi * unit)) continue;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (fits(e + mid * unit)) hi = mid; else lo = mid + 1;
    }
    T = Math.min(T, e + lo * unit);
  }
  // every stage at its capacity under T, then take the surplus layers off the busiest stages
  const out = Array.from({ length: p }, (_, s) => cap(T, s));
  const work = (s: number) => out[s] * unit + extra(s);
  for (let surplus = out.reduce((a, b) => a + b, 0) - layers; surplus > 0; surplus--) {
    let b = -1;
    for (let s = 0; s < p; s++) if (out[s] > 0 && (b < 0 || work(s) > work(b))) b = s;
    out[b]--;
  }
  return { layers: out, busiest_over_mean: Math.max(...out.map((_, s) => work(s))) / (total / p) };
}

/** one layer's EP all-to-alls by the stage they run in (forward dispatch / combine, backward dispatch / combine), seconds */
export interface EpStages { dF: number; cF: number; dB: number; cB: number }
/** one layer's compute by stage: attention (and the rest outside the MoE block) and the MoE block, forward and backward */
export interface LayerStages { aF: number; aB: number; mF: number; mB: number }

/**
 * The all-to-all left exposed by one paired chunk of Megatron-Core's combined 1F1B (--overlap-moe-expert-parallel-comm):
 * one micro-batch's layer forward runs beside another's layer backward, stage against stage, communication on its own
 * stream (megatron/core/models/common/model_chunk_schedule_plan.py, schedule_layer_1f1b): the forward's attention
 * beside the backward's combine all-to-all, the forward's dispatch beside the backward's MoE compute, the forward's
 * MoE compute beside the backward's dispatch, the forward's combine beside the backward's attention. Each all-to-all
 * hides behind that one stage only, not behind the whole layer.
 */
export function pairedChunkExposed(s: EpStages, c: LayerStages): number {
  return Math.max(0, s.cB - c.aF) + Math.max(0, s.dF - c.mB) + Math.max(0, s.dB - c.mF) + Math.max(0, s.cF - c.aB);
}
