/**
 * BF16 checkpoints: with dtype 'auto' the weight matrices stay bf16 in memory and the forward pass
 * gives the logits of the same checkpoint upcast to f32 at load.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { f32ToBf16Array, f32ToBf16Bits } from '../src/io/dtypes.js';
import { writeSafetensors } from '../src/io/safetensors-write.js';
import { MoeModel } from '../src/models/model.js';
import type { Linear } from '../src/tensor/linear.js';
import { bf16Round, bf16Value, maxAbsDiff, rng } from './helpers.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-bf16-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function toBf16(arch: string): string {
  const src = path.join(ROOT, arch), dir = path.join(tmp, arch);
  if (fs.existsSync(dir)) return dir;
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(src, 'config.json'), path.join(dir, 'config.json'));
  const ck = Checkpoint.open(src);
  writeSafetensors(path.join(dir, 'model.safetensors'), ck.names().map((n) => ({
    name: n, dtype: 'BF16' as const, shape: ck.info(n).shape, data: () => f32ToBf16Array(ck.readF32(n)),
  })));
  ck.close();
  return dir;
}

describe.each(['mixtral', 'granitemoe', 'deepseek_v3', 'qwen2_moe'])('%s in BF16', (arch) => {
  const dir = toBf16(arch);
  it('keeps matrices as bf16 and matches the f32 upcast', () => {
    const a = MoeModel.load(dir); // auto
    const b = MoeModel.load(dir, { dtype: 'f32' });
    expect(a.weights.lmHead.w.dtype).toBe("bf16");
    expect(a.weights.embed.dtype).toBe("bf16");
    expect(b.weights.lmHead.w.dtype).toBe("f32");
    const ids = Int32Array.from([1, 7, 300, 45, 45, 9, 511, 2]);
    for (const [B, T] of [[1, 8], [2, 4]]) {
      const la = a.forward(ids, B, T), lb = b.forward(ids, B, T);
      let m = 0;
      for (let i = 0; i < la.length; i++) m = Math.max(m, Math.abs(la[i] - lb[i]));
      expect(m).toBeLessThan(1e-5);
    }
    // decode steps (N = 1: the bf16 GEMV path) agree too
    const ga = a, gb = b;
    const ca = ga.newCache(1), cb = gb.newCache(1);
    ga.forward(ids.subarray(0, 4), 1, 4, { cache: ca }); gb.forward(ids.subarray(0, 4), 1, 4, { cache: cb });
    const sa = ga.forward(ids.subarray(4, 5), 1, 1, { cache: ca }), sb = gb.forward(ids.subarray(4, 5), 1, 1, { cache: cb });
    let m = 0;
    for (let i = 0; i < sa.length; i++) m = Math.max(m, Math.abs(sa[i] - sb[i]));
    expect(m).toBeLessThan(1e-5);
  });
});

describe.each(['mixtral', 'granitemoe', 'deepseek_v3'])('%s: training through bf16 weights', (arch) => {
  it('the backward through matrices kept bf16 gives the gradients of the same values upcast to f32', async () => {
    const { Tape } = await import('../src/models/pass.js');
    const { Grads } = await import('../src/tensor/grads.js');
    const { getKernels } = await import('../src/tensor/index.js');
    const { decoderBackward } = await import('../src/train/backward.js');
    const { crossEntropyBackward, crossEntropyForward, nextTokenTargets } = await import('../src/train/loss.js');
    const dir = toBf16(arch);
    const ids = Int32Array.from({ length: 2 * 10 }, (_, i) => (i * 37 + 5) % 512);
    const grads = (m: MoeModel) => {
      const tape = new Tape();
      const logits = m.forward(ids, 2, 10, { tape });
      const { loss, s } = crossEntropyForward(logits, nextTokenTargets(ids, 2, 10), 20, m.desc.vocab);
      const dl = new Float32Array(logits.length);
      crossEntropyBackward(dl, s);
      const g = new Grads();
      decoderBackward(getKernels(), m, tape, dl, g);
      return { loss, g };
    };
    const a = MoeModel.load(dir), b = MoeModel.load(dir, { dtype: 'f32' });
    expect(a.weights.layers[0].attn!.o!.w.dtype).toBe('bf16');
    const ga = grads(a), gb = grads(b);
    expect(Math.abs(ga.loss - gb.loss)).toBeLessThan(1e-5);
    // every matrix's gradient, pairwise (same layer positions in both models)
    const pairs: [Linear, Linear][] = [
      [a.weights.lmHead, b.weights.lmHead], [a.weights.layers[1].attn!.o!, b.weights.layers[1].attn!.o!],
      [a.weights.layers[2].moe!.router, b.weights.layers[2].moe!.router],
    ];
    for (const [x, y] of pairs) {
      const dx = ga.g.of(x.w), dy = gb.g.of(y.w);
      const scale = Math.max(...dy.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      expect(maxAbsDiff(dx, dy) / scale).toBeLessThan(1e-4);
    }
    expect(maxAbsDiff(ga.g.of(a.weights.norm), gb.g.of(b.weights.norm))).toBeLessThan(1e-5);
  });
});

describe('f32 → bf16 rounding against an arithmetic reference (round to nearest, ties to even)', () => {
  it('random values over the whole exponent range, exact ties, near-ties and subnormals', () => {
    const r = rng(17);
    const xs: number[] = [];
    const u32 = new Uint32Array(1), f32 = new Float32Array(u32.buffer);
    for (let i = 0; i < 20000; i++) {
      u32[0] = Math.floor(r() * 2 ** 32);
      if (Number.isFinite(f32[0]) && Math.abs(f32[0]) < 3.3e38) xs.push(f32[0]);
    }
    for (const hi of [0x3f80, 0x3f81, 0x4049, 0xbf80, 0xc123, 0x0001, 0x0080, 0x7f00]) {
      for (const lo of [0x7fff, 0x8000, 0x8001, 0x0000, 0xffff]) {
        u32[0] = (hi << 16) | lo;
        xs.push(f32[0]);
      }
    }
    const src = Float32Array.from(xs);
    const arr = f32ToBf16Array(src);
    let ties = 0;
    for (let i = 0; i < src.length; i++) {
      const want = bf16Round(src[i]);
      if (bf16Value(arr[i]) !== want) expect(bf16Value(arr[i]), `${src[i]}`).toBe(want);
      if (bf16Value(f32ToBf16Bits(src[i])) !== want) expect(bf16Value(f32ToBf16Bits(src[i])), `${src[i]}`).toBe(want);
      u32[0] = 0;
      f32[0] = src[i];
      if ((u32[0] & 0xffff) === 0x8000) ties++;
    }
    expect(src.length).toBeGreaterThan(19000);
    expect(ties).toBeGreaterThanOrEqual(8); // the crafted exact ties (and any random one)
    // ties go to the even neighbour: 1 + 2^-8 → 1, (1 + 2^-7) + 2^-8 → 1 + 2^-6
    expect(bf16Value(f32ToBf16Bits(1 + 2 ** -8))).toBe(1);
    expect(bf16Value(f32ToBf16Bits(1 + 2 ** -7 + 2 ** -8))).toBe(1 + 2 ** -6);
    expect(bf16Value(f32ToBf16Bits(-(1 + 2 ** -8 + 2 ** -20)))).toBe(-(1 + 2 ** -7));
  });

  it('infinities, the carry into infinity and NaN', () => {
    expect(bf16Value(f32ToBf16Bits(Infinity))).toBe(Infinity);
    expect(bf16Value(f32ToBf16Bits(-Infinity))).toBe(-Infinity);
    expect(bf16Value(f32ToBf16Bits(3.4e38))).toBe(Infinity); // rounds past the largest bf16
    expect(Number.isNaN(bf16Value(f32ToBf16Bits(NaN)))).toBe(true);
    const nanArr = f32ToBf16Array(Float32Array.from([NaN, 1]));
    expect(Number.isNaN(bf16Value(nanArr[0]))).toBe(true);
    expect(() => f32ToBf16Array(new Float32Array(3), new Uint16Array(2))).toThrow(/output has 2 elements, need 3/);
  });
});
