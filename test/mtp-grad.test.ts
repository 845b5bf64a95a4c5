/**
 * Multi-token prediction gradients (src/models/mtp.ts, src/train/mtp.ts): finite differences of the MTP weights and of
 * the trunk's extra gradient, for DeepSeek-V3's modules (MLA + MoE and GQA + MoE blocks) and the next-group heads.
 * The trainer with MTP (checkpoints, resume, mtp off = main's curve) is test/mtp.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeRandomCheckpoint } from '../src/models/synth.js';
import { TrainableModel } from '../src/train/model.js';
import { maxAbsDiff, rng, scratchDir, fdAtTopEntries } from './helpers.js';
import { DEEPSEEK, QWEN } from './mtp-configs.js';

const ROOT = path.resolve(__dirname, '..');
const tmp = scratchDir('moekit-mtp-grad-');

/** Granite's scalings away from 1: the MTP paths through the embedding multiplier and the logit scale */
const GRANITE = { ...JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures/hf-tiny-moe/granitemoe/config.json'), 'utf8')), embedding_multiplier: 1.7, logits_scaling: 2.5, bos_token_id: 1, eos_token_id: 2 };

/** a random checkpoint with MTP weights of `kind` (depth D) */
function mtpModel(name: string, config: Record<string, unknown>, kind: 'deepseek' | 'group', D: number): TrainableModel {
  const dir = path.join(tmp(), name);
  const key = kind === 'deepseek' ? 'num_nextn_predict_layers' : 'next_group_heads';
  writeRandomCheckpoint(dir, { ...config, [key]: D }, 5, 'F32', { std: 0.1 }, kind);
  return TrainableModel.load(dir, { mtp: kind });
}

function ids(B: number, T: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: B * T }, () => 3 + Math.floor(r() * (V - 3)));
}

/**
 * For each named parameter, the entries with the largest gradient: the central difference of f against `grad`.
 * Returns the worst |fd − grad| relative to the tensor's largest |grad|. The embedding's step is smaller: its rows feed
 * every router directly, and a step of 1e-2 there flips top-k choices.
 */
function worstFd(tm: TrainableModel, names: string[], f: () => number, grad: (n: string) => Float32Array, h = 1e-2): { name: string; rel: number }[] {
  return names.map((name) => {
    const p = tm.params.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    if (/embed_tokens/.test(name)) h = 1e-3;
    const { top, rel } = fdAtTopEntries(p, grad(name), f, h);
    expect(top, `${name}: a gradient`).toBeGreaterThan(0);
    return { name, rel };
  });
}

describe('multi-token prediction gradients (finite differences)', () => {
  const B = 2, T = 8, W = 1;
  const cases: [string, Record<string, unknown>, 'deepseek' | 'group', number, string[], string[]][] = [
    ['deepseek_v3 (MLA, MoE block)', DEEPSEEK, 'deepseek', 2, [
      'model.layers.3.eh_proj.weight', 'model.layers.3.enorm.weight', 'model.layers.3.hnorm.weight', 'model.layers.3.shared_head.norm.weight',
      'model.layers.3.self_attn.q_a_proj.weight', 'model.layers.3.self_attn.kv_b_proj.weight', 'model.layers.3.mlp.gate.weight',
      'model.layers.3.mlp.shared_experts.down_proj.weight', 'model.layers.4.eh_proj.weight', 'model.layers.4.hnorm.weight',
      'model.layers.4.input_layernorm.weight', 'model.layers.4.self_attn.o_proj.weight',
    ], ['model.layers.2.self_attn.o_proj.weight', 'model.layers.0.mlp.down_proj.weight', 'model.embed_tokens.weight', 'lm_head.weight']],
    ['qwen3_moe (GQA, MoE block)', QWEN, 'deepseek', 1, [
      'model.layers.3.eh_proj.weight', 'model.layers.3.enorm.weight', 'model.layers.3.self_attn.k_proj.weight', 'model.layers.3.self_attn.q_norm.weight',
      'model.layers.3.post_attention_layernorm.weight',
    ], ['model.layers.1.self_attn.v_proj.weight', 'model.embed_tokens.weight', 'lm_head.weight']],
    ['granitemoe next-group heads (scaled embeddings and logits)', GRANITE, 'group', 1, [
      'model.next_group.0.proj.weight', 'model.next_group.0.norm.weight',
    ], ['model.norm.weight', 'model.embed_tokens.weight']],
    ['granitemoe MTP module (scaled embeddings and logits)', GRANITE, 'deepseek', 1, [
      'model.layers.3.eh_proj.weight', 'model.layers.3.enorm.weight', 'model.layers.3.hnorm.weight',
    ], ['model.layers.2.self_attn.o_proj.weight', 'model.embed_tokens.weight', 'lm_head.weight']],
    ['qwen3_moe next-group heads', QWEN, 'group', 2, [
      'model.next_group.0.proj.weight', 'model.next_group.0.norm.weight', 'model.next_group.1.proj.weight', 'model.next_group.1.norm.weight',
    ], ['model.norm.weight', 'model.layers.2.self_attn.o_proj.weight', 'model.embed_tokens.weight', 'lm_head.weight']],
  ];
  it.each(cases)('%s: the MTP weights, and the trunk\'s extra gradient', (label, config, kind, D, own, trunk) => {
    const tm = mtpModel(label.replace(/\W+/g, '-'), config, kind, D);
    const x = ids(B, T, tm.model.desc.vocab, 11);
    const full = tm.forwardBackwardMtp(x, B, T, W);
    expect(full.mtp).toBeGreaterThan(0);
    // the objective: CE + W · mean_k CE_k, held to finite differences on the MTP weights and the trunk
    const lossOf = () => tm.forwardBackwardMtp(x, B, T, W).loss;
    for (const r of worstFd(tm, [...own, ...trunk], lossOf, (n) => full.grads.get(n)!)) expect(r.rel, r.name).toBeLessThan(2e-2);
    // the trunk's extra gradient alone: (gradient at W) − (gradient at 0) = W · d mtp / dθ
    const plain = tm.forwardBackwardMtp(x, B, T, 0);
    const extra = (n: string) => full.grads.get(n)!.map((v, i) => (v - plain.grads.get(n)![i]) / W);
    // (a smaller step: a trunk weight moves every token's routing in the MTP block's MoE)
    for (const r of worstFd(tm, trunk, () => tm.forwardBackwardMtp(x, B, T, 0).mtp, extra, 1e-3)) expect(r.rel, `${r.name} (MTP part)`).toBeLessThan(2e-2);
    // at weight 0 the MTP weights get no gradient and the trunk the plain next-token one
    for (const n of own) expect(plain.grads.get(n)!.every((v) => v === 0), n).toBe(true);
    const ref = tm.forwardBackward(x, B, T);
    for (const n of trunk) expect(maxAbsDiff(plain.grads.get(n)!, ref.grads.get(n)!), n).toBe(0);
    expect(plain.ce).toBe(ref.loss);
    // DeepSeek's modules start from the residual stream before the final norm: that norm gets no MTP gradient
    if (kind === 'deepseek') expect(extra('model.norm.weight').every((v) => v === 0)).toBe(true);
  }, 60_000);
});
