/**
 * Multi-token prediction: extra heads trained beside the next-token loss, saved in the checkpoint. Both kinds share the
 * main model's embedding and LM head; the engine's next-token path does not read them (MoeModel.load skips them).
 *
 * DeepSeek-V3's MTP modules (arXiv 2412.19437 §2.2), `deepseek`: for depth k = 1 .. D, at position i
 *   h_i^k      = Block_k(eh_proj_k([RMSNorm_e(Emb(t_{i+k})); RMSNorm_h(h_i^{k−1})]))   h^0: the trunk's last residual
 *                                                                                     stream (before the final norm)
 *   logits_i^k = head(RMSNorm_k(h_i^k))  predicts t_{i+k+1}
 * Block_k is the architecture's own decoder layer (the description of its last one: dense or MoE, window). The
 * concatenation is [embedding; hidden], the order of DeepSeek's and vLLM's code (the paper writes the other). Positions
 * past the end (i + k ≥ T) get a zero embedding row and no target; causal attention keeps them from the rest.
 * Names (DeepSeek-V3's released checkpoints, read by vLLM's and SGLang's deepseek_mtp): module k is decoder layer
 * L + k − 1, `model.layers.{L+k−1}.` + enorm.weight [H], hnorm.weight [H], eh_proj.weight [H, 2H],
 * shared_head.norm.weight [H], the decoder layer's own tensors (input_layernorm, self_attn.*, post_attention_layernorm,
 * mlp.*), and shared_head.head.weight [V, H], embed_tokens.weight [V, H]: copies of the shared LM head and embedding,
 * written on save (as DeepSeek ships them, for loaders that read them per module) and never read.
 *
 * Next-group-of-tokens heads, `group` (an approximation of ERNIE 5.0's objective, docs/mtp.md): head g = 1 .. G over
 * the trunk's final normed hidden state hf (the LM head's input)
 *   logits_i^g = head(RMSNorm_g(W_g · hf_i))  predicts t_{i+g+1}
 * Names: `model.next_group.{g−1}.proj.weight` [H, H], `model.next_group.{g−1}.norm.weight` [H]; config key
 * `next_group_heads` = G.
 *
 * This file: the weights, their names and loading. The training forward and backward: src/train/mtp.ts.
 */
import type { ArchSpec } from './arch.js';
import type { LayerDesc, ModelDesc } from './desc.js';
import { eagerExperts, withExperts } from './expert-store.js';
import { linear, type LayerWeights, type Linear, type TensorSource } from './weights.js';

export type MtpKind = 'deepseek' | 'group';

export interface MtpModule {
  index: number; // its decoder layer index in the checkpoint: L + k − 1
  enorm: Float32Array; // [H]
  hnorm: Float32Array; // [H]
  ehProj: Linear; // [H, 2H]
  headNorm: Float32Array; // [H] shared_head.norm
  layer: LayerWeights;
  desc: LayerDesc;
}

export interface GroupHead {
  proj: Linear; // [H, H]
  norm: Float32Array; // [H]
}

export interface MtpWeights {
  kind: MtpKind;
  modules: MtpModule[]; // [D] deepseek
  group: GroupHead[]; // [G] group
}

/** the checkpoint prefix of MTP module k (1-based) */
export const mtpPrefix = (d: ModelDesc, k: number): string => `model.layers.${d.nLayers + k - 1}`;
export const groupPrefix = (g: number): string => `model.next_group.${g - 1}`;

/** how many modules (heads) of a kind the description declares */
export const mtpDepth = (d: ModelDesc, kind: MtpKind): number => (kind === 'deepseek' ? d.nextnLayers : d.groupHeads);

/** the description with the MTP modules' decoder layers appended (each the description of the last decoder layer) */
export function withMtpLayers(d: ModelDesc): ModelDesc {
  return { ...d, layers: [...d.layers, ...Array.from({ length: d.nextnLayers }, () => d.layers[d.nLayers - 1])] };
}

/** whether a checkpoint holds every module (head) of the kind its description declares (and at least one) */
export function hasMtp(src: Pick<TensorSource, 'has'>, d: ModelDesc, kind: MtpKind): boolean {
  const D = mtpDepth(d, kind);
  if (D === 0) return false;
  for (let k = 1; k <= D; k++) if (!src.has(kind === 'deepseek' ? `${mtpPrefix(d, k)}.eh_proj.weight` : `${groupPrefix(k)}.proj.weight`)) return false;
  return true;
}

/** read the modules (heads) of a kind, by Hugging Face name (the shared head and embedding copies are not read) */
export function loadMtp(arch: ArchSpec, src: TensorSource, d: ModelDesc, kind: MtpKind): MtpWeights {
  const H = d.hidden, D = mtpDepth(d, kind);
  const out: MtpWeights = { kind, modules: [], group: [] };
  if (kind === 'group') {
    for (let g = 1; g <= D; g++) {
      const p = groupPrefix(g);
      out.group.push({ proj: linear(src, `${p}.proj`, H, H, false), norm: src.get(`${p}.norm.weight`, [H]) });
    }
    return out;
  }
  const dx = withMtpLayers(d);
  for (let k = 1; k <= D; k++) {
    const p = mtpPrefix(d, k), l = d.nLayers + k - 1;
    out.modules.push({
      index: l,
      enorm: src.get(`${p}.enorm.weight`, [H]),
      hnorm: src.get(`${p}.hnorm.weight`, [H]),
      ehProj: linear(src, `${p}.eh_proj`, H, 2 * H, false),
      headNorm: src.get(`${p}.shared_head.norm.weight`, [H]),
      layer: withExperts(arch.loadLayer(src, dx, l), () => eagerExperts(arch, src, dx, l)),
      desc: dx.layers[l],
    });
  }
  return out;
}

/** the names written as copies of the shared tensors: MTP module k's LM head and embedding */
export function mtpCopies(d: ModelDesc, k: number): { head: string; embed: string } {
  const p = mtpPrefix(d, k);
  return { head: `${p}.shared_head.head.weight`, embed: `${p}.embed_tokens.weight` };
}
