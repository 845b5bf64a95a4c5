/**
 * Intra-document attention masking on packed training rows (data.doc_mask): the packer's document starts, and the
 * masked forward and backward held to the independent reference of each document run on its own — the logits of a
 * packed row equal those of its examples alone, and the gradient of the packed loss equals the count-weighted sum of
 * the examples' own gradients. Without the mask the packed row's later examples see the earlier ones (the test that
 * shows the mask is what makes them equal).
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TextTokenizer } from '../src/io/tokenizer.js';
import { Tape } from '../src/models/pass.js';
import { Grads } from '../src/tensor/grads.js';
import { listSource, Packer, type Batch } from '../src/train/data.js';
import { crossEntropyForward } from '../src/train/loss.js';
import { microStep, type MicroSpec } from '../src/train/micro.js';
import { TrainableModel } from '../src/train/model.js';
import { resolveConfig } from '../src/train/config.js';
import { rng } from './helpers.js';

const FIX = (a: string) => path.resolve(__dirname, '../fixtures/hf-tiny-moe', a);
const SP = { bos: null, eos: 2, pad: 0 };
const noTokenizer = null as unknown as TextTokenizer; // pre-tokenized examples never reach it

describe('Packer document starts', () => {
  it('marks where each packed example starts, the padding as one more, a split tail as a row of its own', () => {
    const ex = (n: number, base: number) => ({ tokens: { ids: Array.from({ length: n }, (_, i) => base + i), mask: Array(n).fill(1) } });
    // rows of 8: [3][4] + 1 pad | [6] and the first 2 of the 10 (longer than a row: split where it comes) |
    // the 10's other 8 | [2][3] + 3 pad (the 4 would fit a row, so it waits for the next one)
    const src = { at: (i: number) => [ex(3, 10), ex(4, 20), ex(6, 30), ex(10, 40), ex(2, 60)][i % 5] };
    const p = new Packer(src, noTokenizer, 8, SP, true);
    const b = p.batch(4);
    expect(Array.from(b.ids.subarray(0, 8))).toEqual([10, 11, 12, 20, 21, 22, 23, 0]);
    expect(Array.from(b.docStart!.subarray(0, 8))).toEqual([0, 0, 0, 3, 3, 3, 3, 7]);
    expect(Array.from(b.ids.subarray(8, 16))).toEqual([30, 31, 32, 33, 34, 35, 40, 41]);
    expect(Array.from(b.docStart!.subarray(8, 16))).toEqual([0, 0, 0, 0, 0, 0, 6, 6]);
    expect(Array.from(b.ids.subarray(16, 24))).toEqual([42, 43, 44, 45, 46, 47, 48, 49]);
    expect(Array.from(b.docStart!.subarray(16, 24))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(b.ids.subarray(24, 32))).toEqual([60, 61, 10, 11, 12, 0, 0, 0]);
    expect(Array.from(b.docStart!.subarray(24, 32))).toEqual([0, 0, 2, 2, 2, 5, 5, 5]);
    // without the mask the same rows carry no document starts: attention spans the whole packed row
    const plain = new Packer(src, noTokenizer, 8, SP).batch(4);
    expect(plain.docStart).toBeUndefined();
    expect(Array.from(plain.ids)).toEqual(Array.from(b.ids));
  });

  it('is a config field: data.doc_mask, a boolean, false by default', () => {
    const base = { model: { config: {} }, out: '/tmp/x' };
    expect(resolveConfig(base, '/tmp').data.doc_mask).toBe(false);
    expect(resolveConfig({ ...base, data: { doc_mask: true } }, '/tmp').data.doc_mask).toBe(true);
    expect(() => resolveConfig({ ...base, data: { doc_mask: 'yes' } }, '/tmp')).toThrow(/data\.doc_mask/);
  });
});

/** three documents of lengths 3, 4 and 2 packed into one row of 9, and their document starts */
function packed(V: number, seed: number) {
  const r = rng(seed), lens = [3, 4, 2], T = 9;
  const ids = Int32Array.from({ length: T }, () => 3 + Math.floor(r() * (V - 3)));
  const docStart = new Int32Array(T);
  let s = 0;
  for (const n of lens) { docStart.fill(s, s, s + n); s += n; }
  const docs = lens.map((n, i) => { const a = lens.slice(0, i).reduce((x, y) => x + y, 0); return { a, n }; });
  return { ids, docStart, docs, T };
}

// architectures whose attention depends on relative positions only (RoPE, sliding windows, sinks, MLA, q/k norms)
const ARCHS = ['qwen3_moe', 'mixtral', 'olmoe', 'deepseek_v3', 'gpt_oss'];

describe('doc-masked forward = each document alone', () => {
  for (const arch of ARCHS) {
    it(arch, () => {
      const tm = TrainableModel.load(FIX(arch));
      const model = tm.model, V = model.desc.vocab;
      const { ids, docStart, docs, T } = packed(V, 7);
      // training forwards (a tape): MLA's expanded path, the one the trainer runs
      const masked = model.forward(ids, 1, T, { docStart, tape: new Tape() });
      const whole = model.forward(ids, 1, T, { tape: new Tape() });
      let worst = 0, scale = 0, leak = 0;
      for (const { a, n } of docs) {
        const alone = model.forward(ids.slice(a, a + n), 1, n, { tape: new Tape() });
        for (let i = 0; i < n * V; i++) {
          worst = Math.max(worst, Math.abs(masked[a * V + i] - alone[i]));
          scale = Math.max(scale, Math.abs(alone[i]));
          if (a > 0) leak = Math.max(leak, Math.abs(whole[a * V + i] - alone[i]));
        }
      }
      expect(worst).toBeLessThan(1e-5 * Math.max(1, scale));
      expect(leak).toBeGreaterThan(1e-3 * scale); // without the mask the later documents see the earlier ones
    });
  }
});

describe('doc-masked gradient = count-weighted sum of the documents alone', () => {
  for (const arch of ['qwen3_moe', 'deepseek_v3']) {
    it(arch, () => {
      const tm = TrainableModel.load(FIX(arch));
      const model = tm.model, V = model.desc.vocab;
      const { ids, docStart, docs, T } = packed(V, 11);
      // next-token targets inside each document only (the last token of a document predicts nothing)
      const targets = new Int32Array(T).fill(-1);
      for (const { a, n } of docs) for (let t = a; t < a + n - 1; t++) targets[t] = ids[t + 1];
      const count = targets.filter((t) => t >= 0).length;
      const spec = (scale: number): MicroSpec => ({ scale, balance: { switch: 0, seq: 0, global: 0, zloss: 0 }, subs: [], distill: 0, globalCounts: null, globalTokens: T, mtp: null });
      const gPacked = new Grads(tm.params.values());
      const batch: Batch = { ids, targets, B: 1, T, count, docStart };
      const out = microStep(model, batch, spec(1), gPacked);
      const gDocs = new Grads(tm.params.values());
      let lossDocs = 0;
      for (const { a, n } of docs) {
        const t = targets.slice(a, a + n), c = t.filter((x) => x >= 0).length;
        const ib = ids.slice(a, a + n);
        microStep(model, { ids: ib, targets: t, B: 1, T: n, count: c }, spec(c / count), gDocs);
        lossDocs += crossEntropyForward(model.forward(ib, 1, n), t, n, V).loss * (c / count);
      }
      expect(out.loss).toBeCloseTo(lossDocs, 5);
      let worst = 0, scale = 0, n = 0;
      for (const p of tm.params.values()) {
        const a = gPacked.get(p), b = gDocs.get(p);
        if (!a && !b) continue;
        const x = a ?? new Float32Array(p.length), y = b ?? new Float32Array(p.length);
        for (let i = 0; i < x.length; i++) { worst = Math.max(worst, Math.abs(x[i] - y[i])); scale = Math.max(scale, Math.abs(y[i])); }
        n++;
      }
      expect(n).toBeGreaterThan(5);
      expect(scale).toBeGreaterThan(0);
      expect(worst).toBeLessThan(1e-4 * scale);
    });
  }
});

describe('doc mask refusals', () => {
  it('a model with Mamba-2 layers refuses it, naming data.doc_mask', () => {
    const tm = TrainableModel.load(FIX('granitemoehybrid'));
    const V = tm.model.desc.vocab, T = 6;
    const ids = Int32Array.from({ length: T }, (_, i) => 3 + (i % (V - 3)));
    expect(() => tm.model.forward(ids, 1, T, { docStart: new Int32Array([0, 0, 0, 3, 3, 3]), tape: new Tape() })).toThrow(/data\.doc_mask/);
  });

  it('document starts of the wrong length are refused, naming B·T', () => {
    const tm = TrainableModel.load(FIX('qwen3_moe'));
    const ids = Int32Array.from({ length: 6 }, (_, i) => 3 + i);
    expect(() => tm.model.forward(ids, 1, 6, { docStart: new Int32Array(5), tape: new Tape() })).toThrow(/expected 6 \(B·T\)/);
  });
});
