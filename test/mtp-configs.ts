/** The configs the MTP tests (mtp.test.ts, mtp-grad.test.ts) build their models from. */
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
/** the deepseek_v3 fixture's config with token ids */
export const DEEPSEEK = { ...JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures/hf-tiny-moe/deepseek_v3/config.json'), 'utf8')), bos_token_id: 1, eos_token_id: 2 };
/** a tiny Qwen3-MoE */
export const QWEN = {
  architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', vocab_size: 512, hidden_size: 32, intermediate_size: 64,
  moe_intermediate_size: 32, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, num_experts: 8,
  num_experts_per_tok: 2, norm_topk_prob: true, max_position_embeddings: 256, rms_norm_eps: 1e-6, rope_theta: 10000,
  bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: false,
};
