/**
 * Phi-3.5-MoE (phimoe): Mixtral's layout (per-expert w1/w3/w2 under block_sparse_moe, router `gate`) with LayerNorms
 * (weight and bias; eps rms_norm_eps), biases on every attention projection (`attention_bias`) and on the LM head
 * (`lm_head_bias`), longrope RoPE (short factors and short_mscale within original_max_position_embeddings) and
 * the sparsemixer router (top-2, router_jitter_noise as its window; moe/router.ts). Inference only.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, loadPerExpertMoe, moeDefaults, norms, perExpert, windows, type PerExpertNames } from './common.js';

const moeNames = (_d: unknown, l: number): PerExpertNames => ({ block: `model.layers.${l}.block_sparse_moe`, proj: ['w1', 'w3', 'w2'] });

export const phimoe: ArchSpec = {
  name: 'phimoe',
  modelTypes: ['phimoe'],
  describe(c: ConfigReader) {
    const bias = c.bool('attention_bias', false);
    const attention = gqa(c, { qkvBias: bias, oBias: bias });
    const L = c.int('num_hidden_layers');
    const K = c.int('num_experts_per_tok');
    c.ensure(K === 2, `key 'num_experts_per_tok' must be 2 (PhiMoE's sparsemixer router picks two experts), got ${K}`);
    const d = baseDesc(c, 'phimoe', attention, c.rope(attention.headDim, false), {
      layers: windows(c, L, c.int('sliding_window', 0) || null).map((w) => ({ mlp: 'moe' as const, slidingWindow: w })),
      denseFfn: c.int('intermediate_size'),
      moe: moeDefaults({
        experts: c.int('num_local_experts'), topK: K, expertFfn: c.int('intermediate_size'), router: 'sparsemixer',
        jitterEps: c.num('router_jitter_noise', 0.01, { min: 0, max: 1 }),
      }),
    });
    d.norm = 'layer';
    d.lmHeadBias = c.bool('lm_head_bias', false);
    return d;
  },
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`;
    return { ...norms(src, d, p), attn: loadGqa(src, d, p), moe: loadPerExpertMoe(src, d, moeNames(d, l)) };
  },
  ...perExpert(moeNames),
};
