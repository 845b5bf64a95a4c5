/** Reference softmax: max-subtracted, exact Math.exp, float64 sum. */
import { dim, f32, len } from './check.js';

/**
 * In place, row-wise softmax of x[rows, cols]. A row whose maximum is -Infinity (every entry
 * masked out) becomes all zeros rather than NaN: a fully masked attention row attends nothing.
 * A NaN anywhere in a row makes that whole row NaN.
 */
export function softmax(x: Float32Array, rows: number, cols: number): void {
  const k = 'softmax';
  dim(k, 'rows', rows); dim(k, 'cols', cols);
  f32(k, 'x', x);
  len(k, 'x', x, rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols; // row r is x[o, o + cols)
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, x[o + c]); // Math.max propagates NaN
    if (max === -Infinity) {
      for (let c = 0; c < cols; c++) x[o + c] = 0;
      continue;
    }
    let sum = 0; // float64
    const e = new Float64Array(cols); // [cols] exp(x - max) before rounding
    for (let c = 0; c < cols; c++) {
      e[c] = Math.exp(x[o + c] - max);
      sum += e[c];
    }
    for (let c = 0; c < cols; c++) x[o + c] = e[c] / sum;
  }
}
