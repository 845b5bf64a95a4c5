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
import { maxAbsDiff } from './helpers.js';
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
});
