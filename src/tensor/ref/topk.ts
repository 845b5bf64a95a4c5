/** Reference top-k: sort every row's indices, keep the first k. */
import { dim, f32, len } from './check.js';

/**
 * The order topk uses: larger value first, ties broken by lower index, NaN after everything
 * (even -Infinity). A strict total order, so the answer is unique.
 */
export function ranksBefore(va: number, ia: number, vb: number, ib: number): boolean {
  const na = Number.isNaN(va), nb = Number.isNaN(vb);
  if (na !== nb) return nb; // the non-NaN one comes first
  if (!na && va !== vb) return va > vb;
  return ia < ib;
}

/**
 * Per row of x[rows, cols]: the k largest values, descending (ties → lower index first),
 * written to idx[rows, k] and val[rows, k]. Requires k <= cols.
 */
export function topk(x: Float32Array, rows: number, cols: number, k: number, idx: Int32Array,
                     val: Float32Array): void {
  const kn = 'topk';
  dim(kn, 'rows', rows); dim(kn, 'cols', cols); dim(kn, 'k', k);
  f32(kn, 'x', x); f32(kn, 'val', val);
  if (!(idx instanceof Int32Array)) throw new TypeError(`${kn}: idx must be an Int32Array`);
  if (k > cols) throw new RangeError(`${kn}: k=${k} exceeds cols=${cols}`);
  len(kn, 'x', x, rows * cols);
  len(kn, 'idx', idx, rows * k);
  len(kn, 'val', val, rows * k);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const order = Array.from({ length: cols }, (_, c) => c); // [cols] column indices
    order.sort((a, b) => (a === b ? 0 : ranksBefore(x[o + a], a, x[o + b], b) ? -1 : 1));
    for (let j = 0; j < k; j++) {
      idx[r * k + j] = order[j];
      val[r * k + j] = x[o + order[j]];
    }
  }
}
