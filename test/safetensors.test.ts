import { describe, it, expect, vi } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { expectError, scratchDir } from './helpers.js';
import { MoekitError } from '../src/util/errors.js';
import {
  DTYPES, DTYPE_BYTES, type Dtype, byteLengthOf,
  f16BitsToF32, bf16BitsToF32, f32ToF16Bits, f32ToBf16Bits, f8e4m3BitsToF32, f8e5m2BitsToF32,
  f16ToF32Array, bf16ToF32Array, f32ToF16Array, f32ToBf16Array, f8ToF32Array, bytesToI32,
} from '../src/io/dtypes.js';
import { nativeAddon } from '../src/tensor/native.js';
import { SafetensorsFile, MAX_HEADER_BYTES } from '../src/io/safetensors.js';
import { writeSafetensors, type SafetensorsEntry } from '../src/io/safetensors-write.js';

const FIXTURE = path.resolve('fixtures/hf-tiny-moe/mixtral');

const scratch = scratchDir('moekit-st-');

let counter = 0;
/** A file of [u64 length][header][data]; `header` a value to JSON-encode, or raw bytes/text. */
function craft(header: unknown, data: number | Uint8Array = 0, lengthOverride?: bigint): string {
  const h = header instanceof Uint8Array ? Buffer.from(header)
    : typeof header === 'string' ? Buffer.from(header, 'utf8')
    : Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  const d = typeof data === 'number' ? Buffer.alloc(data, 7) : Buffer.from(data);
  const p = path.join(scratch(), `crafted-${counter++}.safetensors`);
  fs.writeFileSync(p, Buffer.concat([len, h, d]));
  return p;
}

/** open must fail with a MoekitError whose message matches `re` and whose file is the file. */
function expectOpenError(p: string, re: RegExp): MoekitError {
  return expectError(() => SafetensorsFile.open(p), re, p);
}

const t = (dtype: string, shape: unknown, offs: unknown) => ({ dtype, shape, data_offsets: offs });

describe('dtypes: conversions against hand-computed values', () => {
  it('byte sizes', () => {
    expect(DTYPES).toHaveLength(15);
    expect(DTYPE_BYTES).toMatchObject({ F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1,
      U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1 });
    expect(byteLengthOf('BF16', [3, 5])).toBe(30);
    expect(byteLengthOf('F32', [])).toBe(4);
    expect(byteLengthOf('F32', [0, 9])).toBe(0);
    expect(byteLengthOf('F64', [2 ** 30, 2 ** 30, 2 ** 10])).toBeNaN();
  });

  it('BF16 → F32', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xbf80)).toBe(-1);
    expect(bf16BitsToF32(0x4049)).toBe(3.140625);
    expect(bf16BitsToF32(0x7f80)).toBe(Infinity);
    expect(bf16BitsToF32(0xff80)).toBe(-Infinity);
    expect(bf16BitsToF32(0x7fc0)).toBeNaN();
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133); // smallest subnormal
    expect(Object.is(bf16BitsToF32(0x8000), -0)).toBe(true);
  });

  it('F16 → F32 incl. subnormals, inf, NaN, -0', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    expect(f16BitsToF32(0x3555)).toBe(0.333251953125);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f16BitsToF32(0x7c01)).toBeNaN(); // signalling NaN stays NaN, not inf
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
  });

  it('F32 → F16 rounds to nearest even, saturates to inf, keeps NaN', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // halfway to 2^16: even is inf
    expect(f32ToF16Bits(1e9)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even (down)
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal → 0
    expect(f32ToF16Bits(2 ** -25 * 1.5)).toBe(0x0001);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie → even
    expect(f32ToF16Bits(1023.5 * 2 ** -24)).toBe(0x0400); // rounds up into the normals
    expect(f32ToF16Bits(1e-10)).toBe(0x0000);
    expect(f32ToF16Bits(-1e-10)).toBe(0x8000);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    for (const nanBits of [0x7fc00000, 0x7f800001, 0xffc00000, 0x7f802000]) {
      const f = new Float32Array(new Uint32Array([nanBits]).buffer)[0]!;
      const h = f32ToF16Bits(f);
      expect(h & 0x7c00).toBe(0x7c00);
      expect(h & 0x03ff).not.toBe(0); // NaN, not inf
    }
  });

  it('F32 → BF16 rounds to nearest even, keeps NaN', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16Bits(3.4028234663852886e38)).toBe(0x7f80); // f32 max rounds to inf
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    for (const nanBits of [0x7fc00000, 0x7f800001, 0xff800001]) {
      const f = new Float32Array(new Uint32Array([nanBits]).buffer)[0]!;
      const h = f32ToBf16Bits(f);
      expect(h & 0x7f80).toBe(0x7f80);
      expect(h & 0x007f).not.toBe(0);
    }
  });

  it('every F16 and BF16 pattern survives to F32 and back, arrays agree with scalars', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f16 = f16ToF32Array(all);
    const bf16 = bf16ToF32Array(all);
    const back16 = f32ToF16Array(f16);
    const backBf = f32ToBf16Array(bf16);
    for (let h = 0; h < 65536; h++) {
      const isNan16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      const isNanBf = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      if (isNan16) expect(Number.isNaN(f16[h])).toBe(true);
      else {
        expect(Object.is(f16[h], f16BitsToF32(h))).toBe(true);
        if (back16[h] !== h) throw new Error(`f16 ${h.toString(16)} → ${back16[h]!.toString(16)}`);
      }
      if (!isNanBf && backBf[h] !== h) throw new Error(`bf16 ${h.toString(16)} → ${backBf[h]!.toString(16)}`);
    }
  });

  it('F32 → F16 picks the nearest F16 (random property check)', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 20000; i++) {
      const x = Math.fround((rnd() * 2 - 1) * 2 ** (Math.floor(rnd() * 40) - 25));
      const h = f32ToF16Bits(x);
      const v = f16BitsToF32(h);
      const err = Math.abs(x - v);
      for (const nb of [h - 1, h + 1]) {
        if ((nb & 0x7fff) >= 0x7c00 || nb < 0 || (nb & 0x8000) !== (h & 0x8000)) continue;
        expect(err).toBeLessThanOrEqual(Math.abs(x - f16BitsToF32(nb)));
      }
    }
  });

  it('F8 E4M3FN and E5M2 → F32', () => {
    expect(f8e4m3BitsToF32(0x38)).toBe(1);
    expect(f8e4m3BitsToF32(0xb8)).toBe(-1);
    expect(f8e4m3BitsToF32(0x7e)).toBe(448);
    expect(f8e4m3BitsToF32(0x7f)).toBeNaN();
    expect(f8e4m3BitsToF32(0xff)).toBeNaN();
    expect(f8e4m3BitsToF32(0x78)).toBe(256); // no infinities in E4M3FN
    expect(f8e4m3BitsToF32(0x01)).toBe(2 ** -9);
    expect(f8e4m3BitsToF32(0x08)).toBe(2 ** -6);
    expect(f8e5m2BitsToF32(0x3c)).toBe(1);
    expect(f8e5m2BitsToF32(0x7b)).toBe(57344);
    expect(f8e5m2BitsToF32(0x7c)).toBe(Infinity);
    expect(f8e5m2BitsToF32(0x7d)).toBeNaN();
    expect(f8e5m2BitsToF32(0x01)).toBe(2 ** -16);
    const all = new Uint8Array(256).map((_, i) => i);
    const a = f8ToF32Array('F8_E4M3', all);
    const b = f8ToF32Array('F8_E5M2', all);
    for (let i = 0; i < 256; i++) {
      expect(Object.is(a[i], Math.fround(f8e4m3BitsToF32(i)))).toBe(true);
      expect(Object.is(b[i], f8e5m2BitsToF32(i))).toBe(true);
    }
  });

  it('integers → Int32Array, overflow and floats refused', () => {
    const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    expect([...bytesToI32('I64', bytes(new BigInt64Array([-5n, 2147483647n, -2147483648n])))]).toEqual([-5, 2147483647, -2147483648]);
    expect([...bytesToI32('U8', new Uint8Array([0, 255]))]).toEqual([0, 255]);
    expect([...bytesToI32('I8', new Uint8Array([0xff, 0x7f]))]).toEqual([-1, 127]);
    expect([...bytesToI32('U16', bytes(new Uint16Array([65535])))]).toEqual([65535]);
    expect([...bytesToI32('BOOL', new Uint8Array([0, 1, 2]))]).toEqual([0, 1, 1]);
    expect(() => bytesToI32('I64', bytes(new BigInt64Array([2n ** 31n])), 'x')).toThrow(/x: I64 value 2147483648 at index 0 does not fit in int32/);
    expect(() => bytesToI32('I64', bytes(new BigInt64Array([-(2n ** 31n) - 1n])))).toThrow(/does not fit/);
    expect(() => bytesToI32('U64', bytes(new BigUint64Array([1n, 2n ** 63n])))).toThrow(/at index 1/);
    expect(() => bytesToI32('U32', bytes(new Uint32Array([2 ** 31])))).toThrow(/2147483648/);
    expect(() => bytesToI32('F32', new Uint8Array(4))).toThrow(MoekitError);
    // unaligned input is copied, not misread
    const buf = new Uint8Array(9);
    new DataView(buf.buffer).setInt32(1, -7, true);
    new DataView(buf.buffer).setInt32(5, 9, true);
    expect([...bytesToI32('I32', buf.subarray(1))]).toEqual([-7, 9]);
  });
});

describe('SafetensorsFile: the real fixtures', () => {
  it('reads model.safetensors', () => {
    const f = SafetensorsFile.open(path.join(FIXTURE, 'model.safetensors'));
    try {
      expect(f.metadata).toEqual({ format: 'pt' });
      expect(f.headerLength).toBe(11024);
      const names = f.names();
      expect(names).toContain('lm_head.weight');
      expect(names).toContain('model.layers.0.block_sparse_moe.experts.7.w2.weight');
      expect(names[0]).toBe('lm_head.weight'); // file order
      const info = f.info('lm_head.weight');
      expect(info).toEqual({ name: 'lm_head.weight', dtype: 'F32', shape: [512, 64], byteOffset: 8 + 11024, byteLength: 131072 });
      expect(f.info('model.layers.0.block_sparse_moe.experts.0.w2.weight').shape).toEqual([64, 96]);
      // values agree with a direct read of the file
      const whole = fs.readFileSync(f.path);
      const w1 = f.info('model.layers.0.block_sparse_moe.experts.0.w1.weight');
      const got = f.readF32(w1.name);
      expect(got.length).toBe(96 * 64);
      for (const i of [0, 1, 777, 96 * 64 - 1]) expect(got[i]).toBe(whole.readFloatLE(w1.byteOffset + 4 * i));
      expect(f.readRaw(w1.name).equals(whole.subarray(w1.byteOffset, w1.byteOffset + w1.byteLength))).toBe(true);
    } finally {
      f.close();
    }
  });

  it('reads reference.safetensors', () => {
    const f = SafetensorsFile.open(path.join(FIXTURE, 'reference.safetensors'));
    try {
      expect(f.info('input_ids')).toMatchObject({ dtype: 'I32', shape: [2, 24] });
      expect(f.info('generated_ids')).toMatchObject({ dtype: 'I32', shape: [1, 20] });
      expect(f.info('logits')).toMatchObject({ dtype: 'F32', shape: [2, 24, 512] });
      expect(f.info('router_logits.0')).toMatchObject({ dtype: 'F32', shape: [48, 8] });
      const ids = f.readI32('input_ids');
      expect(ids.length).toBe(48);
      expect(ids.every((v) => v >= 0 && v < 512)).toBe(true);
      const gen = f.readI32('generated_ids');
      expect([...gen.subarray(0, 8)]).toEqual([...ids.subarray(0, 8)]); // prompt = first 8 ids of seq 0
      expect(f.readF32('logits').every(Number.isFinite)).toBe(true);
      expectError(() => f.readF32('input_ids'), /tensor 'input_ids'.*integer type/, f.path);
      expectError(() => f.readI32('logits'), /tensor 'logits'.*float type/, f.path);
      expectError(() => f.info('nope.weight'), /no tensor named 'nope.weight'/, f.path);
      expectError(() => f.readRaw('nope.weight'), /'nope.weight'/, f.path);
    } finally {
      f.close();
    }
  });
});

describe('SafetensorsFile: strict header validation', () => {
  it('file shorter than 8 bytes', () => {
    const p = path.join(scratch(), 'short.safetensors');
    fs.writeFileSync(p, Buffer.from([1, 2, 3]));
    expectOpenError(p, /too short.*3 bytes/);
    const e = path.join(scratch(), 'empty.safetensors');
    fs.writeFileSync(e, '');
    expectOpenError(e, /too short.*0 bytes/);
  });

  it('header length past the end of the file', () => {
    expectOpenError(craft({}, 0, 1000n), /header length 1000 runs past the end of the file/);
  });

  it('header length at the boundary: ending exactly at the end of the file opens, one byte more does not', () => {
    // '{}' is 2 bytes: 8 + 2 = 10 = the file's size
    const f = SafetensorsFile.open(craft({}, 0, 2n));
    expect([f.headerLength, f.dataOffset, f.names().length]).toEqual([2, 10, 0]);
    f.close();
    expectOpenError(craft({}, 0, 3n), /^header length 3 runs past the end of the file \(10 bytes, header would end at 11\)$/);
    // within the file's size but past its end once the 8 length bytes are counted (N ≤ size < 8 + N)
    expectOpenError(craft({}, 20, 23n), /^header length 23 runs past the end of the file \(30 bytes, header would end at 31\)$/);
    expectOpenError(craft({}, 20, 30n), /^header length 30 runs past the end of the file \(30 bytes, header would end at 38\)$/);
  });

  it('header length over the 100 MB cap', () => {
    expectOpenError(craft({}, 0, BigInt(MAX_HEADER_BYTES) + 1n), /header length 100000001 exceeds the 100000000-byte cap/);
    expectOpenError(craft({}, 0, 2n ** 64n - 1n), /exceeds the 100000000-byte cap/);
  });

  it('header not valid UTF-8', () => {
    expectOpenError(craft(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), /header is not valid UTF-8/);
  });

  it('header not valid JSON', () => {
    expectOpenError(craft('{"a": '), /header is not valid JSON/);
    expectOpenError(craft(''), /header is not valid JSON/);
  });

  it('header not a JSON object', () => {
    expectOpenError(craft('[1, 2]'), /header is not a JSON object \(it is an array\)/);
    expectOpenError(craft('null'), /header is not a JSON object/);
    expectOpenError(craft('42'), /header is not a JSON object/);
  });

  it('bad __metadata__', () => {
    expectOpenError(craft({ __metadata__: { format: 1 } }), /__metadata__ value for 'format' is not a string/);
    expectOpenError(craft({ __metadata__: ['x'] }), /__metadata__ is not a JSON object/);
  });

  it('entry missing dtype / shape / data_offsets', () => {
    expectOpenError(craft({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor 'w': missing 'dtype'/);
    expectOpenError(craft({ w: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /tensor 'w': missing 'shape'/);
    expectOpenError(craft({ w: { dtype: 'F32', shape: [1] } }, 4), /tensor 'w': missing 'data_offsets'/);
  });

  it('entry fields of the wrong type', () => {
    expectOpenError(craft({ w: 'F32' }, 4), /tensor 'w': entry is not a JSON object/);
    expectOpenError(craft({ w: t(5 as never, [1], [0, 4]) }, 4), /tensor 'w': dtype is not a string/);
    expectOpenError(craft({ w: t('F32', 'x', [0, 4]) }, 4), /tensor 'w': shape is not an array/);
    expectOpenError(craft({ w: t('F32', ['1'], [0, 4]) }, 4), /tensor 'w': shape dimension 0 is "1"/);
    expectOpenError(craft({ w: t('F32', [1], [0]) }, 4), /tensor 'w': data_offsets is not an array of two integers/);
    expectOpenError(craft({ w: t('F32', [1], { a: 0 }) }, 4), /tensor 'w': data_offsets is not an array/);
    expectOpenError(craft({ w: t('F32', [1], ['0', 4]) }, 4), /tensor 'w': data_offsets .* not non-negative integers/);
    expectOpenError(craft({ w: t('F32', [1], [-4, 0]) }, 4), /tensor 'w': data_offsets .* not non-negative integers/);
    expectOpenError(craft({ w: t('F32', [1], [0.5, 4]) }, 4), /not non-negative integers/);
  });

  it('unknown dtype', () => {
    expectOpenError(craft({ w: t('F128', [1], [0, 16]) }, 16), /tensor 'w': unknown dtype 'F128'/);
    expectOpenError(craft({ w: t('f32', [1], [0, 4]) }, 4), /unknown dtype 'f32'/);
  });

  it('negative or non-integer shape dimensions', () => {
    expectOpenError(craft({ w: t('F32', [2, -1], [0, 4]) }, 4), /tensor 'w': shape dimension 1 is -1, not a non-negative integer/);
    expectOpenError(craft({ w: t('F32', [1.5], [0, 4]) }, 4), /tensor 'w': shape dimension 0 is 1.5/);
  });

  it('data_offsets out of bounds of the data section', () => {
    const h = { a: t('F32', [1], [0, 4]), b: t('F32', [1], [100, 104]) };
    expectOpenError(craft(h, 8), /tensor 'b': data_offsets \[100, 104\] out of bounds of the data section \(8 bytes\)/);
  });

  it('data_offsets ending before they begin', () => {
    expectOpenError(craft({ w: t('F32', [0], [8, 4]) }, 8), /tensor 'w': data_offsets \[8, 4\] end before they begin/);
  });

  it('dtype × shape ≠ end − begin', () => {
    expectOpenError(craft({ w: t('F32', [2], [0, 4]) }, 4), /tensor 'w': F32 \[2\] needs 8 bytes but data_offsets \[0, 4\] span 4/);
    expectOpenError(craft({ w: t('BF16', [3, 2], [0, 24]) }, 24), /tensor 'w': BF16 \[3,2\] needs 12 bytes/);
  });

  it('overlapping tensors', () => {
    const h = { a: t('F32', [2], [0, 8]), b: t('F32', [2], [4, 12]) };
    expectOpenError(craft(h, 12), /tensor 'b' data_offsets \[4, 12\] overlap tensor 'a'/);
    const same = { a: t('F32', [2], [0, 8]), b: t('F32', [2], [0, 8]) };
    expectOpenError(craft(same, 8), /overlap/);
  });

  it('gaps: before the first tensor, between tensors, after the last', () => {
    expectOpenError(craft({ a: t('F32', [1], [4, 8]) }, 8), /gap in the data section: tensor 'a' starts at 4/);
    const mid = { a: t('F32', [1], [0, 4]), b: t('F32', [1], [8, 12]) };
    expectOpenError(craft(mid, 12), /gap in the data section: bytes \[4, 8\) between tensor 'a' and tensor 'b'/);
    expectOpenError(craft({ a: t('F32', [1], [0, 4]) }, 9), /gap in the data section: 5 bytes after the last tensor 'a'/);
    expectOpenError(craft({}, 3), /gap in the data section: 3 bytes after the last tensor/);
  });

  it('file truncated: data section shorter than the header claims', () => {
    const h = { a: t('F32', [1], [0, 4]), b: t('F32', [2], [4, 12]) };
    expectOpenError(craft(h, 6), /file truncated: the header describes 12 bytes of tensor data but only 6 follow it \(tensor 'b' ends at 12\)/);
  });

  it('accepts the edge cases the format allows', () => {
    // empty file body, zero-size tensors, scalars, space padding, integer-like names
    const empty = SafetensorsFile.open(craft({}));
    expect(empty.names()).toEqual([]);
    empty.close();
    const h = { z: t('F32', [0, 3], [0, 0]), s: t('F64', [], [0, 8]), '0': t('U8', [2], [8, 10]) };
    const f = SafetensorsFile.open(craft(JSON.stringify(h) + '    ', 10));
    expect(f.names()).toEqual(['z', 's', '0']);
    expect(f.readF32('z').length).toBe(0);
    expect(f.info('s').shape).toEqual([]);
    expect([...f.readI32('0')]).toEqual([7, 7]);
    f.close();
  });

  it('a file that shrinks after opening: truncated read names the tensor', () => {
    const p = craft({ a: t('F32', [4], [0, 16]) }, 16);
    const f = SafetensorsFile.open(p);
    fs.truncateSync(p, fs.statSync(p).size - 8);
    expectError(() => f.readF32('a'), /file truncated reading tensor 'a'/, p);
    f.close();
  });
});

describe('SafetensorsFile: mapped tensors (native addon; MOEKIT_MMAP=0 turns it off)', () => {
  it('a tensor of 64 KiB or more at an unaligned offset reads as a view of its own mapping, its bytes exactly; writes stay private', () => {
    const n = 300_003, data = new Uint8Array(16 + 4 * n + 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    // 'small' (16 bytes: read), 'big' F32 (1.2 MB: mapped) right after it, 'tail' 3 bytes
    const p = craft({ small: t('F32', [4], [0, 16]), big: t('F32', [n], [16, 16 + 4 * n]), tail: t('U8', [3], [16 + 4 * n, 19 + 4 * n]) }, data);
    const f = SafetensorsFile.open(p);
    try {
      const whole = fs.readFileSync(p), i = f.info('big');
      const raw = f.readRaw('big');
      expect(raw.equals(whole.subarray(i.byteOffset, i.byteOffset + i.byteLength))).toBe(true);
      if (nativeAddon?.mapFile && process.env.MOEKIT_MMAP !== '0') {
        expect(raw.buffer.byteLength).toBeLessThan(i.byteLength + 4096 * 4); // its own range, not the file
        expect(raw.buffer.byteLength).toBeGreaterThanOrEqual(i.byteLength);
      }
      const x = f.readF32('big');
      for (const k of [0, 1, 12345, n - 1]) expect(x[k]).toBe(whole.readFloatLE(i.byteOffset + 4 * k));
      raw.fill(0); // copy-on-write: the file keeps its bytes
      expect(fs.readFileSync(p).equals(whole)).toBe(true);
      expect(f.readRaw('big').equals(whole.subarray(i.byteOffset, i.byteOffset + i.byteLength))).toBe(true);
      expect([...f.readRaw('tail')]).toEqual([...whole.subarray(8 + f.headerLength + 16 + 4 * n)]);
    } finally {
      f.close();
    }
  });
});

describe('SafetensorsFile: positional reads', () => {
  it('opens and reads one tensor of a 5 GiB sparse file without reading the rest', () => {
    const big = 5 * 2 ** 30;
    const header = Buffer.from(JSON.stringify({
      big: t('U8', [big], [0, big]),
      small: t('F32', [4], [big, big + 16]),
    }));
    const p = path.join(scratch(), 'sparse.safetensors');
    const fd = fs.openSync(p, 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeSync(fd, len, 0, 8, 0);
    fs.writeSync(fd, header, 0, header.length, 8);
    const small = new Float32Array([1.5, -2, 3.25, 1e-3]);
    fs.writeSync(fd, new Uint8Array(small.buffer), 0, 16, 8 + header.length + big); // past 4 GiB
    fs.closeSync(fd);
    expect(fs.statSync(p).size).toBe(8 + header.length + big + 16);

    const spy = vi.spyOn(fs, 'readSync');
    const f = SafetensorsFile.open(p);
    expect(f.info('small').byteOffset).toBe(8 + header.length + big);
    expect([...f.readF32('small')]).toEqual([...small]);
    expect(f.readRaw('small').length).toBe(16);
    f.close();
    expect(spy).toHaveBeenCalled();
    const bytesRead = spy.mock.calls.reduce((s, c) => s + ((c as unknown[])[3] as number), 0);
    expect(bytesRead).toBeLessThan(1024);
    fs.rmSync(p);
  });
});

describe('writeSafetensors: round trips', () => {
  const rand = (n: number, seed: number) => {
    const out = new Uint8Array(n);
    let s = seed;
    for (let i = 0; i < n; i++) out[i] = (s = (s * 1664525 + 1013904223) >>> 0) >>> 24;
    return out;
  };
  const ints: Partial<Record<Dtype, (v: number[]) => ArrayBufferView>> = {
    I64: (v) => BigInt64Array.from(v, BigInt), U64: (v) => BigUint64Array.from(v, (x) => BigInt(Math.abs(x))),
    I32: (v) => Int32Array.from(v), U32: (v) => Uint32Array.from(v, Math.abs),
    I16: (v) => Int16Array.from(v), U16: (v) => Uint16Array.from(v, Math.abs),
    I8: (v) => Int8Array.from(v), U8: (v) => Uint8Array.from(v, Math.abs), BOOL: (v) => Uint8Array.from(v, (x) => x & 1),
  };

  it('all dtypes, with metadata, lazy data in order, header padded to 8 bytes', () => {
    const shape = [3, 5];
    const values = Array.from({ length: 15 }, (_, i) => (i * 37) % 101 - 50);
    const f32 = Float32Array.from({ length: 15 }, (_, i) => Math.sin(i) * 10 ** (i % 7 - 3));
    const entries: SafetensorsEntry[] = [];
    const called: string[] = [];
    for (const [k, d] of DTYPES.entries()) {
      let data: ArrayBufferView;
      if (d === 'F32') data = f32;
      else if (d === 'F64') data = Float64Array.from(f32);
      else if (d === 'F16') data = f32ToF16Array(f32);
      else if (d === 'BF16') data = f32ToBf16Array(f32);
      else if (d === 'F8_E4M3' || d === 'F8_E5M2') data = rand(15, k);
      else data = ints[d]!(values);
      // odd entries lazily
      entries.push({ name: `t.${d}`, dtype: d, shape, data: k % 2 ? () => { called.push(d); return data; } : data });
    }
    entries.push({ name: 'scalar', dtype: 'F32', shape: [], data: new Float32Array([42]) });
    entries.push({ name: 'empty', dtype: 'BF16', shape: [0, 7], data: new Uint16Array(0) });
    const p = path.join(scratch(), 'all.safetensors');
    writeSafetensors(p, entries, { format: 'pt', note: 'ünïcode' });
    expect(called).toEqual(DTYPES.filter((_, k) => k % 2));

    const raw = fs.readFileSync(p);
    const n = Number(raw.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const headerText = raw.subarray(8, 8 + n).toString('utf8');
    expect(headerText).toMatch(/^\{"__metadata__":\{"format":"pt","note":"ünïcode"\},"t\.F64":/);
    expect(headerText.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(headerText.slice(headerText.trimEnd().length))).toBe(true);

    const f = SafetensorsFile.open(p);
    expect(f.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect(f.names()).toEqual(entries.map((e) => e.name)); // written in the given order
    for (const e of entries) {
      const info = f.info(e.name);
      expect(info.dtype).toBe(e.dtype);
      expect(info.shape).toEqual(e.shape);
      const d = typeof e.data === 'function' ? e.data() : e.data;
      expect(f.readRaw(e.name).equals(Buffer.from(d.buffer, d.byteOffset, d.byteLength))).toBe(true);
    }
    expect([...f.readF32('t.F32')]).toEqual([...f32]);
    expect([...f.readF32('t.F64')]).toEqual([...f32]);
    const h = f.readF32('t.F16');
    const b = f.readF32('t.BF16');
    for (let i = 0; i < 15; i++) {
      expect(Math.abs(h[i]! - f32[i]!)).toBeLessThanOrEqual(Math.abs(f32[i]!) * 2 ** -11 + 2 ** -25);
      expect(Math.abs(b[i]! - f32[i]!)).toBeLessThanOrEqual(Math.abs(f32[i]!) * 2 ** -8);
    }
    const e4 = f.readF32('t.F8_E4M3');
    expect(Object.is(e4[3], Math.fround(f8e4m3BitsToF32(rand(15, DTYPES.indexOf('F8_E4M3'))[3]!)))).toBe(true);
    for (const d of ['I64', 'I32', 'I16', 'I8'] as const) expect([...f.readI32(`t.${d}`)]).toEqual(values);
    for (const d of ['U64', 'U32', 'U16', 'U8'] as const) expect([...f.readI32(`t.${d}`)]).toEqual(values.map(Math.abs));
    expect([...f.readI32('t.BOOL')]).toEqual(values.map((x) => x & 1));
    expect([...f.readI64('t.I64')]).toEqual(values.map(BigInt));
    expect([...f.readF32('scalar')]).toEqual([42]);
    expect(f.readF32('empty').length).toBe(0);
    f.close();
    expect(fs.readdirSync(scratch()).filter((x) => x.includes('.tmp-'))).toEqual([]);
  });

  it('overflowing integer reads name the tensor and the file', () => {
    const p = path.join(scratch(), 'ovf.safetensors');
    writeSafetensors(p, [
      { name: 'big', dtype: 'I64', shape: [2], data: new BigInt64Array([1n, 2n ** 40n]) },
      { name: 'u', dtype: 'U64', shape: [1], data: new BigUint64Array([2n ** 63n]) },
    ]);
    const f = SafetensorsFile.open(p);
    expectError(() => f.readI32('big'), /tensor 'big': I64 value 1099511627776 at index 1 does not fit in int32/, p);
    expect([...f.readI64('big')]).toEqual([1n, 2n ** 40n]);
    expectError(() => f.readI64('u'), /tensor 'u': U64 value 9223372036854775808 at index 0 does not fit in int64/, p);
    f.close();
  });
});

describe('writeSafetensors: validation and atomicity', () => {
  const listTemps = (dir: string) => fs.readdirSync(dir).filter((x) => x.includes('.tmp-'));

  it('rejects a data length that does not match dtype × shape, before writing anything', () => {
    const dir = fs.mkdtempSync(path.join(scratch(), 'atomic-'));
    const p = path.join(dir, 'x.safetensors');
    expectError(() => writeSafetensors(p, [{ name: 'w', dtype: 'F32', shape: [3], data: new Float32Array(2) }]),
      /tensor 'w': F32 \[3\] needs 12 bytes but the data has 8/, p);
    expectError(() => writeSafetensors(p, [{ name: 'w', dtype: 'X' as Dtype, shape: [1], data: new Uint8Array(1) }]),
      /unknown dtype 'X'/, p);
    expectError(() => writeSafetensors(p, [{ name: 'w', dtype: 'U8', shape: [-1], data: new Uint8Array(0) }]),
      /shape \[-1\]/, p);
    expectError(() => writeSafetensors(p, [
      { name: 'w', dtype: 'U8', shape: [1], data: new Uint8Array(1) },
      { name: 'w', dtype: 'U8', shape: [1], data: new Uint8Array(1) }]), /duplicate tensor name 'w'/, p);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a failing lazy tensor leaves no temp file and does not clobber the existing file', () => {
    const dir = fs.mkdtempSync(path.join(scratch(), 'atomic-'));
    const p = path.join(dir, 'model.safetensors');
    writeSafetensors(p, [{ name: 'old', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
    const before = fs.readFileSync(p);

    expectError(() => writeSafetensors(p, [
      { name: 'a', dtype: 'F32', shape: [1000], data: new Float32Array(1000) },
      { name: 'b', dtype: 'F32', shape: [4], data: () => new Float32Array(3) },
    ]), /tensor 'b': F32 \[4\] needs 16 bytes but the data has 12/, p);
    expect(listTemps(dir)).toEqual([]);
    expect(fs.readFileSync(p).equals(before)).toBe(true);

    expect(() => writeSafetensors(p, [
      { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      { name: 'b', dtype: 'F32', shape: [1], data: () => { throw new Error('producer failed'); } },
    ])).toThrow('producer failed');
    expect(listTemps(dir)).toEqual([]);
    expect(fs.readFileSync(p).equals(before)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['model.safetensors']);
  });

  it('refuses a header over the 100 MB cap readers enforce', () => {
    const dir = fs.mkdtempSync(path.join(scratch(), 'atomic-'));
    const p = path.join(dir, 'x.safetensors');
    expectError(() => writeSafetensors(p, [], { huge: 'x'.repeat(MAX_HEADER_BYTES) }), /over the 100000000-byte cap/, p);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('keeps the given data order even for integer-like names', () => {
    const p = path.join(scratch(), 'intnames.safetensors');
    writeSafetensors(p, [
      { name: 'b', dtype: 'U8', shape: [1], data: new Uint8Array([1]) },
      { name: '1', dtype: 'U8', shape: [2], data: new Uint8Array([2, 2]) },
      { name: '0', dtype: 'U8', shape: [1], data: new Uint8Array([3]) },
    ]);
    const raw = fs.readFileSync(p);
    expect([...raw.subarray(raw.length - 4)]).toEqual([1, 2, 2, 3]);
    const f = SafetensorsFile.open(p);
    expect(f.names()).toEqual(['b', '1', '0']);
    expect([...f.readI32('1')]).toEqual([2, 2]);
    f.close();
  });

  it('an unwritable target is a MoekitError naming it', () => {
    const p = path.join(scratch(), 'no', 'such', 'dir', 'x.safetensors');
    expectError(() => writeSafetensors(p, []), /cannot write: its directory does not exist/, p);
  });

  it('writes through a temp file and rename', () => {
    const dir = fs.mkdtempSync(path.join(scratch(), 'atomic-'));
    const p = path.join(dir, 'x.safetensors');
    const opened: string[] = [];
    const realOpen = fs.openSync;
    vi.spyOn(fs, 'openSync').mockImplementation(((f: fs.PathLike, ...rest: unknown[]) => {
      opened.push(String(f));
      return (realOpen as (...a: unknown[]) => number)(f, ...rest);
    }) as typeof fs.openSync);
    const rename = vi.spyOn(fs, 'renameSync');
    writeSafetensors(p, [{ name: 'w', dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) }]);
    const tmpName = opened.find((x) => x.startsWith(`${p}.tmp-${process.pid}-`));
    expect(tmpName).toBeDefined();
    expect(rename).toHaveBeenCalledWith(tmpName, p);
    expect(fs.readdirSync(dir)).toEqual(['x.safetensors']);
  });
});
