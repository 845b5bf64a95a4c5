/**
 * The safetensors element types and conversions between them.
 *
 * Every multi-byte value in a safetensors file is little-endian; this module (and the readers
 * and writers built on it) view file bytes directly through typed arrays, so it refuses to load
 * on a big-endian host rather than silently misreading.
 *
 * Formats:
 * - F64/F32: IEEE 754 binary64/binary32.
 * - F16: IEEE 754 binary16 (1 sign, 5 exponent bits biased by 15, 10 mantissa bits);
 *   exponent 0 = zero/subnormal (m·2⁻²⁴), exponent 31 = inf (m = 0) or NaN.
 * - BF16: the top 16 bits of a binary32 (1 sign, 8 exponent, 7 mantissa bits).
 * - F8_E4M3: torch `float8_e4m3fn` (1 sign, 4 exponent bits biased by 7, 3 mantissa bits,
 *   no infinities, S.1111.111 = NaN, max ±448, subnormals m/8·2⁻⁶).
 * - F8_E5M2: torch `float8_e5m2`, the top byte of an F16 (IEEE-like, with inf and NaN).
 * - I8..I64 two's complement, U8..U64 unsigned, BOOL one byte (0 = false, anything else true).
 */
import os from 'node:os';
import { MoekitError } from '../util/errors.js';

if (os.endianness() !== 'LE') {
  throw new Error('moekit: safetensors I/O needs a little-endian host');
}

/** All safetensors dtype names, as they appear in a header's `dtype` field. */
export const DTYPES = [
  'F64', 'F32', 'F16', 'BF16',
  'I64', 'I32', 'I16', 'I8',
  'U64', 'U32', 'U16', 'U8',
  'BOOL', 'F8_E4M3', 'F8_E5M2',
] as const;

export type Dtype = (typeof DTYPES)[number];

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
});

const FLOAT_DTYPES: ReadonlySet<Dtype> = new Set<Dtype>(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);

export function isDtype(x: unknown): x is Dtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, x);
}

/** True for the floating-point dtypes (F64, F32, F16, BF16, F8_*). */
export function isFloatDtype(d: Dtype): boolean {
  return FLOAT_DTYPES.has(d);
}

/** True for the integer dtypes and BOOL. */
export function isIntegerDtype(d: Dtype): boolean {
  return !FLOAT_DTYPES.has(d);
}

export function dtypeBytes(d: Dtype): number {
  return DTYPE_BYTES[d];
}

/** Number of elements of `shape` (1 for a scalar []); NaN when it is not a safe integer. */
export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return Number.isSafeInteger(n) ? n : NaN;
}

/** dtype × shape in bytes; NaN when it is not a safe integer (so never equals a real length). */
export function byteLengthOf(dtype: Dtype, shape: readonly number[]): number {
  const n = numElements(shape) * DTYPE_BYTES[dtype];
  return Number.isSafeInteger(n) ? n : NaN;
}

// ---------------------------------------------------------------------------------------------
// scalar conversions (bit patterns are plain numbers: 16 bits for F16/BF16, 8 bits for F8)

export { f16BitsToF32, f32ToF16Bits } from '../util/half.js';
import { f16BitsToF32, f32ToF16Bits } from '../util/half.js';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function bitsToF32(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0]!;
}

/** bfloat16 bits → number (exact). */
export function bf16BitsToF32(h: number): number {
  return bitsToF32((h & 0xffff) << 16);
}

/** number → bfloat16 bits, rounded to nearest, ties to even; NaN stays (quiet) NaN. */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  return u32ToBf16(scratchU32[0]!);
}

function u32ToBf16(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float8_e4m3fn bits → number. */
export function f8e4m3BitsToF32(v: number): number {
  const s = v & 0x80 ? -1 : 1;
  const e = (v >>> 3) & 0xf;
  const m = v & 7;
  if (e === 0xf && m === 7) return NaN;
  if (e === 0) return s * m * 2 ** -9;
  return s * (1 + m / 8) * 2 ** (e - 7);
}

/** float8_e5m2 bits → number. */
export function f8e5m2BitsToF32(v: number): number {
  return f16BitsToF32((v & 0xff) << 8);
}

// ---------------------------------------------------------------------------------------------
// array conversions (lookup tables built on first use)

let f16Table: Float32Array | null = null;
let e4m3Table: Float32Array | null = null;
let e5m2Table: Float32Array | null = null;

function f16Lut(): Float32Array {
  if (!f16Table) {
    // 64 K entries = 256 KiB; bit-exact (payloads of NaNs included)
    const u = new Uint32Array(65536);
    const t = new Float32Array(u.buffer);
    for (let h = 0; h < 65536; h++) {
      const sign = (h & 0x8000) << 16;
      const e = (h >>> 10) & 0x1f;
      const m = h & 0x3ff;
      if (e === 0) t[h] = (sign ? -1 : 1) * m * 2 ** -24;
      else if (e === 0x1f) u[h] = (sign | 0x7f800000 | (m << 13)) >>> 0;
      else u[h] = (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
    }
    f16Table = t;
  }
  return f16Table;
}

function f8Lut(dtype: 'F8_E4M3' | 'F8_E5M2'): Float32Array {
  if (dtype === 'F8_E4M3') {
    if (!e4m3Table) e4m3Table = Float32Array.from({ length: 256 }, (_, i) => f8e4m3BitsToF32(i));
    return e4m3Table;
  }
  if (!e5m2Table) {
    const lut = f16Lut();
    e5m2Table = Float32Array.from({ length: 256 }, (_, i) => lut[i << 8]!);
  }
  return e5m2Table;
}

function outF32(n: number, out?: Float32Array): Float32Array {
  if (!out) return new Float32Array(n);
  if (out.length < n) throw new RangeError(`output has ${out.length} elements, need ${n}`);
  return out;
}

/** F16 bit patterns → Float32Array (bit-exact, table lookup). */
export function f16ToF32Array(src: Uint16Array, out?: Float32Array): Float32Array {
  const lut = f16Lut();
  const o = outF32(src.length, out);
  for (let i = 0; i < src.length; i++) o[i] = lut[src[i]!]!;
  return o;
}

/** BF16 bit patterns → Float32Array (bit-exact). */
export function bf16ToF32Array(src: Uint16Array, out?: Float32Array): Float32Array {
  const o = outF32(src.length, out);
  const u = new Uint32Array(o.buffer, o.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i]! << 16;
  return o;
}

/** F8 (E4M3FN or E5M2) bytes → Float32Array. */
export function f8ToF32Array(dtype: 'F8_E4M3' | 'F8_E5M2', src: Uint8Array, out?: Float32Array): Float32Array {
  const lut = f8Lut(dtype);
  const o = outF32(src.length, out);
  for (let i = 0; i < src.length; i++) o[i] = lut[src[i]!]!;
  return o;
}

/** Float32Array → F16 bit patterns (round to nearest even, NaN-safe). */
export function f32ToF16Array(src: Float32Array, out?: Uint16Array): Uint16Array {
  const o = out ?? new Uint16Array(src.length);
  if (o.length < src.length) throw new RangeError(`output has ${o.length} elements, need ${src.length}`);
  for (let i = 0; i < src.length; i++) o[i] = f32ToF16Bits(src[i]!);
  return o;
}

/** Float32Array → BF16 bit patterns (round to nearest even, NaN-safe). */
export function f32ToBf16Array(src: Float32Array, out?: Uint16Array): Uint16Array {
  const o = out ?? new Uint16Array(src.length);
  if (o.length < src.length) throw new RangeError(`output has ${o.length} elements, need ${src.length}`);
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) o[i] = u32ToBf16(u[i]!);
  return o;
}

// ---------------------------------------------------------------------------------------------
// raw bytes → typed arrays

type ViewCtor<T> = { new (buf: ArrayBufferLike, off: number, len: number): T; BYTES_PER_ELEMENT: number };

/** A typed view of `bytes`, copying only when `bytes` is not aligned for the element size. */
function viewAs<T>(Ctor: ViewCtor<T>, bytes: Uint8Array): T {
  const k = Ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength % k !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${k}-byte elements`);
  }
  if (bytes.byteOffset % k === 0) return new Ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / k);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Ctor(copy.buffer, 0, bytes.byteLength / k);
}

/**
 * Little-endian `bytes` of a floating-point `dtype` → Float32Array. For F32 this is a view of
 * `bytes` when aligned (no copy). Integer dtypes are refused (a MoekitError naming `what`).
 */
export function bytesToF32(dtype: Dtype, bytes: Uint8Array, what = 'tensor', file?: string): Float32Array {
  switch (dtype) {
    case 'F32': return viewAs(Float32Array, bytes);
    case 'F64': return new Float32Array(viewAs(Float64Array, bytes));
    case 'F16': return f16ToF32Array(viewAs(Uint16Array, bytes));
    case 'BF16': return bf16ToF32Array(viewAs(Uint16Array, bytes));
    case 'F8_E4M3':
    case 'F8_E5M2': return f8ToF32Array(dtype, bytes);
    default:
      throw new MoekitError(`${what}: dtype ${dtype} is an integer type, not convertible to float32 (read it as integers)`, file);
  }
}

/**
 * Little-endian `bytes` of an integer `dtype` (or BOOL → 0/1) → Int32Array. Values that do not
 * fit in int32 (from U32, I64, U64) are a MoekitError naming `what`, the index and the value;
 * float dtypes are refused. For I32 this is a view of `bytes` when aligned.
 */
export function bytesToI32(dtype: Dtype, bytes: Uint8Array, what = 'tensor', file?: string): Int32Array {
  const overflow = (i: number, v: bigint | number): never => {
    throw new MoekitError(`${what}: ${dtype} value ${v} at index ${i} does not fit in int32`, file);
  };
  switch (dtype) {
    case 'I32': return viewAs(Int32Array, bytes);
    case 'I16': return Int32Array.from(viewAs(Int16Array, bytes));
    case 'U16': return Int32Array.from(viewAs(Uint16Array, bytes));
    case 'I8': return Int32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    case 'U8': return Int32Array.from(bytes);
    case 'BOOL': return Int32Array.from(bytes, (v) => (v ? 1 : 0));
    case 'U32': {
      const src = viewAs(Int32Array, bytes); // same bits; negative ⇔ ≥ 2³¹
      for (let i = 0; i < src.length; i++) if (src[i]! < 0) overflow(i, src[i]! >>> 0);
      return src;
    }
    case 'I64':
    case 'U64': {
      const w = viewAs(Int32Array, bytes); // (lo, hi) pairs
      const n = w.length / 2;
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = w[2 * i]!;
        const hi = w[2 * i + 1]!;
        if (hi !== lo >> 31 || (dtype === 'U64' && hi !== 0)) {
          const v = dtype === 'I64' ? viewAs(BigInt64Array, bytes)[i]! : viewAs(BigUint64Array, bytes)[i]!;
          overflow(i, v);
        }
        out[i] = lo;
      }
      return out;
    }
    default:
      throw new MoekitError(`${what}: dtype ${dtype} is a float type, not convertible to int32 (read it as float32)`, file);
  }
}

/**
 * Little-endian `bytes` of an integer `dtype` (or BOOL → 0/1) → BigInt64Array. U64 values of
 * 2⁶³ or more are a MoekitError naming `what`; float dtypes are refused.
 */
export function bytesToI64(dtype: Dtype, bytes: Uint8Array, what = 'tensor', file?: string): BigInt64Array {
  if (dtype === 'I64') return viewAs(BigInt64Array, bytes);
  if (dtype === 'U64') {
    const u = viewAs(BigUint64Array, bytes);
    for (let i = 0; i < u.length; i++) {
      if (u[i]! > 0x7fffffffffffffffn) {
        throw new MoekitError(`${what}: U64 value ${u[i]} at index ${i} does not fit in int64`, file);
      }
    }
    return new BigInt64Array(u.buffer, u.byteOffset, u.length);
  }
  if (dtype === 'U32') {
    const u = viewAs(Uint32Array, bytes);
    const out = new BigInt64Array(u.length);
    for (let i = 0; i < u.length; i++) out[i] = BigInt(u[i]!);
    return out;
  }
  const i32 = bytesToI32(dtype, bytes, what, file); // refuses floats
  const out = new BigInt64Array(i32.length);
  for (let i = 0; i < i32.length; i++) out[i] = BigInt(i32[i]!);
  return out;
}
