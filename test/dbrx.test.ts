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
import { MoeModel } from '../src/models/model.js';
import { describeModel } from '../src/models/registry.js';
import { TrainableModel } from '../src/train/model.js';
import { maxAbsDiff } from './helpers.js';

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

  it('the trainer refuses it, saying why', () => {
    expect(() => TrainableModel.load(path.join(ROOT, 'hf-tiny-moe/dbrx'))).toThrow(/cannot train this dbrx model: its LayerNorms have no backward/);
  });

  it('extract: a sub-model checkpoint (a layer dropped, experts kept, top-k) loads as the masked pass over the source', () => {
    const dir = path.join(ROOT, 'hf-tiny-moe/dbrx');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-dbrx-'));
    try {
      const keep = { 0: [1, 3, 5, 7], 2: [0, 2, 4, 6] };
      const { config } = extractSubModel(dir, tmp, { layers: [0, 2], experts: keep, topK: 2 });
      // DbrxConfig's own keys, nested where it nests them
      expect([config.n_layers, (config.ffn_config as any).moe_num_experts, (config.ffn_config as any).moe_top_k]).toEqual([2, 4, 2]);
      expect(config.num_hidden_layers).toBeUndefined();
      const src = MoeModel.load(dir), out = MoeModel.load(tmp);
      const mask = (ids: number[]) => Uint8Array.from({ length: 8 }, (_, e) => (ids.includes(e) ? 1 : 0));
      const ids = Int32Array.from({ length: 16 }, (_, i) => (i * 37 + 5) % src.desc.vocab);
      const want = src.forward(ids, 2, 8, { sub: { layers: [0, 2], experts: [mask(keep[0]), null, mask(keep[2])], topK: 2 } });
      expect(maxAbsDiff(out.forward(ids, 2, 8), want)).toBeLessThan(1e-5);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
