/** Phase 3, experts: the SwiGLU FFN of one expert (or a shared / dense FFN) over its rows. */
import type { Kernels } from '../tensor/kernels.js';
import type { MoeDesc } from '../models/desc.js';
import { linearFwd } from '../models/ops.js';
import type { Ffn } from '../models/weights.js';

/** x [n, H] → [n, H] = down(act(gate(x)), up(x)) */
export function ffnForward(k: Kernels, x: Float32Array, n: number, f: Ffn,
                           act: MoeDesc['act'] = 'swiglu', limit = 7, alpha = 1.702): Float32Array {
  const g = linearFwd(k, x, n, f.gate); // [n, I]
  const u = linearFwd(k, x, n, f.up); // [n, I]
  if (act === 'swiglu') k.swiglu(g, g, u, g.length);
  else k.swigluClamped(g, g, u, g.length, limit, alpha);
  return linearFwd(k, g, n, f.down); // [n, H]
}
