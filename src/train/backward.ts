/**
 * The backward loop over a tape: from dlogits back through the LM head, the final norm, every
 * recorded decoder layer in reverse (each block's backward sits beside its forward: models/norm.ts,
 * models/attention.ts, moe/layer.ts, moe/experts.ts) and the embedding, accumulating every weight's
 * gradient into `g`. Layers a sub-model skipped pass the gradient through the residual unchanged.
 */
import type { MoeModel } from '../models/model.js';
import { attentionBackward, type AttnCall } from '../models/attention.js';
import { mamba2Backward } from '../models/mamba2.js';
import { rmsnormBackward } from '../models/norm.js';
import type { LayerTape, Tape } from '../models/pass.js';
import type { LayerDesc } from '../models/desc.js';
import type { LayerWeights } from '../models/weights.js';
import { ffnBackward } from '../moe/experts.js';
import { moeBackward, type MoeSaved } from '../moe/layer.js';
import type { Grads } from '../tensor/grads.js';
import type { Kernels } from '../tensor/kernels.js';
import { linearBackward } from '../tensor/linear.js';
import { MoekitError } from '../util/errors.js';

/**
 * gradients the trunk gets from outside its own LM head (multi-token prediction, models/mtp.ts): on the final normed
 * hidden states (the LM head's input) and on the residual stream before the final norm, each [N, H]
 */
export interface TrunkGrad {
  dhf?: Float32Array;
  dx?: Float32Array;
}

/**
 * Backward of one decoder layer (MoeModel.decoderLayer), in place on dx [N, H]: the gradient of the layer's output
 * in, the gradient of its input out; weights' gradients into g. `routerGrad` adds a gradient on its router logits.
 */
export function layerBackward(k: Kernels, model: MoeModel, lw: LayerWeights, ld: LayerDesc, lt: LayerTape, B: number, T: number,
                              dx: Float32Array, g: Grads, routerGrad?: (s: MoeSaved) => Float32Array | null): void {
  const d = model.desc, H = d.hidden, N = B * T, rm = d.residualMultiplier;
  // the gradient reaching a block's output: m_r · dx (dx itself when m_r = 1)
  const branch = (v: Float32Array) => (rm === 1 ? v : v.map((u) => u * rm));
  const pos0 = new Array<number>(B).fill(0);
  // FFN block: dx flows through the residual and through mlp(norm(x))
  const dh = new Float32Array(N * H);
  const dm = branch(dx);
  if (lw.moe) moeBackward(k, d.moe, lw.moe, lt.moe!, dm, dh, H, g, routerGrad?.(lt.moe!) ?? undefined);
  else ffnBackward(k, lw.dense!, lt.dense!, dm, dh, g);
  rmsnormBackward(dx, dh, lt.n2, lw.ffnNorm, g.of(lw.ffnNorm));
  // attention block
  dh.fill(0);
  if (ld.mixer === 'mamba2') {
    mamba2Backward(k, d, lw.mamba2!, lt.mamba2!, B, T, branch(dx), dh, g);
    rmsnormBackward(dx, dh, lt.n1, lw.attnNorm, g.of(lw.attnNorm));
    return;
  }
  const c: AttnCall = { k, d, w: lw.attn!, rope: model.rope, x: lt.h1, B, T, pos0, kv: lt.attn.kv, window: ld.slidingWindow, save: true, layer: ld };
  attentionBackward(c, lt.attn, branch(dx), dh, g);
  rmsnormBackward(dx, dh, lt.n1, lw.attnNorm, g.of(lw.attnNorm));
}

/**
 * dlogits [N, V] (consumed: scaled in place for Granite's logit scale) → gradients into g; `routerGrad` adds a
 * gradient on a MoE layer's router logits (balance losses); `extra` adds gradients from multi-token prediction
 */
export function decoderBackward(k: Kernels, model: MoeModel, tape: Tape, dlogits: Float32Array, g: Grads,
                                routerGrad?: (layer: number, s: MoeSaved) => Float32Array | null, extra?: TrunkGrad): void {
  const d = model.desc, w = model.weights, H = d.hidden;
  const { B, T } = tape, N = B * T;
  if (!tape.nf || tape.layers.length !== d.nLayers) throw new MoekitError('the tape is not from a complete training forward');
  if (d.logitsScale !== 1) for (let i = 0; i < dlogits.length; i++) dlogits[i] /= d.logitsScale;
  const dhf = new Float32Array(N * H);
  linearBackward(k, w.lmHead, tape.hf, dlogits, N, dhf, g);
  if (extra?.dhf) for (let i = 0; i < N * H; i++) dhf[i] += extra.dhf[i];
  const dx = new Float32Array(N * H); // [N, H] gradient of the residual stream
  rmsnormBackward(dx, dhf, tape.nf, w.norm, g.of(w.norm));
  if (extra?.dx) for (let i = 0; i < N * H; i++) dx[i] += extra.dx[i];
  for (let l = d.nLayers - 1; l >= 0; l--) {
    const lt = tape.layers[l];
    if (!lt) continue;
    layerBackward(k, model, w.layers[l], d.layers[l], lt, B, T, dx, g, routerGrad && ((s) => routerGrad(l, s)));
  }
  // embedding: scatter-add the rows
  const dE = g.of(w.embed);
  for (let n = 0; n < N; n++) {
    const o = tape.ids[n] * H;
    for (let j = 0; j < H; j++) dE[o + j] += d.embeddingMultiplier * dx[n * H + j];
  }
}
