/**
 * Where a model's routed experts live, behind one interface (LayerExperts: get, has, resident bytes).
 * - The eager store holds every expert in memory, read at load (the default); `null` marks an expert
 *   the checkpoint does not have (pruned).
 * - The lazy store keeps the checkpoint open, reads an expert on its first `get` (only its own
 *   bytes: its tensors, or its rows of fused ones, dequantised by itself) and evicts the least
 *   recently used experts, across all layers, when the bytes held pass a budget.
 * Both read an expert with the architecture file's `expert(src, d, l, e)`, so they give the same weights.
 */
import type { Checkpoint } from '../io/checkpoint.js';
import { routedExperts, type Ffn, type LayerExperts } from '../moe/types.js';
import { weightBytes } from '../tensor/weight.js';
import { MoekitError } from '../util/errors.js';
import type { ProgressCallback } from '../util/progress.js';
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
  readonly held = true;
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
  // the experts with weights (zero-computation experts have none: the MoE block computes them, moe/layer.ts)
  return new EagerExperts(Array.from({ length: routedExperts(d.moe) }, (_, e) =>
    (expertPresence(arch, src, d, l, e) === 'absent' ? null : arch.expert(src, d, l, e))), l);
}

/** a decoder layer as its architecture file read it, with its routed experts from `experts` (MoE layers) */
export function withExperts(t: LayerTensors, experts: () => LayerExperts): LayerWeights {
  const { moe, ...rest } = t;
  return moe ? { ...rest, moe: { ...moe, experts: experts() } } : rest;
}

/** what the lazy store has done, for tests and dashboards */
export interface ExpertCounters {
  /** experts read from the checkpoint (a re-read after eviction counts again) */
  loads: number;
  evictions: number;
  /** gets answered from memory */
  hits: number;
}

interface Resident {
  layer: number;
  expert: number;
  ffn: Ffn;
  bytes: number;
}

/**
 * The lazy store of a whole model: `layer(l)` is MoE layer l's LayerExperts view. Holds at most
 * `budgetBytes` of experts (all layers together), except that the expert being returned is always held:
 * a budget smaller than one expert holds just the one in use. Before reading an expert it evicts to make
 * room for one of the size last read, so the bytes held stay within the budget while reading too.
 */
export class LazyExperts {
  readonly counters: ExpertCounters = { loads: 0, evictions: 0, hits: 0 };
  /** resident experts by key l·E + e, least recently used first (a Map keeps insertion order) */
  private readonly lru = new Map<number, Resident>();
  private readonly perLayer: number[];
  private readonly presence = new Map<number, ReturnType<typeof expertPresence>>();
  private readonly views = new Map<number, LayerExperts>();
  private resident = 0;
  private lastBytes = 0;
  private closed = false;

  /**
   * `src` reads from `ck`, which the store keeps open until close(); `onProgress` gets an 'expert'
   * event for every load and eviction.
   */
  constructor(private readonly ck: Checkpoint, private readonly src: TensorSource, private readonly arch: ArchSpec,
              private readonly d: ModelDesc, readonly budgetBytes: number, private readonly onProgress?: ProgressCallback) {
    if (!(budgetBytes >= 0)) throw new MoekitError(`the expert budget must be a number of bytes ≥ 0, got ${budgetBytes}`);
    this.perLayer = new Array<number>(d.nLayers).fill(0);
  }

  /** the LayerExperts of decoder layer l (a MoE layer) */
  layer(l: number): LayerExperts {
    let v = this.views.get(l);
    if (!v) {
      const store = this;
      v = {
        count: routedExperts(this.d.moe),
        has: (e) => store.has(l, e),
        get: (e) => store.get(l, e),
        residentBytes: () => store.perLayer[l],
      };
      this.views.set(l, v);
    }
    return v;
  }

  /** bytes of experts held now, all layers */
  residentBytes(): number {
    return this.resident;
  }

  /** expert e of layer l is in the checkpoint (from tensor names; nothing is read) */
  has(l: number, e: number): boolean {
    if (!(Number.isInteger(e) && e >= 0 && e < routedExperts(this.d.moe))) return false; // as the eager store
    return this.state(l, e) === 'present';
  }

  /** expert e of layer l, read on first use; a MoekitError naming both when the checkpoint lacks it */
  get(l: number, e: number): Ffn {
    const key = this.key(l, e);
    if (this.closed) throw new MoekitError(`expert ${e} of layer ${l}: the model is closed`, this.ck.dir);
    const hit = this.lru.get(key);
    if (hit) {
      this.counters.hits++;
      this.lru.delete(key);
      this.lru.set(key, hit); // most recently used
      return hit.ffn;
    }
    if (this.state(l, e) === 'absent') throw absentError(l, e, this.ck.dir);
    this.evict(this.lastBytes, key);
    const ffn = this.arch.expert(this.src, this.d, l, e);
    const bytes = ffnBytes(ffn);
    this.lru.set(key, { layer: l, expert: e, ffn, bytes });
    this.resident += bytes;
    this.perLayer[l] += bytes;
    this.lastBytes = bytes;
    this.counters.loads++;
    this.emit('load', l, e, bytes);
    this.evict(0, key);
    return ffn;
  }

  /** release every expert and close the checkpoint; idempotent */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lru.clear();
    this.resident = 0;
    this.perLayer.fill(0);
    this.ck.close();
  }

  /** evict least recently used experts (never `keep`) until `room` more bytes fit in the budget */
  private evict(room: number, keep: number): void {
    for (const [k, r] of this.lru) {
      if (this.resident + room <= this.budgetBytes) return;
      if (k === keep) continue;
      this.lru.delete(k);
      this.resident -= r.bytes;
      this.perLayer[r.layer] -= r.bytes;
      this.counters.evictions++;
      this.emit('evict', r.layer, r.expert, r.bytes);
    }
  }

  private emit(action: 'load' | 'evict', layer: number, expert: number, bytes: number): void {
    this.onProgress?.({ status: 'expert', action, layer, expert, bytes, resident: this.resident, budget: this.budgetBytes });
  }

  private state(l: number, e: number): ReturnType<typeof expertPresence> {
    const key = this.key(l, e);
    let s = this.presence.get(key);
    if (s === undefined) {
      s = expertPresence(this.arch, this.src, this.d, l, e);
      this.presence.set(key, s);
    }
    return s;
  }

  private key(l: number, e: number): number {
    const E = routedExperts(this.d.moe);
    if (!(Number.isInteger(e) && e >= 0 && e < E) || this.d.layers[l]?.mlp !== 'moe') {
      throw new RangeError(`expert ${e} of layer ${l}: not a routed expert of this model (E = ${E})`);
    }
    return l * E + e;
  }
}
