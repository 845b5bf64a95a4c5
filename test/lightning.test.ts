/**
 * Lightning attention (src/models/lightning.ts): the block form (transformers' prefill, on the kernels' GEMMs) and the
 * recurrent form (its decode) held to the quadratic form with its decay mask, per head, from a zero and a carried
 * state, for block sizes below, at and above T; the slopes and decay tables to the buffers transformers saved in the
 * minimax fixture; the whole layer on the fixture's weights to the layer written out with plain loops, and its prefill
 * in chunks and token by token to one pass over the sequence.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { MoeModel } from '../src/models/model.js';
import { LayerKv } from '../src/models/kv-cache.js';
import {
  lightningBlocks, lightningDecayTables, lightningForward, lightningNaive, lightningRecurrent, lightningSlopes, LIGHTNING_NORM_EPS,
} from '../src/models/lightning.js';
import { referenceKernels, nativeKernels } from '../src/tensor/index.js';
import type { Kernels } from '../src/tensor/kernels.js';
import { rng } from '../src/util/rng.js';
import { maxAbsDiff } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe/minimax');
const KERNELS: [string, Kernels][] = [['reference', referenceKernels], ...(nativeKernels ? [['native', nativeKernels] as [string, Kernels]] : [])];

function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => Math.fround((r() * 2 - 1) * scale));
}

/** max |a − b| / max(1, max |b|) */
function relDiff(a: Float32Array, b: Float32Array): number {
  let m = 1;
  for (const v of b) m = Math.max(m, Math.abs(v));
  return maxAbsDiff(a, b) / m;
}

describe.each(KERNELS)('one head, three forms (%s kernels)', (_name, kr) => {
  const Dk = 5, Dv = 6;
  // slopes: none (plain linear attention), MiniMax's range (0.25 … 0.004), and a fast decay
  const cases = [0, 1e-5, 0.004, 0.25, 2].flatMap((s) => [1, 7, 8, 21].flatMap((T) => [1, 3, 8, 32].map((bs) => ({ s, T, bs }))));
  it.each(cases)('s $s, T $T, block $bs: blocks and recurrence equal the quadratic form, o and the state', ({ s, T, bs }) => {
    const q = randn(T * Dk, 1 + T), k = randn(T * Dk, 2 + T), v = randn(T * Dv, 3 + T);
    for (const S0 of [null, randn(Dk * Dv, 4, 0.5)]) {
      const want = lightningNaive(q, k, v, T, Dk, Dv, s, S0);
      const Sb = S0 ? S0.slice() : new Float32Array(Dk * Dv), ob = new Float32Array(T * Dv);
      lightningBlocks(kr, q, k, v, T, Dk, Dv, s, Sb, bs, ob);
      const Sr = S0 ? S0.slice() : new Float32Array(Dk * Dv), or = new Float32Array(T * Dv);
      lightningRecurrent(q, k, v, T, Dk, Dv, s, Sr, or);
      expect(relDiff(ob, want.o), 'blocks o').toBeLessThan(1e-5);
      expect(relDiff(Sb, want.S), 'blocks S').toBeLessThan(1e-5);
      expect(relDiff(or, want.o), 'recurrent o').toBeLessThan(1e-5);
      expect(relDiff(Sr, want.S), 'recurrent S').toBeLessThan(1e-5);
    }
  });

  it('the quadratic form is the decayed sum it is written as (one position by hand)', () => {
    const T = 3, s = 0.5;
    const q = randn(T * Dk, 11), k = randn(T * Dk, 12), v = randn(T * Dv, 13);
    const dot = (a: number, b: number) => { let x = 0; for (let i = 0; i < Dk; i++) x += q[a * Dk + i] * k[b * Dk + i]; return x; };
    const { o } = lightningNaive(q, k, v, T, Dk, Dv, s, null);
    for (let c = 0; c < Dv; c++) {
      const want = Math.exp(-1) * dot(2, 0) * v[c] + Math.exp(-0.5) * dot(2, 1) * v[Dv + c] + dot(2, 2) * v[2 * Dv + c];
      expect(Math.abs(o[2 * Dv + c] - want)).toBeLessThan(1e-5);
    }
  });

  it('strided heads: q, k, v read from rows of a wider tensor and o written into one', () => {
    const T = 13, ld = 3 * Dk + 2, ldo = Dv + 3, s = 0.1, bs = 4;
    const x = randn(T * ld, 21); // per row [q (Dk) | k (Dk) | v (Dv) | one unused column]
    const q = x, k = x.subarray(Dk), v = x.subarray(2 * Dk);
    const pack = (a: Float32Array, w: number) => Float32Array.from({ length: T * w }, (_, i) => a[Math.floor(i / w) * ld + (i % w)]);
    const want = lightningNaive(pack(q, Dk), pack(k, Dk), pack(v, Dv), T, Dk, Dv, s, null);
    const o = new Float32Array(T * ldo).fill(7), S = new Float32Array(Dk * Dv);
    lightningBlocks(kr, q, k, v, T, Dk, Dv, s, S, bs, o, ld, ld, ldo);
    const got = Float32Array.from({ length: T * Dv }, (_, i) => o[Math.floor(i / Dv) * ldo + (i % Dv)]);
    expect(relDiff(got, want.o)).toBeLessThan(1e-5);
    for (let t = 0; t < T; t++) for (let c = Dv; c < ldo; c++) expect(o[t * ldo + c]).toBe(7); // columns outside the head untouched
  });
});

describe('slopes and decay tables', () => {
  it('equal the buffers transformers saved with each lightning layer of the fixture', () => {
    const m = MoeModel.load(FIX);
    const ck = Checkpoint.open(FIX);
    try {
      const { nHeads: nH, blockSize: bs } = m.desc.lightning!;
      let layers = 0;
      for (let l = 0; l < m.desc.nLayers; l++) {
        if (m.desc.layers[l].mixer !== 'lightning') continue;
        const p = `model.layers.${l}.self_attn`;
        const s = lightningSlopes(nH, l, m.desc.nLayers);
        expect(maxAbsDiff(s, ck.readF32(`${p}.slope_rate`)), `layer ${l} slopes`).toBeLessThanOrEqual(1e-7 * s[0]);
        const t = lightningDecayTables(ck.readF32(`${p}.slope_rate`), bs);
        expect(maxAbsDiff(t.query, ck.readF32(`${p}.query_decay`))).toBeLessThan(1e-6);
        expect(maxAbsDiff(t.key, ck.readF32(`${p}.key_decay`))).toBeLessThan(1e-6);
        expect(maxAbsDiff(t.diagonal, ck.readF32(`${p}.diagonal_decay`))).toBeLessThan(1e-6);
        expect(Array.from(m.weights.layers[l].lightning!.slope)).toEqual(Array.from(ck.readF32(`${p}.slope_rate`))); // loaded as saved
        layers++;
      }
      expect(layers).toBe(2);
      // the last layer barely decays, the first decays fastest in head 0: 1/2^(8/nH)
      expect(lightningSlopes(4, 0, 3)[0]).toBeCloseTo(0.25, 4);
      expect(lightningSlopes(4, 2, 3)[0]).toBeLessThan(1e-5);
    } finally {
      ck.close();
    }
  });
});

/** the lightning layer written out with plain loops and the quadratic form: x [T, H] of one sequence → [T, H] */
function naiveLayer(m: MoeModel, l: number, x: Float32Array, T: number): Float32Array {
  const d = m.desc, H = d.hidden, w = m.weights.layers[l].lightning!, { nHeads: nH, headDim: D } = d.lightning!, HD = nH * D;
  const lin = (W: Float32Array, inp: Float32Array, out: number, n: number) => {
    const y = new Float32Array(T * out);
    for (let t = 0; t < T; t++) for (let r = 0; r < out; r++) { let a = 0; for (let c = 0; c < n; c++) a += W[r * n + c] * inp[t * n + c]; y[t * out + r] = a; }
    return y;
  };
  const qkv = lin(w.qkv.w.data as Float32Array, x, 3 * HD, H).map((z) => z / (1 + Math.exp(-z)));
  const core = new Float32Array(T * HD);
  for (let h = 0; h < nH; h++) {
    const part = (j: number) => Float32Array.from({ length: T * D }, (_, i) => qkv[Math.floor(i / D) * 3 * HD + h * 3 * D + j * D + (i % D)]);
    const { o } = lightningNaive(part(0), part(1), part(2), T, D, D, w.slope[h], null);
    for (let t = 0; t < T; t++) for (let c = 0; c < D; c++) core[t * HD + h * D + c] = o[t * D + c];
  }
  const g = lin(w.gate.w.data as Float32Array, x, HD, H);
  for (let t = 0; t < T; t++) {
    let ms = 0;
    for (let c = 0; c < HD; c++) ms += core[t * HD + c] ** 2;
    const r = 1 / Math.sqrt(ms / HD + LIGHTNING_NORM_EPS);
    for (let c = 0; c < HD; c++) core[t * HD + c] = core[t * HD + c] * r * w.norm[c] / (1 + Math.exp(-g[t * HD + c]));
  }
  return lin(w.out.w.data as Float32Array, core, H, HD);
}

describe.each(KERNELS)('the lightning layer on the fixture\'s weights (%s kernels)', (_name, kr) => {
  const m = MoeModel.load(FIX);
  const H = m.desc.hidden, T = 19; // two full blocks of 8 and a partial one
  const x = randn(T * H, 31);
  const fresh = () => [new LayerKv(0, 0, 0)];
  it.each([0, 2])('layer %i: one pass equals the layer written out with the quadratic form', (l) => {
    const y = lightningForward(kr, m.desc, m.weights.layers[l].lightning!, x, 1, T, fresh());
    expect(relDiff(y, naiveLayer(m, l, x, T))).toBeLessThan(1e-5);
  });
  it.each([0, 2])('layer %i: chunks (5, 8, 6) and single tokens carry the state: the one-pass outputs and state', (l) => {
    const w = m.weights.layers[l].lightning!;
    const kv = fresh();
    const whole = lightningForward(kr, m.desc, w, x, 1, T, kv);
    for (const chunks of [[5, 8, 6], Array<number>(T).fill(1), [1, 17, 1]]) {
      const c = fresh();
      const got = new Float32Array(T * H);
      let t0 = 0;
      for (const n of chunks) {
        got.set(lightningForward(kr, m.desc, w, x.subarray(t0 * H, (t0 + n) * H), 1, n, c), t0 * H);
        t0 += n;
      }
      expect(relDiff(got, whole), chunks.join(',')).toBeLessThan(1e-5);
      expect(relDiff(c[0].rec!, kv[0].rec!), chunks.join(',')).toBeLessThan(1e-5);
    }
  });
  it('a batch of two sequences: each as it is alone', () => {
    const l = 0, w = m.weights.layers[l].lightning!, x2 = randn(T * H, 32);
    const both = new Float32Array(2 * T * H);
    both.set(x); both.set(x2, T * H);
    const y = lightningForward(kr, m.desc, w, both, 2, T, [new LayerKv(0, 0, 0), new LayerKv(0, 0, 0)]);
    expect(relDiff(y.subarray(0, T * H), lightningForward(kr, m.desc, w, x, 1, T, fresh()))).toBeLessThan(1e-6);
    expect(relDiff(y.subarray(T * H), lightningForward(kr, m.desc, w, x2, 1, T, fresh()))).toBeLessThan(1e-6);
  });
});
