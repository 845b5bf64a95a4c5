/**
 * The training forward and backward of multi-token prediction (the weights and names: src/models/mtp.ts), run after
 * the full model's training forward on its tape: DeepSeek-V3's MTP modules chained from the trunk's last residual
 * stream, or next-group-of-tokens heads over its final normed hidden state. Backward beside forward; the trunk's extra
 * gradient goes back through decoderBackward's `extra`.
 */
import type { MoeModel } from '../models/model.js';
import type { MtpWeights } from '../models/mtp.js';
import { rmsnormBackward, rmsnormForward, type NormSaved } from '../models/norm.js';
import type { LayerTape, Tape } from '../models/pass.js';
import type { Grads } from '../tensor/grads.js';
import { getKernels } from '../tensor/index.js';
import { linearBackward, linearFwd } from '../tensor/linear.js';
import { weightRows } from '../tensor/weight.js';
import { MoekitError } from '../util/errors.js';
import { layerBackward, type TrunkGrad } from './backward.js';
import { crossEntropyBackward, crossEntropyForward } from './loss.js';

/** per-sequence targets shifted by s: out[b, t] = targets[b, t + s] (−1 past the end) */
export function shiftTargets(targets: Int32Array, B: number, T: number, s: number): Int32Array {
  const out = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) for (let t = 0; t + s < T; t++) out[b * T + t] = targets[b * T + t + s];
  return out;
}

interface DepthSaved {
  ne: NormSaved; // enorm input [N, H]
  nh: NormSaved; // hnorm input [N, H]
  cat: Float32Array; // [N, 2H] eh_proj input
  lt: LayerTape;
  ny: NormSaved; // head norm input (h^k) [N, H]
  y: Float32Array; // [N, H] LM head input
}

interface GroupSaved {
  z: NormSaved; // W_g · hf [N, H]
  y: Float32Array; // [N, H] LM head input
}

export interface MtpSaved {
  B: number;
  T: number;
  ids: Int32Array;
  depths: DepthSaved[];
  heads: GroupSaved[];
  hf: Float32Array; // [N, H] group heads' input
}

/** the LM head over y [N, H] → logits [N, V], Granite's logit scale applied */
function head(model: MoeModel, y: Float32Array, N: number): Float32Array {
  const logits = linearFwd(getKernels(), y, N, model.weights.lmHead);
  const s = model.desc.logitsScale;
  if (s !== 1) for (let i = 0; i < logits.length; i++) logits[i] /= s;
  return logits;
}

/**
 * The MTP forward after a training forward of the full model (its tape): logits [N, V] per depth (head), depth k
 * predicting position i + k + 1 (targets: shiftTargets(targets, k)), and what the backward needs.
 */
export function mtpForward(model: MoeModel, tape: Tape, mtp: MtpWeights): { logits: Float32Array[]; s: MtpSaved } {
  const k = getKernels(), d = model.desc, w = model.weights, H = d.hidden, V = d.vocab;
  const { B, T, ids } = tape, N = B * T;
  if (!tape.nf) throw new MoekitError('multi-token prediction needs the tape of a complete training forward');
  const s: MtpSaved = { B, T, ids, depths: [], heads: [], hf: tape.hf };
  const logits: Float32Array[] = [];
  for (const gh of mtp.group) {
    const z = linearFwd(k, tape.hf, N, gh.proj); // [N, H]
    const y = new Float32Array(N * H);
    s.heads.push({ z: rmsnormForward(k, y, z, gh.norm, N, H, d.rmsEps, true)!, y });
    logits.push(head(model, y, N));
  }
  let hPrev = tape.nf.x; // h^0 [N, H]: the trunk's residual stream before the final norm
  mtp.modules.forEach((m, i) => {
    const depth = i + 1;
    // e [N, H] = Emb(t_{i+k}) (zero past the end)
    const e = new Float32Array(N * H);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t + depth < T; t++) {
        const id = ids[b * T + t + depth], dst = e.subarray((b * T + t) * H, (b * T + t + 1) * H);
        weightRows(k, w.embed, H, id, id + 1, dst);
        if (d.embeddingMultiplier !== 1) for (let j = 0; j < H; j++) dst[j] *= d.embeddingMultiplier;
      }
    }
    const en = new Float32Array(N * H), hn = new Float32Array(N * H);
    const ne = rmsnormForward(k, en, e, m.enorm, N, H, d.rmsEps, true)!;
    const nh = rmsnormForward(k, hn, hPrev, m.hnorm, N, H, d.rmsEps, true)!;
    const cat = new Float32Array(N * 2 * H); // [N, 2H] = [enorm(e); hnorm(h^{k−1})]
    for (let n = 0; n < N; n++) {
      cat.set(en.subarray(n * H, (n + 1) * H), n * 2 * H);
      cat.set(hn.subarray(n * H, (n + 1) * H), n * 2 * H + H);
    }
    const x = linearFwd(k, cat, N, m.ehProj); // [N, H], the block's residual stream
    const kv = model.expandedCache(B, T).seqs.map((q) => q.layers[0]);
    const lt = model.decoderLayer(m.layer, m.desc, x, B, T, new Array<number>(B).fill(0), kv, true, false,
      { allowed: null, topK: d.moe.topK, moeLayer: -1, layer: m.index }, undefined, tape.docStart);
    const y = new Float32Array(N * H);
    const ny = rmsnormForward(k, y, x, m.headNorm, N, H, d.rmsEps, true)!;
    s.depths.push({ ne, nh, cat, lt, ny, y });
    logits.push(head(model, y, N));
    hPrev = x;
  });
  if (logits.some((l) => l.length !== N * V)) throw new MoekitError('multi-token prediction: logits of the wrong size');
  return { logits, s };
}

/**
 * Backward of mtpForward: dlogits [N, V] per depth (head; consumed: scaled in place for Granite's logit scale) →
 * gradients of the MTP weights, the shared LM head and embedding into g; returns the trunk's extra gradient
 * (decoderBackward's `extra`): on hf from the group heads, on h^0 from the DeepSeek modules.
 */
export function mtpBackward(model: MoeModel, mtp: MtpWeights, s: MtpSaved, dlogits: Float32Array[], g: Grads): TrunkGrad {
  const k = getKernels(), d = model.desc, w = model.weights, H = d.hidden;
  const { B, T, ids } = s, N = B * T;
  for (const dl of dlogits) if (d.logitsScale !== 1) for (let i = 0; i < dl.length; i++) dl[i] /= d.logitsScale;
  const out: TrunkGrad = {};
  if (mtp.group.length) {
    const dhf = new Float32Array(N * H);
    mtp.group.forEach((gh, i) => {
      const dy = new Float32Array(N * H), dz = new Float32Array(N * H);
      linearBackward(k, w.lmHead, s.heads[i].y, dlogits[i], N, dy, g);
      rmsnormBackward(dz, dy, s.heads[i].z, gh.norm, g.of(gh.norm));
      linearBackward(k, gh.proj, s.hf, dz, N, dhf, g);
    });
    out.dhf = dhf;
  }
  if (mtp.modules.length) {
    const dE = g.of(w.embed);
    let dNext = new Float32Array(N * H); // gradient on h^k from depth k + 1
    for (let i = mtp.modules.length - 1; i >= 0; i--) {
      const m = mtp.modules[i], sv = s.depths[i], depth = i + 1;
      const dy = new Float32Array(N * H);
      linearBackward(k, w.lmHead, sv.y, dlogits[i], N, dy, g);
      const dx = dNext; // [N, H] gradient on h^k, then (in place) on the block's input
      rmsnormBackward(dx, dy, sv.ny, m.headNorm, g.of(m.headNorm));
      layerBackward(k, model, m.layer, m.desc, sv.lt, B, T, dx, g);
      const dcat = new Float32Array(N * 2 * H);
      linearBackward(k, m.ehProj, sv.cat, dx, N, dcat, g);
      const den = new Float32Array(N * H), dhn = new Float32Array(N * H);
      for (let n = 0; n < N; n++) {
        den.set(dcat.subarray(n * 2 * H, n * 2 * H + H), n * H);
        dhn.set(dcat.subarray(n * 2 * H + H, (n + 1) * 2 * H), n * H);
      }
      const de = new Float32Array(N * H), dPrev = new Float32Array(N * H);
      rmsnormBackward(de, den, sv.ne, m.enorm, g.of(m.enorm));
      rmsnormBackward(dPrev, dhn, sv.nh, m.hnorm, g.of(m.hnorm));
      // the shared embedding: scatter-add the rows of t_{i+k}
      for (let b = 0; b < B; b++) {
        for (let t = 0; t + depth < T; t++) {
          const o = ids[b * T + t + depth] * H, r = (b * T + t) * H;
          for (let j = 0; j < H; j++) dE[o + j] += d.embeddingMultiplier * de[r + j];
        }
      }
      dNext = dPrev;
    }
    out.dx = dNext;
  }
  return out;
}

/**
 * The MTP losses over a full-model tape: per depth (head) k the mean cross-entropy against the targets shifted by k
 * (0 where none counts), and with it dlogits for loss_k · dscale (the caller's weight: scale · λ / D).
 */
export function mtpLosses(model: MoeModel, tape: Tape, targets: Int32Array, dscale: number): { losses: number[]; dlogits: Float32Array[]; s: MtpSaved } {
  const mtp = model.weights.mtp;
  if (!mtp) throw new MoekitError('multi-token prediction: the model was loaded without its MTP weights');
  const { B, T } = tape, N = B * T, V = model.desc.vocab;
  const { logits, s } = mtpForward(model, tape, mtp);
  const losses: number[] = [], dlogits: Float32Array[] = [];
  logits.forEach((lg, i) => {
    const tg = shiftTargets(targets, B, T, i + 1);
    const dl = new Float32Array(N * V);
    if (tg.some((t) => t >= 0)) {
      const ce = crossEntropyForward(lg, tg, N, V);
      crossEntropyBackward(dl, ce.s);
      if (dscale !== 1) for (let j = 0; j < dl.length; j++) dl[j] *= dscale;
      losses.push(ce.loss);
    } else {
      losses.push(0);
    }
    dlogits.push(dl);
  });
  return { losses, dlogits, s };
}
