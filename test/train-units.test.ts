/**
 * The trainer's small parts against independent references, fast enough for the mutation runs: cross-entropy and its
 * gradient (float64 re-derivation and finite differences), the distillation KL, next-token and MTP targets, the
 * learning-rate schedules at hand-computed steps, elastic sub-model sampling (masks, depth layers, the sampling
 * distribution by frequency, the refused configurations), and one architecture's full gradient against the
 * reference implementation's (the 18-fixture golden tests are in train.test.ts).
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MoeModel } from '../src/models/model.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { checkElastic, depthLayers, gridSub, sampleSub, widthMask, type ElasticConfig } from '../src/train/elastic.js';
import { crossEntropyBackward, crossEntropyForward, klDivergence, nextTokenTargets } from '../src/train/loss.js';
import { TrainableModel } from '../src/train/model.js';
import { shiftTargets } from '../src/train/mtp.js';
import { toTransformers5 } from '../src/train/names.js';
import { listSource, Packer, tokenizeExample } from '../src/train/data.js';
import { lrAt, type Schedule } from '../src/train/schedule.js';
import { MoekitError } from '../src/util/errors.js';
import { rng } from './helpers.js';

const r = rng(21);
const randn = (n: number, s = 1) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);

/** −log softmax(x)[t] in float64 */
const nll = (x: ArrayLike<number>, t: number) => {
  const mx = Math.max(...Array.from(x));
  const z = Array.from(x).reduce((a, v) => a + Math.exp(v - mx), 0);
  return Math.log(z) + mx - x[t];
};

describe('cross-entropy', () => {
  it('targets: ids shifted by one, −1 at the last position of each sequence', () => {
    expect(Array.from(nextTokenTargets(Int32Array.from([1, 2, 3, 4, 5, 6]), 2, 3))).toEqual([2, 3, -1, 5, 6, -1]);
    expect(Array.from(nextTokenTargets(Int32Array.from([9]), 1, 1))).toEqual([-1]);
  });

  it('the mean negative log-likelihood over the rows with a target, and its gradient (finite differences)', () => {
    const N = 5, V = 7;
    const logits = randn(N * V, 3), targets = Int32Array.from([3, -1, 0, 6, 2]);
    const { loss, s } = crossEntropyForward(logits, targets, N, V);
    const want = [0, 2, 3, 4].reduce((a, n) => a + nll(logits.subarray(n * V, (n + 1) * V), targets[n]), 0) / 4;
    expect(Math.abs(loss - want)).toBeLessThan(1e-6);
    expect(s.count).toBe(4);
    for (let n = 0; n < N; n++) expect(s.probs.subarray(n * V, (n + 1) * V).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const d = new Float32Array(N * V).fill(0.25); // accumulates
    crossEntropyBackward(d, s);
    for (let i = 0; i < N * V; i++) {
      const x0 = logits[i], h = 1e-2;
      logits[i] = x0 + h; const a = crossEntropyForward(logits, targets, N, V).loss;
      logits[i] = x0 - h; const b = crossEntropyForward(logits, targets, N, V).loss;
      logits[i] = x0;
      expect(Math.abs(d[i] - 0.25 - (a - b) / (2 * h)), `${i}`).toBeLessThan(1e-4);
    }
    // a row without a target gets no gradient
    for (let j = 0; j < V; j++) expect(d[V + j]).toBe(0.25);
  });

  it('large logits stay finite (the max is subtracted)', () => {
    const { loss } = crossEntropyForward(Float32Array.from([1000, 0, -1000]), Int32Array.from([1]), 1, 3);
    expect(loss).toBeCloseTo(1000, 3);
  });
});

describe('distillation KL(teacher ‖ student)', () => {
  it('the float64 sum over counted rows, the gradient (p_s − p_t) / count, zero for identical logits', () => {
    const N = 3, V = 5;
    const st = randn(N * V, 2), te = randn(N * V, 2), targets = Int32Array.from([1, -1, 4]);
    const { loss, dlogits } = klDivergence(st, te, targets, N, V);
    const sm = (x: Float32Array, n: number) => { const v = Array.from(x.subarray(n * V, (n + 1) * V)); const mx = Math.max(...v); const e = v.map((a) => Math.exp(a - mx)); const z = e.reduce((a, b) => a + b, 0); return e.map((a) => a / z); };
    let want = 0;
    for (const n of [0, 2]) { const ps = sm(st, n), pt = sm(te, n); for (let j = 0; j < V; j++) want += pt[j] * Math.log(pt[j] / ps[j]); }
    expect(Math.abs(loss - want / 2)).toBeLessThan(1e-9);
    for (const n of [0, 2]) { const ps = sm(st, n), pt = sm(te, n); for (let j = 0; j < V; j++) expect(dlogits[n * V + j]).toBeCloseTo((ps[j] - pt[j]) / 2, 7); }
    for (let j = 0; j < V; j++) expect(dlogits[V + j]).toBe(0);
    // finite differences of the loss in the student logits
    for (const i of [0, 3, 11, 14]) {
      const x0 = st[i], h = 1e-3;
      st[i] = x0 + h; const a = klDivergence(st, te, targets, N, V).loss;
      st[i] = x0 - h; const b = klDivergence(st, te, targets, N, V).loss;
      st[i] = x0;
      expect(Math.abs(dlogits[i] - (a - b) / (2 * h))).toBeLessThan(1e-4);
    }
    expect(klDivergence(st, st, targets, N, V).loss).toBeCloseTo(0, 12);
    expect(klDivergence(st, te, Int32Array.from([-1, -1, -1]), N, V)).toEqual({ loss: 0, dlogits: new Float32Array(N * V) });
  });
});

describe('MTP targets', () => {
  it('depth s predicts the token s + 1 further on: the next-token targets shifted left by s within each sequence', () => {
    const tg = nextTokenTargets(Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2, 4); // [2,3,4,-1, 6,7,8,-1]
    expect(Array.from(shiftTargets(tg, 2, 4, 1))).toEqual([3, 4, -1, -1, 7, 8, -1, -1]);
    expect(Array.from(shiftTargets(tg, 2, 4, 2))).toEqual([4, -1, -1, -1, 8, -1, -1, -1]);
    expect(Array.from(shiftTargets(tg, 2, 4, 0))).toEqual(Array.from(tg));
  });
});

describe('learning-rate schedules at hand-computed steps', () => {
  const base: Schedule = { kind: 'constant', lr: 1e-3, minLr: 1e-4, warmup: 4, steps: 24, decayFraction: 0.25 };
  it('linear warmup from lr/warmup to lr', () => {
    for (const kind of ['constant', 'cosine', 'wsd'] as const) {
      expect([0, 1, 2, 3].map((s) => lrAt({ ...base, kind }, s))).toEqual([2.5e-4, 5e-4, 7.5e-4, 1e-3]);
    }
    expect(lrAt({ ...base, warmup: 0 }, 0)).toBe(1e-3);
  });
  it('constant after warmup', () => {
    for (const s of [4, 10, 23, 100]) expect(lrAt(base, s)).toBe(1e-3);
  });
  it('cosine: lr at the end of warmup, the midpoint halfway, minLr at the last step and after', () => {
    const c = { ...base, kind: 'cosine' as const };
    expect(lrAt(c, 4)).toBeCloseTo(1e-3, 15);
    expect(lrAt(c, 14)).toBeCloseTo(1e-4 + 0.5 * 9e-4, 15); // t = 10/20
    expect(lrAt(c, 9)).toBeCloseTo(1e-4 + 0.5 * 9e-4 * (1 + Math.cos(Math.PI / 4)), 15); // t = 5/20
    expect(lrAt(c, 24)).toBeCloseTo(1e-4, 15);
    expect(lrAt(c, 40)).toBeCloseTo(1e-4, 15);
    // warmup ≥ steps: no division by zero
    expect(Number.isFinite(lrAt({ ...c, warmup: 24 }, 24))).toBe(true);
  });
  it('wsd: lr until the last quarter (6 of 24 steps), then linear to minLr', () => {
    const w = { ...base, kind: 'wsd' as const };
    expect(lrAt(w, 17)).toBe(1e-3);
    expect(lrAt(w, 18)).toBeCloseTo(1e-3 - 9e-4 / 6, 15);
    expect(lrAt(w, 20)).toBeCloseTo(1e-3 - 9e-4 * 3 / 6, 15);
    expect(lrAt(w, 23)).toBeCloseTo(1e-4, 15);
    expect(lrAt(w, 30)).toBeCloseTo(1e-4, 15);
    // a decay fraction that rounds to no step still decays over one
    expect(lrAt({ ...w, decayFraction: 0.001 }, 23)).toBeCloseTo(1e-4, 15);
    expect(lrAt({ ...w, decayFraction: 0.001 }, 22)).toBe(1e-3);
  });
});

describe('elastic sub-models', () => {
  const model = MoeModel.load(path.resolve(__dirname, '../fixtures/hf-tiny-moe/deepseek_v3'));
  const d = model.desc; // 3 layers, 8 experts in 2 routing groups, top-2
  it('depth d keeps layers 0 … d − 2 and the last', () => {
    expect(depthLayers(6, 1)).toEqual([5]);
    expect(depthLayers(6, 3)).toEqual([0, 1, 5]);
    expect(depthLayers(6, 6)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(depthLayers(6, 9)).toEqual([0, 1, 2, 3, 4, 5]);
  });
  it('width n keeps the first n/G experts of each of the G routing groups', () => {
    expect(Array.from(widthMask(8, 1, 3))).toEqual([1, 1, 1, 0, 0, 0, 0, 0]);
    expect(Array.from(widthMask(8, 4, 4))).toEqual([1, 0, 1, 0, 1, 0, 1, 0]);
    expect(Array.from(widthMask(8, 2, 4))).toEqual([1, 1, 0, 0, 1, 1, 0, 0]);
  });
  it('a grid point: the layers, a mask per MoE layer (none at full width), k capped by the width', () => {
    const nMoe = d.layers.filter((l) => l.mlp === 'moe').length;
    const g = gridSub(d, 2, 4, 3);
    expect(g.sub.layers).toEqual([0, d.nLayers - 1]);
    expect(g.sub.experts!.length).toBe(nMoe);
    expect(Array.from(g.sub.experts![0]!)).toEqual(Array.from(widthMask(d.moe.experts, d.moe.nGroup, 4)));
    expect([g.depth, g.experts, g.topK, g.sub.topK]).toEqual([2, 4, 3, 3]);
    const full = gridSub(d, 10, d.moe.experts, 9);
    expect(full.sub.experts!.every((m) => m === null)).toBe(true);
    expect([full.depth, full.topK]).toEqual([d.nLayers, d.moe.experts]);
  });
  it('sampling follows the given probabilities (20,000 draws within 5 sigma), and each axis defaults to the full model', () => {
    const c: ElasticConfig = { depth: { choices: [1, 2, 3], probs: [0.2, 0.3, 0.5] }, experts: { choices: [4, 8] }, topK: { choices: [1, 2], probs: [3, 1] }, samples: 1, distill: 0 };
    checkElastic(d, c);
    const rr = rng(4), N = 20000;
    const n = { depth: new Map<number, number>(), experts: new Map<number, number>(), topK: new Map<number, number>() };
    for (let i = 0; i < N; i++) {
      const s = sampleSub(d, c, rr);
      for (const k of ['depth', 'experts', 'topK'] as const) n[k].set(s[k], (n[k].get(s[k]) ?? 0) + 1);
    }
    const within = (m: Map<number, number>, want: Record<number, number>) => {
      for (const [v, p] of Object.entries(want)) expect(Math.abs((m.get(Number(v)) ?? 0) / N - p), `${v}`).toBeLessThanOrEqual(5 * Math.sqrt((p * (1 - p)) / N));
      expect([...m.keys()].sort()).toEqual(Object.keys(want).map(Number).sort());
    };
    within(n.depth, { 1: 0.2, 2: 0.3, 3: 0.5 });
    within(n.experts, { 4: 0.5, 8: 0.5 });
    within(n.topK, { 1: 0.75, 2: 0.25 });
    const all = sampleSub(d, { samples: 1, distill: 0 }, rr);
    expect([all.depth, all.experts, all.topK]).toEqual([d.nLayers, d.moe.experts, d.moe.topK]);
    // a draw at the top of the range takes the last choice
    expect(sampleSub(d, { ...c, depth: { choices: [1, 2] } }, () => 0.999999999).depth).toBe(2);
  });
  it('refuses configurations that cannot be sampled, naming the field', () => {
    const bad: [Partial<ElasticConfig>, RegExp][] = [
      [{ depth: { choices: [] } }, /^elastic\.depth\.choices: give at least one choice$/],
      [{ depth: { choices: [0] } }, /^elastic\.depth\.choices: 0 must be an integer in \[1, 3\]$/],
      [{ depth: { choices: [4] } }, /^elastic\.depth\.choices: 4 must be an integer in \[1, 3\]$/],
      [{ depth: { choices: [1.5] } }, /1\.5 must be an integer/],
      [{ experts: { choices: [3] } }, /^elastic\.experts\.choices: 3 experts do not split evenly over the 2 routing groups$/],
      [{ experts: { choices: [9] } }, /^elastic\.experts\.choices: 9 must be an integer in \[1, 8\]$/],
      [{ topK: { choices: [0] } }, /^elastic\.top_k\.choices: 0 must be an integer in \[1, 8\]$/],
      [{ depth: { choices: [1, 2], probs: [1] } }, /^elastic\.depth\.probs: 1 probabilities for 2 choices$/],
      [{ depth: { choices: [1, 2], probs: [0, 0] } }, /^elastic\.depth\.probs: probabilities must be ≥ 0 and not all 0/],
      [{ depth: { choices: [1, 2], probs: [-1, 2] } }, /probabilities must be ≥ 0/],
      [{ samples: -1 }, /^elastic\.samples must be a non-negative integer, got -1$/],
      [{ samples: 0.5 }, /^elastic\.samples must be a non-negative integer, got 0\.5$/],
      [{ distill: -0.1 }, /^elastic\.distill must be ≥ 0, got -0\.1$/],
      [{ distill: NaN }, /^elastic\.distill must be ≥ 0, got NaN$/],
    ];
    for (const [over, re] of bad) {
      let e: unknown;
      try { checkElastic(d, { samples: 1, distill: 0, ...over }); } catch (x) { e = x; }
      expect(e, JSON.stringify(over)).toBeInstanceOf(MoekitError);
      expect((e as Error).message).toMatch(re);
    }
    expect(() => checkElastic(d, { depth: { choices: [1, 3], probs: [0, 1] }, experts: { choices: [4, 8] }, samples: 0, distill: 0 })).not.toThrow();
  });
});

describe('one architecture end to end: the trainer against the reference gradients', () => {
  it('mixtral: lm_loss within 1e-5 and every gradient within 1e-4 of max |ref| (train.test.ts runs all eleven)', () => {
    const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
    const ref = SafetensorsFile.open(path.resolve(__dirname, '../fixtures/hf-tiny-moe-train/mixtral.train_reference.safetensors'));
    const ids = ref.readI32('input_ids');
    const [B, T] = ref.info('input_ids').shape;
    const tm = TrainableModel.load(path.join(FIX, 'mixtral'));
    const { loss, grads } = tm.forwardBackward(ids, B, T);
    expect(Math.abs(loss - ref.readF32('lm_loss')[0])).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(tm.loss(ids, B, T) - loss)).toBeLessThanOrEqual(1e-6);
    const ours = toTransformers5(grads);
    const names = ref.names().filter((n) => n.startsWith('grad.'));
    expect(names.length).toBe(ours.size);
    for (const n of names) {
      const want = ref.readF32(n), got = ours.get(n.slice(5))!;
      expect(got?.length, n).toBe(want.length);
      let dd = 0, m = 0;
      for (let i = 0; i < want.length; i++) { dd = Math.max(dd, Math.abs(want[i] - got[i])); m = Math.max(m, Math.abs(want[i])); }
      expect(m > 0 ? dd / m : dd, n).toBeLessThanOrEqual(1e-4);
    }
    ref.close();
  });
});

describe('training data', () => {
  /** a character tokenizer: a = 10, b = 11, …; decode the inverse */
  const tok = { encode: (s: string) => Array.from(s, (c) => c.charCodeAt(0) - 87), decode: (ids: number[]) => ids.map((i) => String.fromCharCode(i + 87)).join(''), chatTemplate: null, applyChatTemplate: () => [] };
  const sp = { bos: 1, eos: 2, pad: 0 };
  it('tokenizeExample: [bos] text [eos] all counted; [bos] prompt answer [eos] counting the answer and eos', () => {
    expect(tokenizeExample(tok, { text: 'ab' }, sp)).toEqual({ ids: [1, 10, 11, 2], mask: [0, 1, 1, 1] });
    expect(tokenizeExample(tok, { prompt: 'ab', answer: 'c' }, sp)).toEqual({ ids: [1, 10, 11, 12, 2], mask: [0, 0, 0, 1, 1] });
    expect(tokenizeExample(tok, { text: 'a' }, { ...sp, bos: null })).toEqual({ ids: [10, 2], mask: [1, 1] });
    const given = { ids: [5, 6], mask: [1, 0] };
    expect(tokenizeExample(tok, { tokens: given }, sp)).toBe(given);
  });
  it('listSource: every example once per epoch, a new order each epoch, the same for the same seed', () => {
    const ex = Array.from({ length: 7 }, (_, i) => ({ text: `x${i}` }));
    const s = listSource(ex, 3), s2 = listSource(ex, 3), other = listSource(ex, 4);
    const epoch = (src: typeof s, e: number) => Array.from({ length: 7 }, (_, i) => src.at(e * 7 + i).text);
    for (const e of [0, 1, 2]) expect(epoch(s, e).slice().sort()).toEqual(ex.map((x) => x.text).sort());
    expect(epoch(s, 0)).not.toEqual(epoch(s, 1));
    expect(epoch(s, 1)).toEqual(epoch(s2, 1));
    expect(epoch(s, 0)).not.toEqual(epoch(other, 0));
    expect(s.at(3)).toBe(s.at(3));
    expect(() => listSource([], 0, 'my.txt')).toThrow(/^my\.txt: no examples$/);
  });
  it('Packer: whole examples per row, the next one starting a new row, padding not counted; long ones split', () => {
    // examples of 4, 3, 9 tokens ([bos] text [eos]) into rows of 6
    const src = { at: (i: number) => [{ text: 'ab' }, { text: 'c' }, { text: 'defghij' }][i % 3] };
    const p = new Packer(src, tok, 6, sp);
    const b = p.batch(3);
    expect([b.B, b.T]).toEqual([3, 6]);
    expect(Array.from(b.ids)).toEqual([
      1, 10, 11, 2, 0, 0, // 'ab' (4); 'c' (3) does not fit the 2 left: it starts the next row
      1, 12, 2, 1, 13, 14, // 'c'; 'defghij' (9) is longer than any row: it fills this one and goes on
      15, 16, 17, 18, 19, 2, // its tail fits exactly
    ]);
    // targets: the next token where it counts (mask), −1 elsewhere (padding, and each [bos])
    expect(Array.from(b.targets)).toEqual([
      10, 11, 2, -1, -1, -1,
      12, 2, -1, 13, 14, -1,
      16, 17, 18, 19, 2, -1,
    ]);
    expect(b.count).toBe(3 + 4 + 5);
    // the cycle goes on: 'ab' again, 'c' carried to the next row
    const c = p.batch(1);
    expect(Array.from(c.ids)).toEqual([1, 10, 11, 2, 0, 0]);
    expect(Array.from(c.targets)).toEqual([10, 11, 2, -1, -1, -1]);
    expect(p.state.cursor).toBe(5);
    expect(p.state.carry).toEqual({ ids: [1, 12, 2], mask: [0, 1, 1] });
    expect(() => new Packer(src, tok, 1, sp)).toThrow(/^seq_len must be an integer ≥ 2, got 1$/);
  });
  it('Packer: an example that fits exactly fills its row; a resumed packer continues the same stream', () => {
    const src = { at: (i: number) => ({ text: 'abcd'.slice(0, 1 + (i % 4)) }) };
    const a = new Packer(src, tok, 5, sp);
    const b1 = a.batch(2), b2 = a.batch(2);
    const r = new Packer(src, tok, 5, sp);
    r.batch(2);
    const resumed = new Packer(src, tok, 5, sp);
    resumed.state = JSON.parse(JSON.stringify(r.state));
    expect(Array.from(resumed.batch(2).ids)).toEqual(Array.from(b2.ids));
    expect(Array.from(b1.ids.subarray(5, 10))).toEqual([1, 10, 11, 2, 0]);
  });
});
