/**
 * Where a model's routed experts live, behind one interface (LayerExperts: get, has, resident bytes).
 * The eager store holds every expert in memory, read at load with the architecture file's
 * `expert(src, d, l, e)`; `null` marks an expert the checkpoint does not have (pruned).
 */
import type { Ffn, LayerExperts } from '../moe/types.js';
import { weightBytes } from '../tensor/weight.js';
import { MoekitError } from '../util/errors.js';
import type { ArchSpec } from './arch.js';
import type { ModelDesc } from './desc.js';
import type { LayerTensors, LayerWeights, TensorSource } from './weights.js';

export function ffnBytes(f: Ffn): number {
  let n = 0;
  for (const L of [f.gate, f.up, f.down]) n += weightBytes(L.w) + (L.b ? L.b.byteLength : 0);
  return n;
}

function absentError(l: number, e: number, file?: string): MoekitError {
  return new MoekitError(`expert ${e}${l >= 0 ? ` of layer ${l}` : ''} was routed to but is not in the checkpoint (pruned?)`, file);
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
    if (!f) throw absentError(this.layer, e);
    return f;
  }
  residentBytes(): number {
    return this.list.reduce((s, f) => s + (f ? ffnBytes(f) : 0), 0);
  }
}

/**
 * Is expert e of MoE layer l in the checkpoint? From tensor names only: 'absent' (pruned) when none of its
 * own tensors is there, 'partial' when some are (reading it then names the missing one). Fused layouts have
 * no tensors of one expert alone: always 'present'.
 */
export function expertPresence(arch: ArchSpec, src: TensorSource, d: ModelDesc, l: number, e: number): 'present' | 'absent' | 'partial' {
  const names = arch.expertTensors(d, l, e);
  const n = names.filter((x) => src.has(x)).length;
  return n === names.length ? 'present' : n === 0 ? 'absent' : 'partial';
}

/** every routed expert of MoE layer l, read now, one at a time; pruned ones are null */
export function eagerExperts(arch: ArchSpec, src: TensorSource, d: ModelDesc, l: number): EagerExperts {
  return new EagerExperts(Array.from({ length: d.moe.experts }, (_, e) =>
    (expertPresence(arch, src, d, l, e) === 'absent' ? null : arch.expert(src, d, l, e))), l);
}

/** a decoder layer as its architecture file read it, with its routed experts from `experts` (MoE layers) */
export function withExperts(t: LayerTensors, experts: () => LayerExperts): LayerWeights {
  const { moe, ...rest } = t;
  return moe ? { ...rest, moe: { ...moe, experts: experts() } } : rest;
}
