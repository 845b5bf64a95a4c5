/**
 * Sampling (src/runtime/sampling.ts) held to an independent float64 reference: the distribution over the kept
 * tokens is softmax(logits / T) restricted to the top-k, then to the smallest prefix whose mass reaches p,
 * renormalised. Two kinds of check: the inverse CDF exactly (a generator returning chosen points of [0, 1)), and
 * the frequencies of N seeded draws within 5 standard deviations sqrt(p (1 − p) / N) of the reference (a bound
 * from the sample size: a correct sampler leaves it with probability < 1e-6 per token). And generation stops at
 * an end-of-sequence id on the demo model, whose greedy path reaches its eos id (2).
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { MoeModel } from '../src/models/model.js';
import { generate } from '../src/runtime/generate.js';
import { argmax, rng, sample, type SamplingOptions } from '../src/runtime/sampling.js';

/** the reference distribution: [id, probability] over the kept ids, most likely first (ties: lower id first) */
function reference(logits: number[], o: { temperature: number; topK?: number; topP?: number }): [number, number][] {
  const order = logits.map((l, i) => [l, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
  const kept = o.topK && o.topK > 0 ? order.slice(0, o.topK) : order;
  const w = kept.map((i) => Math.exp(logits[i] / o.temperature));
  const z = w.reduce((a, b) => a + b, 0);
  let pairs: [number, number][] = kept.map((id, j) => [id, w[j] / z]);
  if (o.topP !== undefined && o.topP < 1) {
    let mass = 0;
    const nucleus: [number, number][] = [];
    for (const pr of pairs) {
      if (mass >= o.topP && nucleus.length > 0) break;
      nucleus.push(pr);
      mass += pr[1];
    }
    pairs = nucleus.map(([id, q]) => [id, q / mass]);
  }
  return pairs;
}

/** counts of N draws with a seeded generator */
function draw(logits: Float32Array, o: SamplingOptions, N: number, seed: number): number[] {
  const r = rng(seed);
  const n = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < N; i++) n[sample(logits, o, r)]++;
  return n;
}

/** every count within 5 sigma of N p, and nothing drawn outside the kept ids; returns how many ids were compared */
function expectFrequencies(n: number[], ref: [number, number][], N: number): number {
  const p = new Array<number>(n.length).fill(0);
  for (const [id, q] of ref) p[id] = q;
  for (let id = 0; id < n.length; id++) {
    const sigma = Math.sqrt((p[id] * (1 - p[id])) / N);
    expect(Math.abs(n[id] / N - p[id]), `token ${id}: ${n[id]} of ${N}, reference p ${p[id].toFixed(4)}`).toBeLessThanOrEqual(5 * sigma);
  }
  return n.length;
}

const L32 = Float32Array.from([1, 3, 2, 0.5, 2.9, -1, 2.2, 0]); // [V]
const LOGITS = Array.from(L32); // the same float32 values, for the float64 reference
const N = 20_000;

describe('sampling frequencies against the float64 reference', () => {
  it.each([0.5, 0.8, 2])('temperature %s, no truncation', (temperature) => {
    const ref = reference(LOGITS, { temperature });
    expect(expectFrequencies(draw(L32, { temperature }, N, 11), ref, N)).toBe(8);
  });

  it.each([[2, 0.7], [3, 1], [4, 1.6]])('top-k %s at temperature %s: the k largest in proportion to their softmax', (topK, temperature) => {
    const ref = reference(LOGITS, { temperature, topK });
    expect(ref.length).toBe(topK);
    const n = draw(L32, { topK, temperature }, N, 42 + topK);
    expectFrequencies(n, ref, N);
    expect(n.filter((c) => c > 0).length).toBe(topK);
  });

  it.each([[0.5, 1], [0.8, 0.6], [0.9, 1.5]])('top-p %s at temperature %s: the smallest prefix reaching p, renormalised', (topP, temperature) => {
    const ref = reference(LOGITS, { temperature, topP });
    const n = draw(L32, { topP, temperature }, N, 7);
    expectFrequencies(n, ref, N);
    expect(n.filter((c) => c > 0).length).toBe(ref.length);
  });

  it('top-k then top-p', () => {
    const o = { topK: 4, topP: 0.7, temperature: 1.2 };
    const ref = reference(LOGITS, o);
    expectFrequencies(draw(L32, o, N, 99), ref, N);
  });

  it('the bound is tight enough to see a sampler that applies the temperature twice or ignores the softmax', () => {
    // the alternatives a broken sampler would follow, each outside the 5-sigma band of the right one
    const right = reference(LOGITS, { temperature: 0.5, topK: 3 });
    const twice = reference(LOGITS, { temperature: 0.25, topK: 3 });
    const uniform = right.map(([id]) => [id, 1 / 3]);
    const band = (q: number) => 5 * Math.sqrt((q * (1 - q)) / N);
    expect(Math.max(...right.map(([, q], j) => Math.abs(q - twice[j][1]) - band(q)))).toBeGreaterThan(0);
    expect(Math.max(...right.map(([, q], j) => Math.abs(q - uniform[j][1]) - band(q)))).toBeGreaterThan(0);
  });
});

describe('sampling as an inverse CDF over the kept ids', () => {
  /** the id a draw of u picks from the reference */
  const pick = (ref: [number, number][], u: number) => {
    let c = 0;
    for (const [id, q] of ref) {
      c += q;
      if (u < c) return id;
    }
    return ref[ref.length - 1][0];
  };
  const cases: [string, { temperature: number; topK?: number; topP?: number }][] = [
    ['full', { temperature: 0.7 }],
    ['top-k 3', { temperature: 1.3, topK: 3 }],
    ['top-p 0.6', { temperature: 1, topP: 0.6 }],
    ['top-k 5, top-p 0.85', { temperature: 0.9, topK: 5, topP: 0.85 }],
  ];
  it.each(cases)('%s: each draw just below and just above every CDF step', (_, o) => {
    const ref = reference(LOGITS, o);
    let c = 0, compared = 0;
    for (let j = 0; j < ref.length; j++) {
      for (const u of [c + 1e-6, c + ref[j][1] - 1e-6]) {
        expect(sample(L32, o, () => u), `u = ${u}`).toBe(pick(ref, u));
        expect(sample(L32, o, () => u)).toBe(ref[j][0]);
        compared++;
      }
      c += ref[j][1];
    }
    expect(compared).toBe(2 * ref.length);
  });

  it('a draw at the very top of the range takes the last kept id', () => {
    expect(sample(L32, { temperature: 1, topK: 3 }, () => 1)).toBe(reference(LOGITS, { temperature: 1, topK: 3 })[2][0]);
    expect(sample(L32, { temperature: 1 }, () => 1)).toBe(5);
  });

  it('top-k 0, top-k ≥ V and top-p 1 keep every id', () => {
    const ref = reference(LOGITS, { temperature: 1 });
    for (const o of [{ topK: 0 }, { topK: 8 }, { topK: 20 }, { topP: 1 }, {}]) {
      let c = 0;
      for (const [id, q] of ref) {
        expect(sample(L32, { temperature: 1, ...o }, () => c + q / 2), JSON.stringify(o)).toBe(id);
        c += q;
      }
    }
  });

  it('a negative top-k keeps every id; logits far from 0 stay stable (the maximum is subtracted)', () => {
    const ref = reference(LOGITS, { temperature: 1 });
    let c = 0;
    for (const [id, q] of ref) {
      expect(sample(L32, { temperature: 1, topK: -1 }, () => c + q / 2)).toBe(id);
      c += q;
    }
    // exp(±400) overflows: without the shift the weights would be NaN or 0
    const big = Float32Array.from([100, 99, 50]), small = Float32Array.from([-100, -101, -150]);
    const refBig = reference([100, 99, 50], { temperature: 0.5 });
    for (const x of [big, small]) {
      expect(sample(x, { temperature: 0.5 }, () => refBig[0][1] - 1e-3)).toBe(0);
      expect(sample(x, { temperature: 0.5 }, () => refBig[0][1] + 1e-3)).toBe(1);
    }
  });

  it('top-p 0 and a tiny top-p keep only the most likely id', () => {
    for (const topP of [0, 1e-9, 0.05]) for (const u of [0, 0.5, 0.999]) expect(sample(L32, { topP, temperature: 1 }, () => u)).toBe(1);
  });

  it('equal logits are ordered by id (lower id first)', () => {
    const flat = Float32Array.from([0, 5, 5, 1, 5]);
    expect(sample(flat, { temperature: 1, topK: 3 }, () => 0.1)).toBe(1);
    expect(sample(flat, { temperature: 1, topK: 3 }, () => 0.5)).toBe(2);
    expect(sample(flat, { temperature: 1, topK: 3 }, () => 0.9)).toBe(4);
    expect(sample(flat, { temperature: 1, topK: 2 }, () => 0.9)).toBe(2);
  });

  it('greedy, temperature 0 and a negative temperature take the argmax without drawing', () => {
    const never = () => { throw new Error('drew a number'); };
    expect(sample(L32, { greedy: true, temperature: 5 }, never)).toBe(1);
    expect(sample(L32, { temperature: 0 }, never)).toBe(1);
    expect(sample(L32, { temperature: -1 }, never)).toBe(1);
    expect(sample(L32, { greedy: false, temperature: 1 }, () => 0)).toBe(1);
  });

  it('argmax takes the lowest id among equal maxima and handles a maximum at either end', () => {
    expect(argmax(Float32Array.from([1, 4, 4, 2]))).toBe(1);
    expect(argmax(Float32Array.from([9, 4, 4, 2]))).toBe(0);
    expect(argmax(Float32Array.from([1, 4, 4, 7]))).toBe(3);
    expect(argmax(Float32Array.from([-3, -2, -5]))).toBe(1);
  });
});

describe('generation stops at an end-of-sequence id', () => {
  const dir = path.resolve(__dirname, '../examples/demo-moe');
  it('the demo model answers "reverse anzzhp=" and its greedy path reaches eos (2): it stops there', () => {
    const m = MoeModel.load(dir);
    const tok = loadTokenizer(dir)!;
    expect(m.desc.eosTokenIds).toEqual([2]);
    const prompt = tok.encode('reverse anzzhp=');
    const on = generate(m, prompt, { maxNewTokens: 30, greedy: true });
    const off = generate(m, prompt, { maxNewTokens: 12, greedy: true, stopAtEos: false });
    // without the stop, the same path runs through the eos id to the length limit
    expect(off.finishReason).toBe('length');
    expect(off.newTokens).toBe(12);
    const at = off.ids.slice(prompt.length).indexOf(2);
    expect(at).toBe(6);
    expect(on.finishReason).toBe('eos');
    expect(on.newTokens).toBe(at + 1);
    expect(on.ids).toEqual(off.ids.slice(0, prompt.length + at + 1));
    expect(tok.decode(on.ids.slice(prompt.length))).toBe('phzzna');
    // an eos id given by the request replaces the model's
    const mid = off.ids[prompt.length + 3];
    const own = generate(m, prompt, { maxNewTokens: 30, greedy: true, eosTokenIds: [mid] });
    expect(own.finishReason).toBe('eos');
    expect(own.ids).toEqual(off.ids.slice(0, prompt.length + off.ids.slice(prompt.length).indexOf(mid) + 1));
    // the eos id as the very first token: one new token
    const first = off.ids[prompt.length];
    const one = generate(m, prompt, { maxNewTokens: 30, greedy: true, eosTokenIds: [first] });
    expect([one.finishReason, one.newTokens]).toEqual(['eos', 1]);
  });
});
