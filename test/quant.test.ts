/**
 * Quantised checkpoints as they are published: gpt-oss experts in MXFP4 (`*_blocks`/`*_scales`)
 * and DeepSeek-style FP8 with 2-D block scales (`weight_scale_inv`). Each is checked against an
 * f32 checkpoint holding the same values dequantised by the naive code in quant-checkpoints.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectModel } from '../src/models/inspect.js';
import { MoeModel } from '../src/models/model.js';
import { f8e4m3BitsToF32, f8e5m2BitsToF32 } from '../src/io/dtypes.js';
import { dequantFp8Blocks, dequantMxfp4 } from '../src/io/quant.js';
import { maxAbsDiff, rng } from './helpers.js';
import { writeDeepseekFp8, writeGptOssMxfp4 } from './quant-checkpoints.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-quant-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const IDS = Int32Array.from([5, 17, 300, 2, 99, 411, 8, 64, 128, 7]);

describe('gpt-oss experts in MXFP4', () => {
  it('load, inspect and run as the same weights dequantised into an f32 checkpoint', () => {
    const src = path.join(ROOT, 'gpt_oss');
    const dirs = writeGptOssMxfp4(src, path.join(tmp, 'gpt_oss'));
    const a = MoeModel.load(dirs.mxfp4).forward(IDS, 1, IDS.length);
    const b = MoeModel.load(dirs.f32).forward(IDS, 1, IDS.length);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-6);
    const orig = MoeModel.load(src).forward(IDS, 1, IDS.length);
    expect(maxAbsDiff(a, orig)).toBeGreaterThan(0); // it really is quantised
    expect(inspectModel(dirs.mxfp4).parameters.total).toBe(inspectModel(src).parameters.total);
  });
});

describe('FP8 with block scales (DeepSeek-V3 layout)', () => {
  it('loads as the same weights dequantised into an f32 checkpoint', () => {
    const src = path.join(ROOT, 'deepseek_v3');
    const dirs = writeDeepseekFp8(src, path.join(tmp, 'deepseek_v3'), 16, 16);
    const a = MoeModel.load(dirs.fp8).forward(IDS, 1, IDS.length);
    const b = MoeModel.load(dirs.f32).forward(IDS, 1, IDS.length);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
    expect(inspectModel(dirs.fp8).parameters.total).toBe(inspectModel(src).parameters.total);
  });

  it.each([[16, 8], [8, 32], [12, 20]])('rectangular and ragged blocks [%s, %s]: the same weights as the f32 dequantisation', (b0, b1) => {
    const src = path.join(ROOT, 'deepseek_v3');
    const dirs = writeDeepseekFp8(src, path.join(tmp, `deepseek_v3_${b0}x${b1}`), b0, b1);
    const a = MoeModel.load(dirs.fp8).forward(IDS, 1, IDS.length);
    const b = MoeModel.load(dirs.f32).forward(IDS, 1, IDS.length);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
  });
});

describe('dequantFp8Blocks against a naive loop', () => {
  /** W[i, j] = fp8(W[i, j]) · s[⌊i/b0⌋, ⌊j/b1⌋], rows r0.. of the full tensor */
  const naive = (bytes: Uint8Array, e5m2: boolean, R: number, C: number, s: Float32Array, b0: number, b1: number, r0: number) => {
    const y = new Float32Array(R * C);
    for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) {
      const v = e5m2 ? f8e5m2BitsToF32(bytes[i * C + j]) : f8e4m3BitsToF32(bytes[i * C + j]);
      y[i * C + j] = v * s[(Math.floor((r0 + i) / b0) - Math.floor(r0 / b0)) * Math.ceil(C / b1) + Math.floor(j / b1)];
    }
    return y;
  };
  it.each([[7, 10, 2, 3], [9, 5, 4, 1], [6, 13, 1, 5], [10, 10, 3, 3]])('[%s, %s] in blocks [%s, %s], whole and by row ranges', (R, C, b0, b1) => {
    const r = rng(R * 100 + C);
    const bytes = Uint8Array.from({ length: R * C }, () => Math.floor(r() * 256) & 0x7e); // finite codes
    const s = Float32Array.from({ length: Math.ceil(R / b0) * Math.ceil(C / b1) }, (_, k) => 1 + k + r());
    for (const e5m2 of [false, true]) {
      expect(Array.from(dequantFp8Blocks(bytes, e5m2, R, C, s, b0, b1))).toEqual(Array.from(naive(bytes, e5m2, R, C, s, b0, b1, 0)));
      // rows r0..r1 of the tensor, with the scales from block row ⌊r0/b0⌋ on
      for (const [r0, r1] of [[1, 4], [b0, R], [R - 1, R]]) {
        const sub = bytes.subarray(r0 * C, r1 * C), ss = s.subarray(Math.floor(r0 / b0) * Math.ceil(C / b1));
        const want = naive(bytes, e5m2, R, C, s, b0, b1, 0).subarray(r0 * C, r1 * C);
        expect(Array.from(dequantFp8Blocks(sub, e5m2, r1 - r0, C, ss, b0, b1, r0)), `rows ${r0}..${r1}`).toEqual(Array.from(want));
      }
    }
  });
});

describe('dequantMxfp4 against a naive loop', () => {
  it('two rows of three groups: e2m1 nibbles, low nibble first, times 2^(scale − 127)', () => {
    const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];
    const rows = 2, G = 3, r = rng(5);
    const blocks = Uint8Array.from({ length: rows * G * 16 }, () => Math.floor(r() * 256));
    const scales = Uint8Array.from({ length: rows * G }, (_, k) => 120 + 3 * k);
    const y = dequantMxfp4(blocks, scales, rows, G);
    expect(y.length).toBe(rows * G * 32);
    for (let row = 0; row < rows; row++) for (let g = 0; g < G; g++) for (let k = 0; k < 32; k++) {
      const byte = blocks[(row * G + g) * 16 + (k >> 1)];
      const nib = k % 2 === 0 ? byte % 16 : Math.floor(byte / 16);
      expect(y[row * G * 32 + g * 32 + k]).toBe(FP4[nib] * 2 ** (scales[row * G + g] - 127));
    }
  });
});
