/**
 * Multi-head latent attention with the compressed KV cache (DeepSeek-V2/V3's inference form):
 * the cache holds, per position, the normalised latent c [kvLora] and the rotated shared key
 * k_pe [rope] — (kvLora + rope) floats instead of nH·(Dk + Dv). kv_b_proj is absorbed:
 *   q_lat,h = q_nope,h · W_UK,h        [T, kvLora]     (W_UK,h = rows of kv_b for head h's keys)
 *   scores  = scale · [q_lat,h | q_pe,h] · [c | k_pe]ᵀ  [T, S]
 *   o_lat,h = P · c                     [T, kvLora]
 *   out_h   = o_lat,h · W_UV,hᵀ         [T, Dv]
 * Mathematically the same as expanding keys and values per head (attention.ts, the reference
 * path, selected with mlaCache: 'expanded'); tests hold the two together.
 */
import { linearFwd } from '../tensor/linear.js';
import { weightF32 } from '../tensor/weight.js';
import type { AttnCall } from './attention.js';
import { maskRow, rotate, scaleBy, scoreRows } from './attention.js';
import { sliceCols } from './ops.js';
import type { AttnWeights } from './weights.js';

/** kv_b_proj as f32 [nH·(nope+v), kvLora], widened once when the checkpoint kept it bf16 */
const kvbF32 = new WeakMap<AttnWeights, Float32Array>();
function kvB(c: AttnCall): Float32Array {
  const w = c.w.kvB!.w;
  if (w.dtype === 'f32') return w.data;
  let f = kvbF32.get(c.w);
  if (!f) {
    f = weightF32(c.k, w);
    kvbF32.set(c.w, f);
  }
  return f;
}

export function mlaLatentForward(c: AttnCall): Float32Array {
  const { k, d, w, x, B, T } = c;
  const a = d.attention, m = a.mla!, N = B * T, nH = a.nHeads;
  const L = m.kvLoraRank, R = m.qkRopeDim, nope = m.qkNopeDim, Dv = m.vHeadDim, Dk = a.headDim;
  const W = L + R; // cache row: [c | k_pe]
  for (let b = 0; b < B; b++) c.kv[b].reserve(c.pos0[b] + T);
  // queries [N, nH·Dk]
  let q: Float32Array;
  if (w.qA) {
    const qa = linearFwd(k, x, N, w.qA); // [N, qLora]
    k.rmsnorm(qa, qa, w.qANorm!, N, m.qLoraRank!, d.rmsEps);
    q = linearFwd(k, qa, N, w.qB!);
  } else {
    q = linearFwd(k, x, N, w.q!);
  }
  scaleBy(q, m.qScale); // LongCat-Flash's LoRA scaling (MlaDesc.qScale)
  // latent and shared rope key [N, L + R], normalised / rotated in place
  const ckv = linearFwd(k, x, N, w.kvA!);
  const latent = sliceCols(ckv, N, W, 0, L); // [N, L]
  k.rmsnorm(latent, latent, w.kvANorm!, N, L, d.rmsEps);
  scaleBy(latent, m.kvScale); // the cache holds the scaled latent (keys' nope parts and values both read it)
  rotate(c, q, nH, Dk, nope);
  rotate(c, ckv, 1, W, L);
  for (let b = 0; b < B; b++) {
    const C = c.kv[b].kOf(0); // [cap, L + R]
    for (let t = 0; t < T; t++) {
      const n = b * T + t, dst = (c.pos0[b] + t) * W;
      C.set(latent.subarray(n * L, (n + 1) * L), dst);
      C.set(ckv.subarray(n * W + L, (n + 1) * W), dst + L);
    }
  }
  const wkvb = kvB(c); // [nH·(nope+Dv), L]
  const rows = scoreRows(T, Math.max(...c.pos0) + T); // query rows per score block (attention.ts)
  const qc = new Float32Array(rows * W); // [rows, L + R]: [q_lat | q_pe]
  const scores = new Float32Array(rows * (Math.max(...c.pos0) + T)); // [rows, S]
  const olat = new Float32Array(rows * L); // [rows, L]
  const out = new Float32Array(N * nH * Dv); // [N, nH·Dv]
  for (let b = 0; b < B; b++) {
    const C = c.kv[b].kOf(0), pos0 = c.pos0[b], S = pos0 + T;
    for (let h = 0; h < nH; h++) {
      const wUK = wkvb.subarray(h * (nope + Dv) * L); // [nope, L]
      const wUV = wkvb.subarray((h * (nope + Dv) + nope) * L); // [Dv, L]
      for (let t0 = 0; t0 < T; t0 += rows) {
        const n = Math.min(rows, T - t0); // query rows t0 .. t0 + n − 1
        const qh = q.subarray((b * T + t0) * nH * Dk + h * Dk); // [n, Dk], row stride nH·Dk
        // q_lat [n, L] = q_nope [n, nope] · W_UK [nope, L]; q_pe copied beside it
        k.sgemm(false, false, n, L, nope, 1, qh, nH * Dk, wUK, L, 0, qc, W);
        for (let t = 0; t < n; t++) qc.set(qh.subarray(t * nH * Dk + nope, t * nH * Dk + Dk), t * W + L);
        // scores [n, S] = scale · qc · Cᵀ
        k.sgemm(false, true, n, S, W, a.scale, qc, W, C, W, 0, scores, S);
        for (let t = 0; t < n; t++) maskRow(scores, t * S, S, pos0 + t0 + t, null);
        k.softmax(scores, n, S);
        // o_lat [n, L] = P [n, S] · c [S, L]; out_h [n, Dv] = o_lat · W_UVᵀ
        k.sgemm(false, false, n, L, S, 1, scores, S, C, W, 0, olat, L);
        k.sgemm(false, true, n, Dv, L, 1, olat, L, wUV, L, 0, out.subarray((b * T + t0) * nH * Dv + h * Dv), nH * Dv);
      }
    }
  }
  return linearFwd(k, out, N, w.o!);
}
