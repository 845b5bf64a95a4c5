/**
 * llama.cpp's block-quantised weight formats, byte for byte as GGUF stores them, and their plain
 * TypeScript quantisers (the reference; GGUF export and `moekit quantize` use them). A row of K
 * weights (K a multiple of 32) is K / 32 blocks, one after another; a matrix [N, K] is its N rows.
 *   q8_0: 34 bytes = d (binary16, little-endian) + 32 × int8 q;               value = q · d
 *   q4_0: 18 bytes = d (binary16) + 16 bytes; byte j holds element j in its low nibble and element
 *         j + 16 in its high nibble (not neighbouring pairs);                 value = (q − 8) · d
 * Quantisation follows llama.cpp's reference rounding (in f32): q8_0 d = max|x| / 127,
 * q = round(x / d) half away from zero; q4_0 d = m / −8 with m the value of largest magnitude,
 * q = min(15, trunc(x / d + 8.5)).
 */
import { f16BitsToF32, f32ToF16Bits } from '../util/half.js';

export type QuantType = 'q8_0' | 'q4_0';
export const QUANT_TYPES: readonly QuantType[] = ['q8_0', 'q4_0'];
/** weights per block */
export const QK = 32;
/** bytes per block */
export const QUANT_BLOCK_BYTES: Readonly<Record<QuantType, number>> = { q8_0: 34, q4_0: 18 };

export function isQuantType(x: unknown): x is QuantType {
  return x === 'q8_0' || x === 'q4_0';
}

/** bytes of n weights (n a multiple of 32) */
export function quantBytes(type: QuantType, n: number): number {
  return (n / QK) * QUANT_BLOCK_BYTES[type];
}

/** f32 value of every binary16 bit pattern (256 KiB, built on first use) */
let halfTable: Float32Array | null = null;
export function halfToF32Table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = f16BitsToF32(h);
  }
  return halfTable;
}

/** x [n] (n a multiple of 32) → n / 32 blocks of `type` */
export function quantize(type: QuantType, x: Float32Array, n = x.length, out: Uint8Array = new Uint8Array(quantBytes(type, n))): Uint8Array {
  if (n % QK !== 0) throw new RangeError(`quantize: n=${n} is not a multiple of ${QK}`);
  const bs = QUANT_BLOCK_BYTES[type];
  const f = Math.fround;
  for (let b = 0; b < n / QK; b++) {
    const x0 = b * QK, o = b * bs;
    let amax = 0, max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[x0 + j];
      if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
    }
    if (type === 'q8_0') {
      const d = f(amax / 127), id = d ? f(1 / d) : 0;
      const h = f32ToF16Bits(d);
      out[o] = h & 0xff; out[o + 1] = h >> 8;
      for (let j = 0; j < QK; j++) {
        const v = f(x[x0 + j] * id);
        const q = v < 0 ? -Math.round(-v) : Math.round(v); // roundf: half away from zero
        out[o + 2 + j] = q & 0xff;
      }
    } else {
      const d = f(max / -8), id = d ? f(1 / d) : 0;
      const h = f32ToF16Bits(d);
      out[o] = h & 0xff; out[o + 1] = h >> 8;
      for (let j = 0; j < QK / 2; j++) {
        const lo = Math.min(15, Math.trunc(f(f(x[x0 + j] * id) + 8.5)));
        const hi = Math.min(15, Math.trunc(f(f(x[x0 + j + 16] * id) + 8.5)));
        out[o + 2 + j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
      }
    }
  }
  return out;
}
