/**
 * One micro-batch of a training step: the full model and each sampled sub-model through the one decoder forward
 * with a tape, the next-token loss (and the distillation KL of a sub-model toward the full model), the balance
 * losses on the routers, multi-token prediction on the full model, and the backward, accumulating into `g`. The training loop runs it on the main thread
 * and on data-parallel workers alike (src/train/workers.ts), so both compute the same thing.
 */
import type { MoeModel } from '../models/model.js';
import type { SubModel } from '../models/pass.js';
import { Tape } from '../models/pass.js';
import { balanceLoss, type BalanceWeights } from '../moe/balance.js';
import type { MoeSaved } from '../moe/layer.js';
import type { Grads } from '../tensor/grads.js';
import { getKernels } from '../tensor/index.js';
import { decoderBackward, type TrunkGrad } from './backward.js';
import { mtpBackward, mtpLosses } from './mtp.js';
import type { Batch } from './data.js';
import { crossEntropyBackward, crossEntropyForward, klDivergence } from './loss.js';

export interface MicroSpec {
  /** 1 / grad_accum: each micro-batch's share of the step's mean loss */
  scale: number;
  balance: Required<BalanceWeights>;
  subs: SubModel[];
  distill: number;
  /** global-batch balance: assignments per expert over the whole step, by decoder layer, and its token count */
  globalCounts: Map<number, Float64Array> | null;
  globalTokens: number;
  /** multi-token prediction on the full model (not the sub-models): loss + weight · mean over depths of its CE */
  mtp: { weight: number } | null;
}

export interface MicroResult {
  loss: number;
  subLoss: number;
  aux: number;
  /** the mean multi-token prediction CE over depths (unweighted by mtp.weight; 0 without) */
  mtpLoss: number;
  /** the full model's assignments per expert, by decoder layer */
  counts: Map<number, Float64Array>;
}

function balanceGrad(model: MoeModel, b: Batch, scale: number, s: MicroSpec, aux: { v: number }) {
  const w = { switch: s.balance.switch * scale, seq: s.balance.seq * scale, global: s.balance.global * scale, zloss: s.balance.zloss * scale };
  if (!w.switch && !w.seq && !w.global && !w.zloss) return undefined;
  return (layer: number, saved: MoeSaved) => {
    const gc = s.globalCounts?.get(layer);
    const r = balanceLoss(model.desc.moe, saved.r, b.B * b.T, b.T, w, gc ? { counts: gc, tokens: s.globalTokens } : undefined);
    aux.v += r.loss;
    return r.dlogits;
  };
}

export function microStep(model: MoeModel, b: Batch, s: MicroSpec, g: Grads): MicroResult {
  const k = getKernels(), d = model.desc, V = d.vocab, N = b.B * b.T;
  const out: MicroResult = { loss: 0, subLoss: 0, aux: 0, mtpLoss: 0, counts: new Map() };
  if (b.count === 0) return out;
  const aux = { v: 0 };
  // the full model
  const tape = new Tape();
  const logits = model.forward(b.ids, b.B, b.T, { tape, docStart: b.docStart });
  const ce = crossEntropyForward(logits, b.targets, N, V);
  out.loss = ce.loss * s.scale;
  const dl = new Float32Array(N * V);
  crossEntropyBackward(dl, ce.s);
  if (s.scale !== 1) for (let i = 0; i < dl.length; i++) dl[i] *= s.scale;
  tape.layers.forEach((lt, l) => {
    if (!lt?.moe) return;
    const acc = new Float64Array(d.moe.experts);
    for (const e of lt.moe.r.experts) acc[e]++;
    out.counts.set(l, acc);
  });
  // multi-token prediction: its heads' backward first, the trunk's extra gradient into the trunk's backward
  let extra: TrunkGrad | undefined;
  if (s.mtp) {
    const D = model.weights.mtp ? model.weights.mtp.modules.length + model.weights.mtp.group.length : 1;
    const r = mtpLosses(model, tape, b.targets, (s.scale * s.mtp.weight) / D);
    out.mtpLoss = (r.losses.reduce((a, x) => a + x, 0) / D) * s.scale;
    extra = mtpBackward(model, model.weights.mtp!, r.s, r.dlogits, g);
  }
  decoderBackward(k, model, tape, dl, g, balanceGrad(model, b, s.scale, s, aux), extra);
  // the sampled sub-models, each weighted 1 / samples
  for (const sub of s.subs) {
    const st = new Tape();
    const sl = model.forward(b.ids, b.B, b.T, { tape: st, sub, docStart: b.docStart });
    const sce = crossEntropyForward(sl, b.targets, N, V);
    const w = s.scale / s.subs.length;
    out.subLoss += sce.loss * w;
    const sdl = new Float32Array(N * V);
    crossEntropyBackward(sdl, sce.s);
    for (let i = 0; i < sdl.length; i++) sdl[i] *= w;
    if (s.distill > 0) {
      const kl = klDivergence(sl, logits, b.targets, N, V);
      out.subLoss += s.distill * kl.loss * w;
      for (let i = 0; i < sdl.length; i++) sdl[i] += s.distill * w * kl.dlogits[i];
    }
    decoderBackward(k, model, st, sdl, g, balanceGrad(model, b, w, s, aux));
  }
  out.aux = aux.v;
  return out;
}
