/**
 * Golden tests of config variants (fixtures/hf-tiny-moe-variants): a tiny fixture with a few config keys overridden
 * (norm_topk_prob, sliding windows, group routing, tied embeddings, clip_qkv, ERNIE's min-norm, gpt-oss's SwiGLU
 * limit), its logits against what the reference implementation computed for the same overrides
 * (scripts/make_variant_refs.py on the device machine). The shared fixtures leave these options at one value each.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { MoeModel } from '../src/models/model.js';
import { TrainableModel } from '../src/train/model.js';
import { configVariantDir, maxAbsDiff } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const VAR = path.resolve(__dirname, '../fixtures/hf-tiny-moe-variants');
const VARIANTS: Record<string, { base: string; overrides: Record<string, unknown> }> = JSON.parse(readFileSync(path.join(VAR, 'variants.json'), 'utf8'));

const variantDir = (name: string) => configVariantDir(path.join(FIX, VARIANTS[name].base), VARIANTS[name].overrides);

describe.each(['native', 'reference'])('config variants, %s kernels: logits within 1e-4 of the reference', (kernels) => {
  const saved = process.env.MOEKIT_KERNELS;
  beforeAll(() => { process.env.MOEKIT_KERNELS = kernels; });
  afterAll(() => { if (saved === undefined) delete process.env.MOEKIT_KERNELS; else process.env.MOEKIT_KERNELS = saved; });
  const refs = SafetensorsFile.open(path.join(VAR, 'variants.safetensors'));
  for (const name of Object.keys(VARIANTS)) {
    it(`${name} ${JSON.stringify(VARIANTS[name].overrides)}`, () => {
      const ids = SafetensorsFile.open(path.join(FIX, VARIANTS[name].base, 'reference.safetensors'));
      const input = ids.readI32('input_ids');
      const [B, T] = ids.info('input_ids').shape;
      const model = MoeModel.load(variantDir(name));
      const logits = model.forward(input, B, T);
      const want = refs.readF32(`${name}.logits`);
      expect(logits.length).toBe(want.length);
      const d = maxAbsDiff(logits, want);
      if (kernels === 'native') console.log(`${name}: logits max |Δ| ${d.toExponential(2)}`);
      expect(d).toBeLessThanOrEqual(1e-4);
    });
  }
});

/** mean next-token cross-entropy of logits [B, T, V] over positions 0..T-2 (as the trainer's loss) */
function crossEntropy(logits: Float32Array, ids: Int32Array, B: number, T: number, V: number): number {
  let sum = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) {
      const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, row[v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(row[v] - m);
      sum += Math.log(z) + m - row[ids[b * T + t + 1]];
    }
  }
  return sum / (B * (T - 1));
}

describe('config variants through the trainer: its loss is the cross-entropy of the reference logits', () => {
  const refs = SafetensorsFile.open(path.join(VAR, 'variants.safetensors'));
  for (const name of Object.keys(VARIANTS)) {
    it(name, () => {
      const ids = SafetensorsFile.open(path.join(FIX, VARIANTS[name].base, 'reference.safetensors'));
      const input = ids.readI32('input_ids');
      const [B, T] = ids.info('input_ids').shape;
      const tm = TrainableModel.load(variantDir(name));
      const want = crossEntropy(refs.readF32(`${name}.logits`), input, B, T, tm.model.desc.vocab);
      expect(Math.abs(tm.loss(input, B, T) - want)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('config variants: prefill + one-token steps through the KV cache give the full forward\'s logits', () => {
  for (const name of Object.keys(VARIANTS)) {
    it(name, () => {
      const m = MoeModel.load(variantDir(name));
      const V = m.desc.vocab, T = 14, B = 2, P = 5; // past the variants' sliding windows (3, 6, 8)
      const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % V);
      const full = m.forward(ids, B, T); // [B, T, V]
      const cache = m.newCache(B, 4); // small capacity: exercises growth
      const pre = new Int32Array(B * P);
      for (let b = 0; b < B; b++) pre.set(ids.subarray(b * T, b * T + P), b * P);
      m.forward(pre, B, P, { cache });
      for (let t = P; t < T; t++) {
        const lg = m.forward(Int32Array.from({ length: B }, (_, b) => ids[b * T + t]), B, 1, { cache }); // [B, 1, V]
        for (let b = 0; b < B; b++) {
          expect(maxAbsDiff(lg.subarray(b * V, (b + 1) * V), full.subarray((b * T + t) * V, (b * T + t + 1) * V)), `t=${t} b=${b}`).toBeLessThan(1e-5);
        }
      }
    });
  }
});
