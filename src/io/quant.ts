/**
 * Dequantisation of the quantised layouts real MoE checkpoints ship in:
 * - FP8 with block scales (DeepSeek-V3/R1, Qwen3 *-FP8): `W` F8_E4M3 [out, in] and
 *   `W_scale_inv` F32 [⌈out/b0⌉, ⌈in/b1⌉]; W[i, j] = fp8(W[i, j]) · s[⌊i/b0⌋, ⌊j/b1⌋].
 * - MXFP4 (gpt-oss experts): `X_blocks` U8 [..., R, G, 16] (32 e2m1 values per block of a row,
 *   low nibble first) and `X_scales` U8 [..., R, G] (E8M0 exponents, bias 127);
 *   value = e2m1(nibble) · 2^(scale − 127); rows of [..., R, G·32].
 */
import { f8e4m3BitsToF32, f8e5m2BitsToF32 } from './dtypes.js';

const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

/**
 * FP8 bytes [out, in] with block scales [⌈out/b0⌉, ⌈in/b1⌉] → f32 [out, in]. For rows of a larger
 * tensor, `row0` is the first row's index there and `scales` start at block row ⌊row0/b0⌋.
 */
export function dequantFp8Blocks(bytes: Uint8Array, e5m2: boolean, out: number, inp: number,
                                 scales: Float32Array, b0: number, b1: number, row0 = 0): Float32Array {
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = e5m2 ? f8e5m2BitsToF32(v) : f8e4m3BitsToF32(v);
  const sCols = Math.ceil(inp / b1);
  const y = new Float32Array(out * inp); // [out, in]
  for (let i = 0; i < out; i++) {
    const srow = (Math.floor((row0 + i) / b0) - Math.floor(row0 / b0)) * sCols;
    for (let j = 0; j < inp; j++) y[i * inp + j] = lut[bytes[i * inp + j]] * scales[srow + Math.floor(j / b1)];
  }
  return y;
}

/** MXFP4 blocks [rows, G, 16] and scales [rows, G] → f32 [rows, G·32] */
export function dequantMxfp4(blocks: Uint8Array, scales: Uint8Array, rows: number, groups: number): Float32Array {
  const y = new Float32Array(rows * groups * 32);
  for (let r = 0; r < rows * groups; r++) {
    const s = 2 ** (scales[r] - 127);
    const o = r * 32, b = r * 16;
    for (let k = 0; k < 16; k++) {
      const byte = blocks[b + k];
      y[o + 2 * k] = E2M1[byte & 0x0f] * s;
      y[o + 2 * k + 1] = E2M1[byte >> 4] * s;
    }
  }
  return y;
}
