/**
 * DBRX's config as published (attn_config / ffn_config nested, DbrxConfig's key names), the options its fixture does
 * not exercise, and what is refused by name.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigReader } from '../src/io/config.js';
import { extractSubModel } from '../src/models/extract.js';
import { describeModel } from '../src/models/registry.js';
import { TrainableModel } from '../src/train/model.js';

const ROOT = path.resolve(__dirname, '../fixtures');
const published = () => JSON.parse(fs.readFileSync(path.join(ROOT, 'configs/dbrx-instruct.json'), 'utf8')) as Record<string, any>;
const describe_ = (raw: Record<string, unknown>) => describeModel(new ConfigReader(raw, 'config.json')).desc;

describe('dbrx config', () => {
  it('reads the published config: sizes under DbrxConfig\'s names, RoPE theta and clip_qkv from attn_config, the MoE from ffn_config', () => {
    const d = describe_(published());
    expect([d.hidden, d.nLayers, d.vocab, d.maxPositions]).toEqual([6144, 40, 100352, 32768]);
    expect([d.attention.nHeads, d.attention.nKvHeads, d.attention.headDim, d.attention.clipQkv]).toEqual([48, 8, 128, 8]);
    expect(d.rope.theta).toBe(500000);
    expect([d.moe.experts, d.moe.topK, d.moe.expertFfn, d.moe.router, d.moe.normTopK]).toEqual([16, 4, 10752, 'softmax_topk', true]);
    expect([d.norm, d.rmsEps, d.tieEmbeddings]).toEqual(['layer_nobias', 1e-5, false]);
  });

  it('transformers 5\'s rope_parameters win over attn_config.rope_theta; moe_normalize_expert_weights null: no renormalisation; clip_qkv null: no clamp', () => {
    const c = published();
    c.rope_parameters = { rope_type: 'default', rope_theta: 10000 };
    c.ffn_config.moe_normalize_expert_weights = null;
    c.attn_config.clip_qkv = null;
    const d = describe_(c);
    expect(d.rope.theta).toBe(10000);
    expect(d.moe.normTopK).toBe(false);
    expect(d.attention.clipQkv).toBeNull();
  });

  it('names the nested key of a value it cannot run', () => {
    const bad = (f: (c: Record<string, any>) => void) => { const c = published(); f(c); return () => describe_(c); };
    expect(bad((c) => { c.ffn_config.moe_normalize_expert_weights = 2; })).toThrow(/'ffn_config\.moe_normalize_expert_weights' must be 1 .* got 2/);
    expect(bad((c) => { c.ffn_config.ffn_act_fn = { name: 'gelu' }; })).toThrow(/'ffn_config\.ffn_act_fn' must be \{"name": "silu"\}/);
    expect(bad((c) => { c.attn_config.kv_n_heads = 5; })).toThrow(/'attn_config\.kv_n_heads' \(5\) must divide n_heads \(48\)/);
    expect(bad((c) => { c.attn_config = [1]; })).toThrow(/key 'attn_config' must be an object/);
    expect(bad((c) => { c.ffn_config.moe_top_k = 'four'; })).toThrow(/key 'ffn_config\.moe_top_k' must be a finite number/);
    expect(bad((c) => { c.tie_word_embeddings = true; })).toThrow(/'tie_word_embeddings' must be false/);
  });

  it('the trainer and extract refuse it, saying why', () => {
    const dir = path.join(ROOT, 'hf-tiny-moe/dbrx');
    expect(() => TrainableModel.load(dir)).toThrow(/cannot train this dbrx model: its LayerNorms have no backward/);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-dbrx-'));
    try {
      expect(() => extractSubModel(dir, tmp, { layers: [0, 2] })).toThrow(/extracting from a dbrx checkpoint is not supported: DBRX checkpoints/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
