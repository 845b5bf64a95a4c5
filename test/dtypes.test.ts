/**
 * The dtype conversions (src/io/dtypes.ts) against arithmetic references computed here from the formats' definitions
 * (sign · (1 + m / 2^M) · 2^(e − bias), subnormals m / 2^M · 2^(1 − bias)), exhaustively over every bit pattern of
 * F16, F8_E4M3 and F8_E5M2, and f32 → f16 rounding (nearest, ties to even) over random values and every tie.
 */
import { describe, expect, it } from 'vitest';
import {
  byteLengthOf, bytesToF32, bytesToI32, dtypeBytes, f16BitsToF32, f16ToF32Array, f32ToF16Array, f32ToF16Bits,
  f8e4m3BitsToF32, f8e5m2BitsToF32, f8ToF32Array, isDtype, isFloatDtype, isIntegerDtype, numElements,
} from '../src/io/dtypes.js';
import { rng } from './helpers.js';

/** a float of a format with M mantissa bits, E exponent bits; `ieee`: the top exponent is inf/NaN */
function decode(bits: number, E: number, M: number, ieee: boolean): number {
  const bias = 2 ** (E - 1) - 1;
  const s = bits >> (E + M) & 1 ? -1 : 1;
  const e = (bits >> M) & (2 ** E - 1), m = bits & (2 ** M - 1);
  if (ieee && e === 2 ** E - 1) return m ? NaN : s * Infinity;
  if (e === 0) return s * (m / 2 ** M) * 2 ** (1 - bias);
  return s * (1 + m / 2 ** M) * 2 ** (e - bias);
}

/** x rounded to binary16 (nearest, ties to even), arithmetically */
function f16Round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp;
  let r = Math.floor(q);
  const f = q - r;
  if (f > 0.5 || (f === 0.5 && r % 2 === 1)) r++;
  const v = r * ulp;
  return Math.sign(x) * (v > 65504 ? Infinity : v);
}

describe('decoding every bit pattern', () => {
  it('F16: all 65,536, scalar and array forms', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const arr = f16ToF32Array(all);
    let nans = 0;
    for (let h = 0; h < 65536; h++) {
      const want = decode(h, 5, 10, true);
      if (Number.isNaN(want)) { nans++; expect(Number.isNaN(f16BitsToF32(h)) && Number.isNaN(arr[h]), `${h}`).toBe(true); continue; }
      if (!Object.is(f16BitsToF32(h), want)) expect(f16BitsToF32(h), `0x${h.toString(16)}`).toBe(want);
      if (!Object.is(arr[h], want)) expect(arr[h], `array 0x${h.toString(16)}`).toBe(want);
    }
    expect(nans).toBe(2 * 1023);
    expect(() => f16ToF32Array(all, new Float32Array(3))).toThrow(/output has 3 elements, need 65536/);
  });
  it('F8_E4M3 (no infinities; only S.1111.111 is NaN) and F8_E5M2 (IEEE-like): all 256', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const a4 = f8ToF32Array('F8_E4M3', all), a5 = f8ToF32Array('F8_E5M2', all);
    for (let v = 0; v < 256; v++) {
      const w4 = (v & 0x7f) === 0x7f ? NaN : decode(v, 4, 3, false);
      const w5 = decode(v, 5, 2, true);
      for (const [got, want, what] of [[f8e4m3BitsToF32(v), w4, 'e4m3'], [a4[v], w4, 'e4m3[]'], [f8e5m2BitsToF32(v), w5, 'e5m2'], [a5[v], w5, 'e5m2[]']] as const) {
        if (!Object.is(got, want)) expect(got, `${what} 0x${v.toString(16)}`).toBe(want);
      }
    }
    expect(f8e4m3BitsToF32(0x7e)).toBe(448); // the largest E4M3
    expect(f8e5m2BitsToF32(0x7b)).toBe(57344); // the largest E5M2
  });
});

describe('f32 → f16', () => {
  it('random values over the f16 range and past it, every tie of a sample of exponents, subnormals', () => {
    const r = rng(8);
    const xs: number[] = [];
    for (let i = 0; i < 20000; i++) xs.push(Math.fround((r() * 2 - 1) * 2 ** (Math.floor(r() * 44) - 28)));
    // exact ties: halfway between two f16 neighbours
    for (const e of [-24, -20, -15, -14, -10, 0, 5, 15]) {
      const ulp = 2 ** (Math.max(e, -14) - 10);
      for (const k of [0, 1, 2, 3, 1000, 1023]) xs.push(Math.fround((2 ** e) + (k + 0.5) * ulp), -Math.fround((2 ** e) + (k + 0.5) * ulp));
    }
    xs.push(65504, 65519, 65520, 1e6, -1e6, 2 ** -25, 2 ** -25 * 1.0001, 2 ** -26, 0, -0);
    const src = Float32Array.from(xs);
    const arr = f32ToF16Array(src);
    for (let i = 0; i < src.length; i++) {
      const want = f16Round(src[i]);
      const a = decode(f32ToF16Bits(src[i]), 5, 10, true), b = decode(arr[i], 5, 10, true);
      if (!Object.is(a, want)) expect(a, `${src[i]}`).toBe(want);
      if (!Object.is(b, want)) expect(b, `array ${src[i]}`).toBe(want);
    }
    expect(f16BitsToF32(f32ToF16Bits(65519))).toBe(65504);
    expect(f16BitsToF32(f32ToF16Bits(65520))).toBe(Infinity);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    expect(() => f32ToF16Array(src, new Uint16Array(1))).toThrow(/output has 1 elements/);
  });
});

describe('dtype facts and byte conversions', () => {
  it('names, kinds, sizes', () => {
    for (const d of ['F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2', 'I32', 'I64', 'U8'] as const) expect(isDtype(d)).toBe(true);
    for (const d of ['f32', 'F64X', '', 3, null]) expect(isDtype(d)).toBe(false);
    expect(isFloatDtype('BF16')).toBe(true);
    expect(isFloatDtype('I32')).toBe(false);
    expect(isIntegerDtype('U8')).toBe(true);
    expect(isIntegerDtype('F16')).toBe(false);
    expect([dtypeBytes('F32'), dtypeBytes('BF16'), dtypeBytes('F8_E4M3'), dtypeBytes('I64')]).toEqual([4, 2, 1, 8]);
    expect(numElements([2, 3, 4])).toBe(24);
    expect(numElements([])).toBe(1);
    expect(numElements([5, 0])).toBe(0);
    expect(byteLengthOf('BF16', [3, 5])).toBe(30);
  });
  it('bytes → f32 / i32 for each float and integer dtype', () => {
    const f = Float32Array.from([1.5, -2, 3.25]);
    expect(Array.from(bytesToF32('F32', new Uint8Array(f.buffer)))).toEqual([1.5, -2, 3.25]);
    expect(Array.from(bytesToF32('F16', new Uint8Array(f32ToF16Array(f).buffer)))).toEqual([1.5, -2, 3.25]);
    expect(Array.from(bytesToF32('F8_E4M3', Uint8Array.from([0x38, 0xc0])))).toEqual([1, -2]);
    const i = Int32Array.from([7, -3]);
    expect(Array.from(bytesToI32('I32', new Uint8Array(i.buffer)))).toEqual([7, -3]);
    expect(Array.from(bytesToI32('U8', Uint8Array.from([250, 3])))).toEqual([250, 3]);
    expect(Array.from(bytesToI32('I64', new Uint8Array(BigInt64Array.from([5n, -9n]).buffer)))).toEqual([5, -9]);
    // misaligned bytes are copied, not misread
    const buf = new Uint8Array(13);
    buf.set(new Uint8Array(f.buffer), 1);
    expect(Array.from(bytesToF32('F32', buf.subarray(1)))).toEqual([1.5, -2, 3.25]);
  });
});
