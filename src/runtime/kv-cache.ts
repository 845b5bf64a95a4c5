/**
 * Per-layer key/value cache for B sequences of equal length: K [B, nKV, cap, Dk] and
 * V [B, nKV, cap, Dv]; capacity doubles on demand. `length` is the number of cached positions.
 */
export class LayerKv {
  k: Float32Array;
  v: Float32Array;
  cap: number;
  constructor(readonly B: number, readonly nKv: number, readonly dk: number, readonly dv: number, cap = 64) {
    this.cap = cap;
    this.k = new Float32Array(B * nKv * cap * dk);
    this.v = new Float32Array(B * nKv * cap * dv);
  }
  /** make room for `n` positions, keeping what is there */
  reserve(n: number): void {
    if (n <= this.cap) return;
    let cap = this.cap;
    while (cap < n) cap *= 2;
    const k = new Float32Array(this.B * this.nKv * cap * this.dk);
    const v = new Float32Array(this.B * this.nKv * cap * this.dv);
    for (let s = 0; s < this.B * this.nKv; s++) {
      k.set(this.k.subarray(s * this.cap * this.dk, (s + 1) * this.cap * this.dk), s * cap * this.dk);
      v.set(this.v.subarray(s * this.cap * this.dv, (s + 1) * this.cap * this.dv), s * cap * this.dv);
    }
    this.k = k; this.v = v; this.cap = cap;
  }
  /** K rows of (b, head): [cap, Dk] */
  kOf(b: number, h: number): Float32Array {
    const o = (b * this.nKv + h) * this.cap * this.dk;
    return this.k.subarray(o, o + this.cap * this.dk);
  }
  vOf(b: number, h: number): Float32Array {
    const o = (b * this.nKv + h) * this.cap * this.dv;
    return this.v.subarray(o, o + this.cap * this.dv);
  }
}

export class KvCache {
  /** positions already cached (same for every sequence) */
  length = 0;
  readonly layers: LayerKv[];
  constructor(readonly B: number, layers: { nKv: number; dk: number; dv: number }[], cap = 64) {
    this.layers = layers.map((l) => new LayerKv(B, l.nKv, l.dk, l.dv, cap));
  }
  /** bytes held */
  bytes(): number {
    return this.layers.reduce((s, l) => s + 4 * (l.k.length + l.v.length), 0);
  }
}
