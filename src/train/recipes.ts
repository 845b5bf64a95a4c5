/**
 * Named training recipes (`moekit train --recipe NAME`): complete configs, any field overridable with --set.
 * demo: moekit's own demo model, an elastic Qwen3-MoE-layout model (16 experts per layer, top-2) trained on the
 * built-in corpus (text and image tasks through one expert pool) in under 30 minutes on a 2-core machine.
 */
import { BOS_ID, EOS_ID, PAD_ID, VOCAB_SIZE } from '../tasks/tokenizer.js';
import { MoekitError } from '../util/errors.js';

export const DEMO_MODEL = {
  architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe',
  vocab_size: VOCAB_SIZE, hidden_size: 128, intermediate_size: 256, moe_intermediate_size: 128,
  num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32,
  num_experts: 16, num_experts_per_tok: 2, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [],
  max_position_embeddings: 512, rms_norm_eps: 1e-6, rope_theta: 10000, attention_bias: false,
  bos_token_id: BOS_ID, eos_token_id: EOS_ID, pad_token_id: PAD_ID, tie_word_embeddings: false,
  router_aux_loss_coef: 0.01, output_router_logits: false, use_sliding_window: false, torch_dtype: 'float32',
};

/** the demo's task weights (image tasks 1 each) */
export const DEMO_MIX: Record<string, number> = { add: 5, sort: 2, reverse: 2, count: 6, balanced: 6, lookup: 6, hex2bin: 2, caesar: 3 };

export const RECIPES: Record<string, () => Record<string, unknown>> = {
  demo: () => ({
    model: { config: DEMO_MODEL, init_seed: 0, init_std: 0.02 },
    // text tasks weighed up against image tasks (a text example is ~20 tokens, an image one ~85), the hard ones most,
    // and attention kept inside each packed example: the best held-out accuracy per step of the GPU sweep
    // (docs/recipe-sweep.md, "fin" rows); 5500 steps fit the 30 minutes of a quiet 2-core machine with the sub-models
    data: { source: 'builtin', seq_len: 128, mix: DEMO_MIX, doc_mask: true },
    train: { steps: 5500, batch_size: 8, grad_accum: 2, workers: 2, lr: 1e-3, min_lr: 1e-4, schedule: 'wsd', warmup: 100, decay_fraction: 0.25, weight_decay: 0.1, clip: 1.0, seed: 0 },
    balance: { switch: 0.01, zloss: 0.001 },
    elastic: { depth: [2, 3, 4], experts: [4, 8, 16], top_k: [1, 2], samples: 1, distill: 1.0 },
    checkpoint: { every: 100, keep: 2 },
    out: 'demo-run',
  }),
};

export function recipe(name: string): Record<string, unknown> {
  const r = RECIPES[name];
  if (!r) throw new MoekitError(`unknown recipe '${name}' (known: ${Object.keys(RECIPES).join(', ')})`);
  return r();
}
