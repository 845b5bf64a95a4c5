/** Reference decode attention: one query position per head over a cache, float64 dot products and sums. */
import { dim, f32, len } from './check.js';

/**
 * out[nH, Dv]: for each query head h (kv head h / (nH / nKv)), softmax over keys j in [lo, S) of
 * scale · q_h · K[kvh, j] (and, with sinks, one more logit sinks[h] that carries no value), times V[kvh, j].
 * q [nH, Dk]; K [nKv, cap, Dk] and V [nKv, cap, Dv] as a sequence's cache holds them (cap ≥ S).
 * This is the loop of attentionForward for T = 1: scores → mask → softmax → P · V.
 */
export function attnDecode(q: Float32Array, K: Float32Array, V: Float32Array, out: Float32Array, nH: number, nKv: number,
                           cap: number, Dk: number, Dv: number, lo: number, S: number, scale: number, sinks: Float32Array | null): void {
  const k = 'attnDecode';
  for (const [n, v] of [['nH', nH], ['nKv', nKv], ['cap', cap], ['Dk', Dk], ['Dv', Dv], ['lo', lo], ['S', S]] as const) dim(k, n, v);
  f32(k, 'q', q); f32(k, 'K', K); f32(k, 'V', V); f32(k, 'out', out);
  if (nKv === 0 || nH % nKv !== 0) throw new RangeError(`${k}: nH=${nH} must be a multiple of nKv=${nKv}`);
  if (S > cap || lo > S) throw new RangeError(`${k}: need lo <= S <= cap, got lo=${lo}, S=${S}, cap=${cap}`);
  len(k, 'q', q, nH * Dk); len(k, 'K', K, nKv * cap * Dk); len(k, 'V', V, nKv * cap * Dv); len(k, 'out', out, nH * Dv);
  if (sinks) { f32(k, 'sinks', sinks); len(k, 'sinks', sinks, nH); }
  const group = nH / nKv, n = S - lo;
  const p = new Float64Array(n + 1);
  for (let h = 0; h < nH; h++) {
    const kvh = Math.floor(h / group), ko = kvh * cap * Dk, vo = kvh * cap * Dv;
    let max = sinks ? sinks[h] : -Infinity;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let d = 0; d < Dk; d++) s += q[h * Dk + d] * K[ko + (lo + j) * Dk + d];
      p[j] = Math.fround(scale * s);
      max = Math.max(max, p[j]);
    }
    let sum = sinks ? Math.exp(sinks[h] - max) : 0;
    for (let j = 0; j < n; j++) { p[j] = Math.exp(p[j] - max); sum += p[j]; }
    for (let d = 0; d < Dv; d++) {
      let acc = 0;
      for (let j = 0; j < n; j++) acc += (p[j] / sum) * V[vo + (lo + j) * Dv + d];
      out[h * Dv + d] = n > 0 || sinks ? acc : 0;
    }
  }
}

/**
 * attnDecode of each of B = Ks.length sequences (meta [B, 3] = cap, lo, S), one after another; with kNew [B, nKv, Dk]
 * and vNew [B, nKv, Dv], each sequence's new key and value heads are first written at position S − 1 of its cache
 */
export function attnDecodeBatch(q: Float32Array, Ks: Float32Array[], Vs: Float32Array[], meta: Int32Array, out: Float32Array, nH: number, nKv: number,
                                Dk: number, Dv: number, scale: number, sinks: Float32Array | null, kNew: Float32Array | null = null,
                                vNew: Float32Array | null = null): void {
  const k = 'attnDecodeBatch', B = Ks.length;
  if (Vs.length !== B) throw new RangeError(`${k}: Ks has ${B} caches, Vs ${Vs.length}`);
  f32(k, 'q', q); f32(k, 'out', out);
  if (!(meta instanceof Int32Array)) throw new TypeError(`${k}: meta must be an Int32Array`);
  len(k, 'meta', meta, 3 * B); len(k, 'q', q, B * nH * Dk); len(k, 'out', out, B * nH * Dv);
  if (kNew) {
    f32(k, 'kNew', kNew); f32(k, 'vNew', vNew!);
    len(k, 'kNew', kNew, B * nKv * Dk); len(k, 'vNew', vNew!, B * nKv * Dv);
    for (let b = 0; b < B; b++) {
      const cap = meta[3 * b], p = meta[3 * b + 2] - 1;
      if (p < 0) throw new RangeError(`${k}: sequence ${b} gets a new key at S − 1 and needs S >= 1`);
      for (let h = 0; h < nKv; h++) {
        Ks[b].set(kNew.subarray((b * nKv + h) * Dk, (b * nKv + h + 1) * Dk), (h * cap + p) * Dk);
        Vs[b].set(vNew!.subarray((b * nKv + h) * Dv, (b * nKv + h + 1) * Dv), (h * cap + p) * Dv);
      }
    }
  }
  for (let b = 0; b < B; b++) {
    attnDecode(q.subarray(b * nH * Dk, (b + 1) * nH * Dk), Ks[b], Vs[b], out.subarray(b * nH * Dv, (b + 1) * nH * Dv),
      nH, nKv, meta[3 * b], Dk, Dv, meta[3 * b + 1], meta[3 * b + 2], scale, sinks);
  }
}
