/**
 * Next-token choice from logits [V]: greedy (argmax, lowest id on ties) or sampled with
 * temperature, top-k and top-p (nucleus), from a seeded generator so runs repeat.
 */
export interface SamplingOptions {
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

export { rng } from '../util/rng.js';

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** one token id from logits [V] */
export function sample(logits: Float32Array, o: SamplingOptions, rand: () => number): number {
  const temp = o.temperature ?? 1;
  if (o.greedy || temp <= 0) return argmax(logits);
  const V = logits.length;
  let ids = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  if (o.topK && o.topK > 0 && o.topK < V) ids = ids.slice(0, o.topK);
  const mx = logits[ids[0]];
  let p = ids.map((i) => Math.exp((logits[i] - mx) / temp));
  let s = p.reduce((a, b) => a + b, 0);
  p = p.map((x) => x / s);
  if (o.topP !== undefined && o.topP < 1) {
    let c = 0, n = 0;
    while (n < p.length && c < o.topP) c += p[n++];
    ids = ids.slice(0, Math.max(1, n));
    p = p.slice(0, ids.length);
    s = p.reduce((a, b) => a + b, 0);
    p = p.map((x) => x / s);
  }
  let r = rand();
  for (let j = 0; j < ids.length; j++) {
    r -= p[j];
    if (r < 0) return ids[j];
  }
  return ids[ids.length - 1];
}
