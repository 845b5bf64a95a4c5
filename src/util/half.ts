/**
 * IEEE binary16 (half) scalar conversions, shared by the checkpoint dtypes (io) and the block-quantised
 * weights' scales (tensor): bit patterns are plain numbers.
 */
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function bitsToF32(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0]!;
}

/** binary16 bits → number (exact; NaN payloads are kept in the f32 bits of the array forms). */
export function f16BitsToF32(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) {
    const v = m * 2 ** -24; // zero or subnormal, exact
    return sign ? -v : v;
  }
  if (e === 0x1f) return bitsToF32(sign | 0x7f800000 | (m << 13));
  return bitsToF32(sign | ((e + 112) << 23) | (m << 13));
}

/**
 * number → binary16 bits, rounded to nearest, ties to even. Overflow gives ±inf, underflow
 * ±0 or a subnormal; NaN stays NaN (quiet, top payload bits kept), never becomes inf.
 */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  const m = b & 0x7fffff;
  if (e === 0xff) return m ? sign | 0x7e00 | (m >>> 13) : sign | 0x7c00;
  const exp = e - 112; // rebias 127 → 15
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign; // below half the smallest subnormal
    const full = m | 0x800000;
    const shift = 14 - exp; // 14..24
    let q = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1))) q++;
    return sign | q; // q may round up to 0x400, the smallest normal: still correct
  }
  let h = sign | (exp << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry may reach inf: correct
  return h;
}
