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
  if (d.normPlacement === 'post') return postNormLayerBackward(k, model, lw, ld, lt, B, T, dx, g, branch, routerGrad);
  // FFN block: dx flows through the residual and through mlp(norm(x))
  const dh = new Float32Array(N * H);
  const dm = ld.shortcutMoe ? dx.slice() : branch(dx); // (shortcutBackward changes dx in place)
  if (ld.shortcutMoe) shortcutBackward(k, model, lw, ld, lt, B, T, dx, dh, g);
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
 * Backward of a shortcut-MoE layer's rest (MoeModel.shortcutRest, LongCat-Flash), before its MoE's and first
 * attention's: dx [N, H] holds the layer output's gradient (the MoE output's too, which the caller has copied); on
 * return dx is the gradient after the first sublayer's attention (x₁, the residual past mlp₀) and dh [N, H] (+=) that
 * of mlp₀'s input h, which the MoE's backward then adds to.
 *   x₂ = x₁ + mlp₀(h);  x₃ = x₂ + attn₁(n₂(x₂));  out = x₃ + mlp₁(n₃(x₃)) + moe(h)
 */
function shortcutBackward(k: Kernels, model: MoeModel, lw: LayerWeights, ld: LayerDesc, lt: LayerTape, B: number, T: number,
                          dx: Float32Array, dh: Float32Array, g: Grads): void {
  const d = model.desc, H = d.hidden, N = B * T, s = lt.second, w2 = lw.second;
  if (!s || !w2 || !lw.dense) throw new MoekitError('the tape of a shortcut-MoE layer has no second sublayer');
  const t = new Float32Array(N * H); // [N, H] a sublayer's input gradient, before its norm
  ffnBackward(k, w2.dense, s.dense1, dx, t, g);
  rmsnormBackward(dx, t, s.n4, w2.ffnNorm, g.of(w2.ffnNorm));
  t.fill(0);
  const c: AttnCall = { k, d, w: w2.attn, rope: model.rope, x: s.h3, B, T, pos0: new Array<number>(B).fill(0), kv: s.attn.kv, window: ld.slidingWindow, save: true, layer: ld };
  attentionBackward(c, s.attn, dx, t, g);
  rmsnormBackward(dx, t, s.n3, w2.attnNorm, g.of(w2.attnNorm));
  ffnBackward(k, lw.dense, s.dense0, dx, dh, g);
}

/**
 * layerBackward for norms on the blocks' outputs (normPlacement 'post': x + m_r · norm(f(x))): dx flows through the
 * residual and, through the norm first, into the block, whose input gradient adds to dx (each block's backward
 * accumulates into its dx).
 */
function postNormLayerBackward(k: Kernels, model: MoeModel, lw: LayerWeights, ld: LayerDesc, lt: LayerTape, B: number, T: number,
                               dx: Float32Array, g: Grads, branch: (v: Float32Array) => Float32Array,
                               routerGrad?: (s: MoeSaved) => Float32Array | null): void {
  const d = model.desc, H = d.hidden, N = B * T;
  const dy = new Float32Array(N * H); // [N, H] gradient of the block's output before its norm
  // FFN block
  rmsnormBackward(dy, branch(dx), lt.n2, lw.ffnNorm, g.of(lw.ffnNorm));
  if (lw.moe) moeBackward(k, d.moe, lw.moe, lt.moe!, dy, dx, H, g, routerGrad?.(lt.moe!) ?? undefined);
  else ffnBackward(k, lw.dense!, lt.dense!, dy, dx, g);
  // attention block
  dy.fill(0);
  rmsnormBackward(dy, branch(dx), lt.n1, lw.attnNorm, g.of(lw.attnNorm));
  const c: AttnCall = { k, d, w: lw.attn!, rope: model.rope, x: lt.h1, B, T, pos0: new Array<number>(B).fill(0), kv: lt.attn.kv, window: ld.slidingWindow, save: true, layer: ld };
  attentionBackward(c, lt.attn, dy, dx, g);
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
