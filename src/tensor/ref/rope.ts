/** Reference rotary position embedding (RoPE), both pairings. */
import { dim, f32, len } from './check.js';

/**
 * In place on x viewed as [rows, stride]: columns [off, off + rotDim) of row r are rotated by the
 * angles of position p = floor(r / rowsPerPos), read from cos/sin [P, rotDim/2].
 * Pair i (i < rotDim/2) is (2i, 2i+1) when interleaved (GPT-J), else (i, i + rotDim/2) (NeoX):
 *   a' = a·cos − b·sin,   b' = a·sin + b·cos      (computed in float64, rounded once)
 * Typical use: q [T, H·hd] with stride = H·hd, rows = T·H, rowsPerPos = H, off = 0.
 */
export function rope(x: Float32Array, rows: number, stride: number, off: number, rotDim: number,
                     cos: Float32Array, sin: Float32Array, rowsPerPos: number,
                     interleaved: boolean): void {
  const k = 'rope';
  dim(k, 'rows', rows); dim(k, 'stride', stride); dim(k, 'off', off); dim(k, 'rotDim', rotDim);
  dim(k, 'rowsPerPos', rowsPerPos);
  f32(k, 'x', x); f32(k, 'cos', cos); f32(k, 'sin', sin);
  if (rotDim % 2 !== 0) throw new RangeError(`${k}: rotDim must be even, got ${rotDim}`);
  if (off + rotDim > stride) {
    throw new RangeError(`${k}: off + rotDim = ${off + rotDim} exceeds stride ${stride}`);
  }
  if (rowsPerPos < 1) throw new RangeError(`${k}: rowsPerPos must be >= 1, got ${rowsPerPos}`);
  const half = rotDim / 2;
  if (rows === 0 || rotDim === 0) return;
  const positions = Math.floor((rows - 1) / rowsPerPos) + 1; // P needed
  len(k, 'x', x, (rows - 1) * stride + off + rotDim);
  len(k, 'cos', cos, positions * half);
  len(k, 'sin', sin, positions * half);
  for (let r = 0; r < rows; r++) {
    const p = Math.floor(r / rowsPerPos);
    const base = r * stride + off; // first rotated column of row r
    for (let i = 0; i < half; i++) {
      const c = cos[p * half + i], s = sin[p * half + i];
      const ia = interleaved ? base + 2 * i : base + i;
      const ib = interleaved ? base + 2 * i + 1 : base + i + half;
      const a = x[ia], b = x[ib];
      x[ia] = a * c - b * s;
      x[ib] = a * s + b * c;
    }
  }
}
