/**
 * Key/value caches, one per sequence, so sequences of different lengths (a server's concurrent
 * requests) decode in one batched step. A sequence's cache holds, per decoder layer, K [nKV, cap, Dk]
 * and V [nKV, cap, Dv] (MLA's compressed form: one "head" of width kvLora + rope and no V); capacity
 * doubles on demand. `length` is the number of positions cached; a forward appends at that position.
 */
export class LayerKv {
  k: Float32Array;
  v: Float32Array;
  cap: number;
  /**
   * a recurrent layer's state instead of keys and values: the conv window [K − 1, C] and the recurrent state (Gated
   * DeltaNet, models/deltanet.ts: S [nV, Dk, Dv]; Mamba-2, models/mamba2.ts: S [nH, P, N])
   */
  conv?: Float32Array;
  rec?: Float32Array;
  /** a shortcut-MoE layer's second attention sublayer (LayerDesc.shortcutMoe): its own cache of the same layout */
  second?: LayerKv;
  constructor(readonly nKv: number, readonly dk: number, readonly dv: number, cap = 64) {
    this.cap = Math.max(1, cap);
    this.k = new Float32Array(nKv * this.cap * dk);
    this.v = new Float32Array(nKv * this.cap * dv);
  }
  /** make room for `n` positions, keeping what is there */
  reserve(n: number): void {
    if (n <= this.cap) return;
    let cap = this.cap;
    while (cap < n) cap *= 2;
    const k = new Float32Array(this.nKv * cap * this.dk);
    const v = new Float32Array(this.nKv * cap * this.dv);
    for (let h = 0; h < this.nKv; h++) {
      k.set(this.k.subarray(h * this.cap * this.dk, (h + 1) * this.cap * this.dk), h * cap * this.dk);
      v.set(this.v.subarray(h * this.cap * this.dv, (h + 1) * this.cap * this.dv), h * cap * this.dv);
    }
    this.k = k; this.v = v; this.cap = cap;
  }
  /** K rows of head h: [cap, Dk] */
  kOf(h: number): Float32Array {
    const o = h * this.cap * this.dk;
    return this.k.subarray(o, o + this.cap * this.dk);
  }
  /** V rows of head h: [cap, Dv] */
  vOf(h: number): Float32Array {
    const o = h * this.cap * this.dv;
    return this.v.subarray(o, o + this.cap * this.dv);
  }
}

/** `second`: the layer has a second attention sublayer with its own cache (LayerKv.second) */
export interface KvLayout { nKv: number; dk: number; dv: number; second?: boolean }

/** the cache of one sequence: one LayerKv per decoder layer */
export class SeqCache {
  /** positions cached */
  length = 0;
  readonly layers: LayerKv[];
  /** `latent`: MLA's compressed layout (what the cache was made for; a forward checks it) */
  constructor(layout: KvLayout[], cap = 64, readonly latent = false) {
    this.layers = layout.map((l) => {
      const kv = new LayerKv(l.nKv, l.dk, l.dv, cap);
      if (l.second) kv.second = new LayerKv(l.nKv, l.dk, l.dv, cap);
      return kv;
    });
  }
  bytes(): number {
    const one = (l: LayerKv): number => 4 * (l.k.length + l.v.length + (l.conv?.length ?? 0) + (l.rec?.length ?? 0));
    return this.layers.reduce((s, l) => s + one(l) + (l.second ? one(l.second) : 0), 0);
  }
}

/** B sequences decoded together: a batch of sequence caches (each keeps its own length) */
export class KvCache {
  constructor(readonly seqs: SeqCache[]) {}
  get B(): number {
    return this.seqs.length;
  }
  /** the common length of all sequences (throws when they differ) */
  get length(): number {
    const n = this.seqs[0]?.length ?? 0;
    if (this.seqs.some((s) => s.length !== n)) throw new Error('KvCache.length: the sequences have different lengths; read seqs[b].length');
    return n;
  }
  bytes(): number {
    return this.seqs.reduce((s, q) => s + q.bytes(), 0);
  }
}
