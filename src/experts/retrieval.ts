/**
 * Task-adaptive expert retrieval (TAER): a prompt's vector is, per expert, the fraction of its tokens the
 * router sends to that expert (its selection frequency over the prompt) in the first MoE layers
 * (StoreSettings.retrievalLayers; by default the first two), the blocks of those layers concatenated:
 * [R · E], each block summing to k. Why those: they are what a partial forward reaches first (the query
 * runs only the decoder layers up to the last of them, not the whole model), and the experts the router
 * actually picks are what a pattern must hold; on the demo model the selections of MoE layers 0-1 matched
 * 99.2% of held-out prompts to their task, the mean router probabilities of the same layers 93.0% and of
 * all four layers 98.2% (docs/premoe.md). The prompt's vector is compared with each stored task's
 * centroid by Euclidean distance; the nearest wins unless it is farther than the store's threshold,
 * which falls back to the general pattern or the full model.
 */
import type { MoeModel } from '../models/model.js';
import type { MoeEvent } from '../models/pass.js';
import { MoekitError } from '../util/errors.js';
import type { StoreFile } from './store.js';

/** add each expert's selection frequency over tokens [0, t1) of ev into v[slot·E, (slot + 1)·E) */
export function addQueryBlock(v: Float64Array, slot: number, ev: MoeEvent, t1: number): void {
  const E = ev.E, K = ev.K;
  for (let n = 0; n < t1; n++) for (let j = 0; j < K; j++) v[slot * E + ev.experts[n * K + j]] += 1 / t1;
}

/** the retrieval vector of a prompt (token ids, <bos> included as the model was profiled): a partial forward */
export function queryVector(model: MoeModel, ids: readonly number[], layers: readonly number[]): Float64Array {
  if (ids.length === 0) throw new MoekitError('retrieval needs a non-empty prompt');
  const E = model.desc.moe.experts, v = new Float64Array(layers.length * E);
  const last = Math.max(...layers);
  model.forward(Int32Array.from(ids), 1, ids.length, {
    lastOnly: true,
    sub: { layers: Array.from({ length: last + 1 }, (_, l) => l) },
    trace: { moe: (ev) => { const slot = layers.indexOf(ev.layer); if (slot >= 0) addQueryBlock(v, slot, ev, ev.N); } },
  });
  return v;
}

export function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

export interface Match {
  /** the nearest complete task, and its distance */
  nearest: string;
  distance: number;
  /** the pattern to use: the nearest task, or 'general' / null (full model) when farther than the threshold */
  pattern: string | null;
  threshold: number;
  /** every complete task's distance, nearest first */
  ranking: { task: string; distance: number }[];
}

/** the nearest stored task of vector v; beyond `threshold` (default the store's) the fallback */
export function nearestTask(s: StoreFile, v: ArrayLike<number>, o: { threshold?: number; fallback?: 'general' | 'full' } = {}): Match {
  const ranking = Object.entries(s.tasks).filter(([, t]) => t.complete).map(([task, t]) => ({ task, distance: distance(v, t.vector) }))
    .sort((a, b) => a.distance - b.distance || (a.task < b.task ? -1 : 1));
  if (ranking.length === 0) throw new MoekitError('the store has no complete task pattern to retrieve (run moekit experts profile)');
  const threshold = o.threshold ?? s.retrieval.threshold;
  const near = ranking[0];
  const fallback = (o.fallback ?? 'general') === 'general' && s.general ? 'general' : null;
  return { nearest: near.task, distance: near.distance, pattern: near.distance <= threshold ? near.task : fallback, threshold, ranking };
}
