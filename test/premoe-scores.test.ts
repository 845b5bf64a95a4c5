/**
 * PreMoe's scores (src/experts/scores.ts) against a naive loop written here: per token, the router's
 * probabilities by hand (softmax, or sigmoid before the correction bias), the chosen experts and weights by
 * the reference router (src/moe/reference.ts), each chosen expert's output by plain loops; for every router
 * kind, with a confidence threshold. Then the profiler on fixture models (softmax and DeepSeek-V3's sigmoid +
 * bias router) against the same naive sums over the traced router logits; PEP's selection rules.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { moeDefaults } from '../src/models/common.js';
import { EagerExperts } from '../src/models/expert-store.js';
import { MoeModel } from '../src/models/model.js';
import { moeForward } from '../src/moe/layer.js';
import { referenceRoute } from '../src/moe/reference.js';
import type { Ffn, MoeDesc, MoeWeights } from '../src/moe/types.js';
import { getKernels } from '../src/tensor/index.js';
import type { Linear } from '../src/tensor/linear.js';
import { f32Weight, weightF32 } from '../src/tensor/weight.js';
import { referenceKernels } from '../src/tensor/ref/index.js';
import { accumulate, emptyLayerSums, layerScores } from '../src/experts/scores.js';
import { checkBudget, ratioBudget, topExperts } from '../src/experts/select.js';
import { builtinSource, profileTasks } from '../src/experts/profile.js';
import { DEFAULT_R, newStore, readStore } from '../src/experts/store.js';
import { taskByName } from '../src/tasks/registry.js';
import { randomTools, scratchDir } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const tmp = scratchDir('moekit-premoe-scores-');

const KINDS: [string, Partial<MoeDesc>][] = [
  ['softmax_topk renormalised', { router: 'softmax_topk', normTopK: true }],
  ['topk_softmax', { router: 'topk_softmax' }],
  ['softmax_bias (ERNIE)', { router: 'softmax_bias', normTopK: true, normMin: 0.3, selectionBias: true }],
  ['sigmoid_group + bias (DeepSeek-V3)', { router: 'sigmoid_group', normTopK: true, routedScaling: 2.5, nGroup: 4, topkGroup: 2, selectionBias: true }],
  ['softmax_group (DeepSeek-V2)', { router: 'softmax_group', routedScaling: 1.7, nGroup: 4, topkGroup: 2 }],
];

/** the router's own probabilities of one token, by hand: sigmoid, or softmax over the logits (no bias) */
function probs(m: MoeDesc, logits: ArrayLike<number>): number[] {
  const l = Array.from(logits);
  if (m.router === 'sigmoid_group') return l.map((v) => 1 / (1 + Math.exp(-v)));
  const mx = Math.max(...l), ex = l.map((v) => Math.exp(v - mx)), z = ex.reduce((a, b) => a + b, 0);
  return ex.map((v) => v / z);
}

function matvec(L: Linear, x: ArrayLike<number>): number[] {
  const W = weightF32(referenceKernels, L.w);
  return Array.from({ length: L.out }, (_, o) => {
    let s = L.b ? L.b[o] : 0;
    for (let i = 0; i < L.in; i++) s += W[o * L.in + i] * x[i];
    return s;
  });
}
const ffn = (F: Ffn, x: ArrayLike<number>) => {
  const g = matvec(F.gate, x), u = matvec(F.up, x);
  return matvec(F.down, g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]));
};

/** naive sums over N tokens x [N, H] */
function naive(m: MoeDesc, w: MoeWeights, x: Float32Array, N: number, H: number, r: number) {
  const E = m.experts;
  const out = { tcess: new Array(E).fill(0), count: new Array(E).fill(0), soft: new Array(E).fill(0), reap: new Array(E).fill(0) };
  for (let n = 0; n < N; n++) {
    const xn = x.subarray(n * H, (n + 1) * H);
    const logits = matvec(w.router, xn);
    const p = probs(m, logits);
    const { experts, weights } = referenceRoute(m, Float64Array.from(logits), w.selectionBias, {});
    for (let e = 0; e < E; e++) out.soft[e] += p[e];
    experts.forEach((e, j) => {
      out.count[e]++;
      if (p[e] >= r) out.tcess[e] += p[e];
      const y = ffn(w.experts.get(e), xn);
      out.reap[e] += weights[j] * Math.sqrt(y.reduce((a, v) => a + v * v, 0));
    });
  }
  return out;
}

describe.each(KINDS)('scores, %s: the accumulator = a naive loop', (_, over) => {
  it.each([[9, 8, 8, 2, 0], [17, 12, 16, 3, 0.1], [5, 8, 8, 1, 0.3]])('N %i, H %i, E %i, K %i, r %f', (N, H, E, K, r) => {
    const { randn } = randomTools(N * 31 + E + K);
    const m = moeDefaults({ experts: E, topK: K, expertFfn: 6, router: 'softmax_topk', ...over });
    const lin = (o: number, i: number): Linear => ({ w: f32Weight(randn(o * i, 0.6)), b: null, out: o, in: i });
    const w: MoeWeights = {
      router: lin(E, H), selectionBias: m.selectionBias ? randn(E, 0.3) : null, shared: null, sharedGate: null,
      experts: new EagerExperts(Array.from({ length: E }, () => ({ gate: lin(6, H), up: lin(6, H), down: lin(H, 6) }))),
    };
    const x = randn(N * H);
    const s = emptyLayerSums(E);
    moeForward({ k: getKernels(), m, w, x, N, H, save: false, expertOutputs: true, onRoute: (ev) => accumulate(s, { ...ev, moeLayer: 0, layer: 0 }, H, r) });
    const want = naive(m, w, x, N, H, r);
    for (const k of ['tcess', 'count', 'soft', 'reap'] as const) {
      for (let e = 0; e < E; e++) expect(s[k][e], `${k}[${e}]`).toBeCloseTo(want[k][e], 4);
    }
    // the threshold matters where some selected probability is below it
    if (r > 0) expect(want.tcess.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(want.soft.reduce((a, b) => a + b, 0) + 1e-9);
    const sc = layerScores(s, N);
    expect(sc.frequency.reduce((a, b) => a + b, 0)).toBeCloseTo(K, 9); // K selections per token
    for (let e = 0; e < E; e++) expect(sc.reap[e]).toBeCloseTo(want.count[e] ? want.reap[e] / want.count[e] : 0, 4);
  });
});

describe.each(['mixtral', 'deepseek_v3'])('%s: the profiler = naive sums over the traced router logits', (arch) => {
  it('TCESS, frequency and soft over built-in calibration prompts; interrupted and resumed = uninterrupted, bit for bit', async () => {
    const dir = path.join(FIX, arch);
    const model = MoeModel.load(dir);
    const d = model.desc, E = d.moe.experts;
    const src = builtinSource(taskByName('sort'));
    // naive: the router logits of every MoE layer, probabilities by hand (no bias), the chosen experts
    const want = new Map<number, { tcess: number[]; count: number[]; soft: number[] }>();
    let tokens = 0, i = 0;
    for (const ex of src.examples(0)) {
      if (i++ >= 5) break;
      const ids = Int32Array.from(ex.ids.slice(0, ex.counted));
      tokens += ids.length;
      model.forward(ids, 1, ids.length, { trace: { moe: (ev) => {
        const w = want.get(ev.layer) ?? { tcess: new Array(E).fill(0), count: new Array(E).fill(0), soft: new Array(E).fill(0) };
        want.set(ev.layer, w);
        for (let n = 0; n < ev.N; n++) {
          const p = probs(d.moe, ev.logits.subarray(n * E, (n + 1) * E));
          p.forEach((v, e) => (w.soft[e] += v));
          for (let j = 0; j < ev.K; j++) { const e = ev.experts[n * ev.K + j]; w.count[e]++; if (p[e] >= DEFAULT_R) w.tcess[e] += p[e]; }
        }
      } } });
    }
    const file = path.join(tmp(), `${arch}.store.json`);
    const s = newStore(dir);
    expect(s.settings.r).toBe(DEFAULT_R);
    const r = await profileTasks(model, d, file, s, [src], { n: 5 });
    expect(r).toMatchObject({ interrupted: false, examples: 5, tokens });
    const got = readStore(file, dir).tasks.sort;
    expect(got.complete).toBe(true);
    expect(got.tokens).toBe(tokens);
    for (const [l, w] of want) {
      for (let e = 0; e < E; e++) {
        expect(got.sums[l].tcess[e]).toBeCloseTo(w.tcess[e], 4);
        expect(got.sums[l].count[e]).toBe(w.count[e]);
        expect(got.sums[l].soft[e]).toBeCloseTo(w.soft[e], 4);
        expect(got.scores.tcess[l][e]).toBeCloseTo(w.tcess[e] / tokens, 5);
      }
    }
    // interrupt after 2 examples, then resume from the file
    const file2 = path.join(tmp(), `${arch}.store2.json`);
    const ac = new AbortController();
    let seen = 0;
    const r1 = await profileTasks(model, d, file2, newStore(dir), [src], { n: 5, signal: ac.signal, onProgress: (ev) => { if (ev.status === 'progress' && ++seen === 2) ac.abort(); } });
    expect(r1.interrupted).toBe(true);
    const mid = readStore(file2, dir);
    expect(mid.tasks.sort).toMatchObject({ complete: false, examples: 2, target: 5 });
    const r2 = await profileTasks(model, d, file2, mid, [src], { n: 5 });
    expect(r2).toMatchObject({ interrupted: false, examples: 3 });
    expect(readStore(file2, dir).tasks.sort).toEqual(got);
  });
});

describe('PEP selection', () => {
  const d = MoeModel.load(path.join(FIX, 'deepseek_v3'), { experts: 'lazy' });
  d.close();
  const mix = MoeModel.load(path.join(FIX, 'mixtral'), { experts: 'lazy' });
  mix.close();
  it('top-M by score, ties by frequency then id; equal counts per routing group', () => {
    expect(topExperts(mix.desc, [0.1, 0.5, 0.5, 0, 0.2, 0.9, 0, 0], 3, [0, 1, 2, 0, 0, 0, 0, 0])).toEqual([1, 2, 5]);
    expect(topExperts(mix.desc, [0.1, 0.5, 0.5, 0, 0.2, 0.9, 0, 0], 3)).toEqual([1, 2, 5]);
    expect(topExperts(mix.desc, [0.1, 0.5, 0.5, 0, 0.2, 0.9, 0, 0], 2, [0, 1, 2, 0, 0, 0, 0, 0])).toEqual([2, 5]);
    // DeepSeek-V3 fixture: 8 experts in 2 groups; the best 4 overall are all in group 1, PEP keeps 2 per group
    expect(topExperts(d.desc, [0.1, 0.2, 0.05, 0.01, 0.9, 0.8, 0.7, 0.6], 4)).toEqual([0, 1, 4, 5]);
  });
  it('budgets the architecture can express; top-k within M and the group limit', () => {
    expect(() => checkBudget(d.desc, 3)).toThrow(/not a multiple of the 2 routing groups/);
    expect(() => checkBudget(d.desc, 2)).toThrow(/needs ≥ 2 per group/);
    expect(() => checkBudget(mix.desc, 9)).toThrow(/integer in \[1, 8\]/);
    expect(checkBudget(mix.desc, 1)).toEqual({ keep: 1, topK: 1 });
    expect(ratioBudget(d.desc, 0.25)).toEqual({ keep: 4, topK: d.desc.moe.topK });
    expect(ratioBudget(mix.desc, 0.25)).toEqual({ keep: 2, topK: 2 });
  });
});

describe('retrieval vectors', () => {
  it('the profile\'s vector of a prompt (read from the teacher-forced forward) = the partial forward of the prompt alone', async () => {
    const { queryVector } = await import('../src/experts/retrieval.js');
    for (const arch of ['qwen3_moe', 'deepseek_v3']) {
      const dir = path.join(FIX, arch);
      const model = MoeModel.load(dir);
      const s = newStore(dir);
      const src = builtinSource(taskByName('caesar'));
      await profileTasks(model, model.desc, path.join(tmp(), `${arch}.q.json`), s, [src], { n: 1 });
      const ex = src.examples(0)[Symbol.iterator]().next().value!;
      const v = queryVector(model, ex.ids.slice(0, ex.prompt), s.settings.retrievalLayers);
      expect(s.settings.retrievalLayers).toEqual(model.desc.layers.flatMap((l, i) => (l.mlp === 'moe' ? [i] : [])).slice(0, 2));
      const got = s.tasks.caesar.query.sum;
      expect(got.length).toBe(v.length);
      for (let i = 0; i < v.length; i++) expect(got[i]).toBeCloseTo(v[i], 12);
      // each layer's block: selection frequencies summing to k
      for (let b = 0; b < 2; b++) expect(v.slice(b * model.desc.moe.experts, (b + 1) * model.desc.moe.experts).reduce((a, x) => a + x, 0)).toBeCloseTo(model.desc.moe.topK, 9);
    }
  });
});
