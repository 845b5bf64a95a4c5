/**
 * Block quantisation of a loaded model, per tensor class, whatever the architecture: the architecture
 * file's loaders are wrapped so that what they return is quantised as it is read (one layer, one expert
 * at a time), so nothing in the model changes and the eager and lazy expert stores both see it.
 *   experts:   routed experts, shared experts and dense FFNs (gate, up, down)
 *   attention: the attention projections (q, k, v, o; MLA's q_a, q_b, kv_a, kv_b)
 *   lmHead:    the LM head and the token embedding
 * Routers, the shared-expert gate, norms and biases stay as loaded; so does a matrix whose rows are not
 * whole 32-weight blocks (the fixtures' 48-wide experts), as llama.cpp's converter also leaves them.
 */
import type { Ffn } from '../moe/types.js';
import type { Linear } from '../tensor/linear.js';
import type { Kernels } from '../tensor/kernels.js';
import { QK, quantBytes, type QuantType } from '../tensor/quant.js';
import { quantWeight, weightF32, type Weight } from '../tensor/weight.js';
import type { ArchSpec } from './arch.js';
import type { AttnWeights, LayerTensors } from './weights.js';

export type WeightClass = 'experts' | 'attention' | 'lmHead';
export type QuantPlan = Readonly<Record<WeightClass, QuantType | null>>;

/**
 * The plan `--dtype q8_0|q4_0` and `moekit quantize --type` use: q8_0 everywhere; q4_0 for experts and
 * attention with the LM head (and embedding) at q8_0, where llama.cpp's q4_0 recipe keeps more bits too.
 */
export function quantPlan(type: QuantType): QuantPlan {
  return { experts: type, attention: type, lmHead: type === 'q4_0' ? 'q8_0' : type };
}

/** W [rows, cols] quantised to `type`; unchanged when already quantised or cols is not whole blocks */
export function quantizeWeight(k: Kernels, w: Weight, rows: number, cols: number, type: QuantType | null): Weight {
  if (!type || cols % QK !== 0 || (w.dtype !== 'f32' && w.dtype !== 'bf16')) return w;
  const x = weightF32(k, w), out = new Uint8Array(quantBytes(type, rows * cols));
  k.quantize(type, out, x, rows * cols);
  return quantWeight(type, out);
}

export function quantizeLinear(k: Kernels, L: Linear, type: QuantType | null): Linear {
  return { ...L, w: quantizeWeight(k, L.w, L.out, L.in, type) };
}

export function quantizeFfn(k: Kernels, f: Ffn, type: QuantType | null): Ffn {
  return { gate: quantizeLinear(k, f.gate, type), up: quantizeLinear(k, f.up, type), down: quantizeLinear(k, f.down, type) };
}

const ATTN: (keyof AttnWeights)[] = ['q', 'k', 'v', 'o', 'qA', 'qB', 'kvA', 'kvB'];

/** a decoder layer's tensors (all but its routed experts) with the plan applied */
function quantizeAttn(k: Kernels, a: AttnWeights, plan: QuantPlan): AttnWeights {
  const attn: AttnWeights = { ...a };
  for (const key of ATTN) {
    const L = attn[key] as Linear | undefined;
    if (L) (attn as unknown as Record<string, Linear>)[key] = quantizeLinear(k, L, plan.attention);
  }
  return attn;
}

export function quantizeLayer(k: Kernels, t: LayerTensors, plan: QuantPlan): LayerTensors {
  const attn = t.attn && quantizeAttn(k, t.attn, plan);
  // a shortcut-MoE layer's second sublayer (LongCat-Flash) as the first
  const second = t.second && { ...t.second, attn: quantizeAttn(k, t.second.attn, plan), dense: quantizeFfn(k, t.second.dense, plan.experts) };
  // a mixture of attention heads' (JetMoE) expert projections go with the attention's; its router stays as the MoE routers do
  if (attn?.moa) {
    const q = (L: Linear) => quantizeLinear(k, L, plan.attention);
    attn.moa = { ...attn.moa, q: attn.moa.q.map(q), o: attn.moa.o.map(q) };
  }
  // a Gated DeltaNet or lightning layer's projections go with the attention's
  const dn = t.deltanet;
  const deltanet = dn && { ...dn, qkvz: quantizeLinear(k, dn.qkvz, plan.attention), ba: quantizeLinear(k, dn.ba, plan.attention), out: quantizeLinear(k, dn.out, plan.attention) };
  const lt = t.lightning;
  const lightning = lt && { ...lt, qkv: quantizeLinear(k, lt.qkv, plan.attention), gate: quantizeLinear(k, lt.gate, plan.attention), out: quantizeLinear(k, lt.out, plan.attention) };
  // and a Mamba-2 layer's
  const mb = t.mamba2;
  const mamba2 = mb && { ...mb, inProj: quantizeLinear(k, mb.inProj, plan.attention), out: quantizeLinear(k, mb.out, plan.attention) };
  return {
    ...t, attn, deltanet, lightning, mamba2, ...(second ? { second } : {}),
    dense: t.dense && quantizeFfn(k, t.dense, plan.experts),
    moe: t.moe && { ...t.moe, shared: t.moe.shared && quantizeFfn(k, t.moe.shared, plan.experts) },
  };
}

/** the architecture's loaders, quantising what they return by the plan */
export function quantizingArch(k: Kernels, arch: ArchSpec, plan: QuantPlan): ArchSpec {
  return {
    ...arch,
    loadLayer: (src, d, l) => quantizeLayer(k, arch.loadLayer(src, d, l), plan),
    expert: (src, d, l, e) => quantizeFfn(k, arch.expert(src, d, l, e), plan.experts),
  };
}
