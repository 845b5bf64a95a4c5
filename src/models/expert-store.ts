/**
 * Where a model's routed experts live. The eager store holds every expert in memory (loaded at
 * start: today's behaviour); `null` marks an expert the checkpoint does not have (pruned).
 */
import type { Ffn, LayerExperts } from '../moe/types.js';
import { weightBytes } from '../tensor/weight.js';
import { MoekitError } from '../util/errors.js';

export function ffnBytes(f: Ffn): number {
  let n = 0;
  for (const L of [f.gate, f.up, f.down]) n += weightBytes(L.w) + (L.b ? L.b.byteLength : 0);
  return n;
}

/** every expert of one MoE layer in memory */
export class EagerExperts implements LayerExperts {
  constructor(readonly list: (Ffn | null)[], readonly layer = -1) {}
  get count(): number {
    return this.list.length;
  }
  has(e: number): boolean {
    return this.list[e] != null;
  }
  get(e: number): Ffn {
    const f = this.list[e];
    if (!f) throw new MoekitError(`expert ${e}${this.layer >= 0 ? ` of layer ${this.layer}` : ''} was routed to but is not in the checkpoint (pruned?)`);
    return f;
  }
  residentBytes(): number {
    return this.list.reduce((s, f) => s + (f ? ffnBytes(f) : 0), 0);
  }
}
