/**
 * The Mamba-2 mixer (src/models/mamba2.ts): the engine's recurrence, fed a whole sequence or in pieces with its state
 * carried in the cache, against the slow reference (the conv over the zero-padded sequence and the scan in its quadratic
 * form); on the fixture's trained-shape weights and on random mixers with groups, other kernel widths, biases and a
 * clamped Δ; the backward against central finite differences. The whole model against transformers is fixtures.test.ts; its decoding against its full forward,
 * families.test.ts.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getKernels } from '../src/tensor/index.js';
import { Grads } from '../src/tensor/grads.js';
import { f32Weight } from '../src/tensor/weight.js';
import type { Mamba2Desc, ModelDesc } from '../src/models/desc.js';
import { LayerKv } from '../src/models/kv-cache.js';
import { mamba2Backward, mamba2Dims, mamba2Forward, mamba2Reference, type Mamba2Weights } from '../src/models/mamba2.js';
import { MoeModel } from '../src/models/model.js';
import { maxAbsDiff, rng } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe/granitemoehybrid');

function randn(rand: () => number, n: number, std: number, mean = 0): Float32Array {
  return Float32Array.from({ length: n }, () => mean + std * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand()));
}

/** a random mixer of description m over hidden size H */
function randomMixer(m: Mamba2Desc, H: number, seed: number): Mamba2Weights {
  const r = rng(seed), { I, Cch, proj } = mamba2Dims(m);
  return {
    inProj: { w: f32Weight(randn(r, proj * H, 0.3)), b: m.projBias ? randn(r, proj, 0.2) : null, out: proj, in: H },
    conv: randn(r, Cch * m.convKernel, 0.4), convBias: m.convBias ? randn(r, Cch, 0.2) : null,
    dtBias: randn(r, m.nHeads, 0.5), aLog: randn(r, m.nHeads, 0.5), D: randn(r, m.nHeads, 0.5, 1),
    norm: randn(r, I, 0.2, 1), out: { w: f32Weight(randn(r, H * I, 0.2)), b: m.projBias ? randn(r, H, 0.1) : null, out: H, in: I },
  };
}

/** the fixture model's description with another mixer */
function withMixer(base: ModelDesc, m: Mamba2Desc): ModelDesc {
  return { ...base, mamba2: m };
}

/** x [B·T, H] through the engine in pieces of the given lengths per sequence (fresh states), the outputs concatenated */
function streamed(d: ModelDesc, w: Mamba2Weights, x: Float32Array, B: number, T: number, pieces: number[][]): { y: Float32Array; kv: LayerKv[] } {
  const k = getKernels(), H = d.hidden, kv = Array.from({ length: B }, () => new LayerKv(0, 0, 0));
  const y = new Float32Array(B * T * H);
  for (let b = 0; b < B; b++) {
    let t0 = 0;
    for (const n of pieces[b]) {
      const part = mamba2Forward(k, d, w, x.subarray((b * T + t0) * H, (b * T + t0 + n) * H), 1, n, [kv[b]]).y;
      y.set(part, (b * T + t0) * H);
      t0 += n;
    }
    expect(t0).toBe(T);
  }
  return { y, kv };
}

describe('Mamba-2 mixer', () => {
  const model = MoeModel.load(FIX);
  const d = model.desc, H = d.hidden;
  const T = 13;

  it('the fixture\'s mixers: the recurrence over a whole sequence equals the quadratic-form reference', () => {
    const k = getKernels();
    const x = randn(rng(3), 2 * T * H, 1);
    const mixers = d.layers.flatMap((l, i) => (l.mixer === 'mamba2' ? [i] : []));
    expect(mixers).toEqual([0, 2]);
    for (const l of mixers) {
      const w = model.weights.layers[l].mamba2!;
      const kv = [new LayerKv(0, 0, 0), new LayerKv(0, 0, 0)];
      const { y } = mamba2Forward(k, d, w, x, 2, T, kv); // [2·T, H]
      let scale = 0;
      for (const v of y) scale = Math.max(scale, Math.abs(v));
      expect(scale).toBeGreaterThan(0.05);
      for (let b = 0; b < 2; b++) {
        const ref = mamba2Reference(k, d, w, x.subarray(b * T * H, (b + 1) * T * H), T);
        expect(maxAbsDiff(y.subarray(b * T * H, (b + 1) * T * H), ref), `layer ${l} b=${b}`).toBeLessThan(2e-6);
      }
    }
  });

  const variants: [string, Partial<Mamba2Desc>][] = [
    ['2 groups, kernel 3, projection biases', { nGroups: 2, convKernel: 3, projBias: true }],
    ['4 groups (one head each), no conv bias, kernel 2', { nGroups: 4, convKernel: 2, convBias: false }],
    ['Δ clamped to [0.05, 0.4]', { dtMin: 0.05, dtMax: 0.4 }],
  ];
  it.each(variants)('random mixers (%s): the recurrence equals the reference', (_name, over) => {
    const k = getKernels();
    const m: Mamba2Desc = { ...d.mamba2!, ...over };
    const dv = withMixer(d, m), w = randomMixer(m, H, 11);
    const x = randn(rng(5), T * H, 1);
    const { y } = mamba2Forward(k, dv, w, x, 1, T, [new LayerKv(0, 0, 0)]);
    expect(maxAbsDiff(y, mamba2Reference(k, dv, w, x, T))).toBeLessThan(5e-6);
  });

  it('the clamp of Δ is applied (a mixer with a clamped Δ computes something else)', () => {
    const k = getKernels();
    const m: Mamba2Desc = { ...d.mamba2! }, clamped: Mamba2Desc = { ...m, dtMin: 0.05, dtMax: 0.4 };
    const w = randomMixer(m, H, 11), x = randn(rng(5), T * H, 1);
    const a = mamba2Forward(k, withMixer(d, m), w, x, 1, T, [new LayerKv(0, 0, 0)]).y;
    const b = mamba2Forward(k, withMixer(d, clamped), w, x, 1, T, [new LayerKv(0, 0, 0)]).y;
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(b, mamba2Reference(k, withMixer(d, clamped), w, x, T))).toBeLessThan(5e-6);
  });

  it('the state carried in the cache: a sequence fed in pieces (a prompt, then one token at a time) gives the whole-sequence outputs', () => {
    const k = getKernels();
    const m: Mamba2Desc = { ...d.mamba2!, nGroups: 2, convKernel: 4 };
    const dv = withMixer(d, m), w = randomMixer(m, H, 21);
    const x = randn(rng(9), 2 * T * H, 1);
    const whole = mamba2Forward(k, dv, w, x, 2, T, [new LayerKv(0, 0, 0), new LayerKv(0, 0, 0)]).y;
    // a: a prompt of 5, then single tokens; b: pieces shorter than the conv window, then one long one
    const { y, kv } = streamed(dv, w, x, 2, T, [[5, 1, 1, 1, 1, 1, 1, 1, 1], [1, 2, 1, 9]]);
    // the same sums but for in_proj / out_proj as GEMMs of other row counts (or GEMVs): a few f32 ulps of the outputs
    let scale = 0;
    for (const v of whole) scale = Math.max(scale, Math.abs(v));
    expect(maxAbsDiff(y, whole)).toBeLessThan(1e-6 * Math.max(1, scale));
    // the state is of fixed size: the conv window [K − 1, C] and S [nH, P, N]
    const { Cch } = mamba2Dims(m);
    for (const s of kv) {
      expect(s.conv!.length).toBe((m.convKernel - 1) * Cch);
      expect(s.rec!.length).toBe(m.nHeads * m.headDim * m.dState);
    }
    // and a batch of two sequences at different points decodes together (one call, B = 2, T = 1)
    const ka = new LayerKv(0, 0, 0), kb = new LayerKv(0, 0, 0);
    mamba2Forward(k, dv, w, x.subarray(0, 7 * H), 1, 7, [ka]);
    mamba2Forward(k, dv, w, x.subarray(T * H, (T + 3) * H), 1, 3, [kb]);
    const step = new Float32Array(2 * H);
    step.set(x.subarray(7 * H, 8 * H), 0);
    step.set(x.subarray((T + 3) * H, (T + 4) * H), H);
    const out = mamba2Forward(k, dv, w, step, 2, 1, [ka, kb]).y;
    expect(maxAbsDiff(out.subarray(0, H), whole.subarray(7 * H, 8 * H))).toBeLessThan(1e-6 * Math.max(1, scale));
    expect(maxAbsDiff(out.subarray(H), whole.subarray((T + 3) * H, (T + 4) * H))).toBeLessThan(1e-6 * Math.max(1, scale));
  });

  const gradCases: [string, Partial<Mamba2Desc>][] = [
    ['the fixture\'s shape', {}],
    ['2 groups, kernel 3, projection biases, no conv bias', { nGroups: 2, convKernel: 3, projBias: true, convBias: false }],
    ['Δ clamped to [0.3, 1.2] (no gradient where it holds)', { dtMin: 0.3, dtMax: 1.2 }],
  ];
  it.each(gradCases)('the backward (%s) equals central finite differences of Σ r ⊙ y, for every weight and the input', (_name, over) => {
    const k = getKernels();
    const m: Mamba2Desc = { ...d.mamba2!, ...over };
    const dv = withMixer(d, m), w = randomMixer(m, H, 31);
    const B = 2, Tg = 6, N = B * Tg;
    const x = randn(rng(13), N * H, 1), r = randn(rng(17), N * H, 1); // input, and the loss's weights (= dy)
    const loss = (): number => {
      const y = mamba2Forward(k, dv, w, x, B, Tg, [new LayerKv(0, 0, 0), new LayerKv(0, 0, 0)]).y;
      let l = 0;
      for (let i = 0; i < y.length; i++) l += r[i] * y[i];
      return l;
    };
    const { s } = mamba2Forward(k, dv, w, x, B, Tg, [new LayerKv(0, 0, 0), new LayerKv(0, 0, 0)], true);
    const g = new Grads(), dx = new Float32Array(N * H);
    mamba2Backward(k, dv, w, s!, B, Tg, r, dx, g);
    const tensors: [string, Float32Array, Float32Array][] = [
      ['x', x, dx], ['in_proj', w.inProj.w.data as Float32Array, g.of(w.inProj.w)], ['conv', w.conv, g.of(w.conv)],
      ['dt_bias', w.dtBias, g.of(w.dtBias)], ['A_log', w.aLog, g.of(w.aLog)], ['D', w.D, g.of(w.D)],
      ['norm', w.norm, g.of(w.norm)], ['out_proj', w.out.w.data as Float32Array, g.of(w.out.w)],
    ];
    if (w.convBias) tensors.push(['conv bias', w.convBias, g.of(w.convBias)]);
    if (w.inProj.b) tensors.push(['in_proj bias', w.inProj.b, g.of(w.inProj.b)]);
    let checked = 0;
    for (const [name, p, gp] of tensors) {
      // the largest gradients, and for in_proj the dt rows (only the clamp and softplus reach them)
      const idx = [...gp.keys()].sort((a, b) => Math.abs(gp[b]) - Math.abs(gp[a])).slice(0, 4);
      if (name === 'in_proj') {
        const { I, Cch } = mamba2Dims(m);
        idx.push(...[0, 1, 2, 3].map((h) => (I + Cch + h) * H + h));
      }
      for (const i of idx) {
        // central differences at h and h / 2, Richardson-extrapolated (error O(h⁴), steps far above f32 noise)
        const x0 = p[i], h = 8e-3;
        const cd = (e: number) => { p[i] = x0 + e; const a = loss(); p[i] = x0 - e; const b = loss(); p[i] = x0; return (a - b) / (2 * e); };
        const num = (4 * cd(h / 2) - cd(h)) / 3;
        expect(Math.abs(num - gp[i]), `${name}[${i}]: fd ${num}, backward ${gp[i]}`).toBeLessThanOrEqual(2e-3 * Math.max(1, Math.abs(gp[i])));
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4 * tensors.length);
  });
});
