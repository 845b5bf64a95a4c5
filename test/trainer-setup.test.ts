/**
 * Setting up a training run (src/train/loop.ts's Trainer constructor and checkpoints()): which checkpoints count
 * (complete ones, by step as a number), the random initialisation written once into out/init (with the built-in
 * tokenizer, or data.tokenizer's files only), the MTP module count it declares (mtp.depth, else the config's own,
 * else 1), text files as the data, and the refusals (nothing to resume, no selection bias for aux_free, no
 * tokenizer, an mtp.depth the checkpoint does not declare), each naming the problem.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../src/io/config.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { resolveConfig } from '../src/train/config.js';
import { Packer, textFileSource } from '../src/train/data.js';
import { checkpoints, Trainer } from '../src/train/loop.js';
import { TrainableModel, untrainable } from '../src/train/model.js';
import { microStep } from '../src/train/micro.js';
import { writeRandomCheckpoint } from '../src/models/synth.js';
import { Grads } from '../src/tensor/grads.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const TOK = path.resolve(__dirname, '../examples/demo-moe');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-trainer-setup-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const QWEN = {
  architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', vocab_size: 104, hidden_size: 16, intermediate_size: 32,
  moe_intermediate_size: 16, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, num_experts: 4,
  num_experts_per_tok: 2, norm_topk_prob: true, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 10000,
  bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: false,
};
const cfgOf = (name: string, raw: Record<string, unknown>) => resolveConfig({ data: { seq_len: 16 }, train: { steps: 1, batch_size: 1 }, out: path.join(tmp, name), ...raw }, tmp);
function refusal(f: () => unknown): { message: string; file?: string } {
  try { f(); } catch (e) { return { message: (e as Error).message, file: (e as { file?: string }).file }; }
  throw new Error('nothing was refused');
}

describe('checkpoints()', () => {
  it('the complete checkpoint-<step> directories, by step as a number', () => {
    const out = path.join(tmp, 'cks');
    expect(checkpoints(out)).toEqual([]);
    for (const [d, complete] of [['checkpoint-10', true], ['checkpoint-2', true], ['checkpoint-5', false], ['checkpoint-x', true], ['xcheckpoint-3', true], ['checkpoint-7.tmp-1', true]] as const) {
      fs.mkdirSync(path.join(out, d), { recursive: true });
      if (complete) fs.writeFileSync(path.join(out, d, 'trainer_state.json'), '{}');
    }
    expect(checkpoints(out)).toEqual([{ step: 2, dir: path.join(out, 'checkpoint-2') }, { step: 10, dir: path.join(out, 'checkpoint-10') }]);
  });
});

describe('a run\'s source checkpoint', () => {
  it('a random initialisation is written once into out/init, with the built-in tokenizer', () => {
    const cfg = cfgOf('rand', { model: { config: QWEN, init_seed: 3 } });
    new Trainer(cfg);
    const init = path.join(cfg.out, 'init');
    expect(fs.readdirSync(init).sort()).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json']));
    expect(fs.readdirSync(cfg.out).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const t0 = fs.statSync(path.join(init, 'model.safetensors')).mtimeMs;
    const again = new Trainer(cfg);
    expect(fs.statSync(path.join(init, 'model.safetensors')).mtimeMs).toBe(t0); // not written again
    expect(again.tok.encode('ab', false)).toEqual(loadTokenizer(init)!.encode('ab', false));
  });

  it('with data.tokenizer, its tokenizer files (only) are copied into out/init', () => {
    const cfg = cfgOf('tok', { model: { config: QWEN }, data: { seq_len: 16, tokenizer: TOK } });
    new Trainer(cfg);
    const init = path.join(cfg.out, 'init');
    const want = fs.readdirSync(TOK).filter((f) => /^(tokenizer.*|special_tokens_map)\.json$/.test(f));
    expect(want.length).toBeGreaterThanOrEqual(2);
    for (const f of want) expect(fs.readFileSync(path.join(init, f), 'utf8'), f).toBe(fs.readFileSync(path.join(TOK, f), 'utf8'));
    expect(fs.readdirSync(init).filter((f) => f.endsWith('.json') && f !== 'config.json' && f !== 'generation_config.json').sort()).toEqual(want.sort());
    expect(JSON.parse(fs.readFileSync(path.join(init, 'config.json'), 'utf8')).hidden_size).toBe(16); // the run's model, not the tokenizer dir's
  });

  it.each([
    ['deepseek', undefined, {}, 'num_nextn_predict_layers', 1],
    ['deepseek', 2, {}, 'num_nextn_predict_layers', 2],
    ['deepseek', undefined, { num_nextn_predict_layers: 3 }, 'num_nextn_predict_layers', 3],
    ['group', undefined, {}, 'next_group_heads', 1],
    ['group', 2, { next_group_heads: 4 }, 'next_group_heads', 2],
  ] as const)('mtp %s, depth %s over %j: the initialisation declares %s = %i', (kind, depth, extra, key, n) => {
    const name = `mtp-${kind}-${depth}-${Object.keys(extra).length}`;
    const cfg = cfgOf(name, { model: { config: { ...QWEN, ...extra } }, mtp: { kind, ...(depth ? { depth } : {}) } });
    const t = new Trainer(cfg);
    expect(readConfig(path.join(cfg.out, 'init')).raw[key]).toBe(n);
    const w = t.tm.model.weights.mtp!;
    expect(w.modules.length + w.group.length).toBe(n);
  });

  it('MTP on a checkpoint without its modules: out/init is the checkpoint plus fresh ones (its declared count, else 1), once', () => {
    const from = path.join(FIX, 'deepseek_v3');
    const declared = JSON.parse(fs.readFileSync(path.join(from, 'config.json'), 'utf8')).num_nextn_predict_layers ?? 0;
    const cfg = cfgOf('mtp-from', { model: { from }, data: { seq_len: 16, tokenizer: TOK }, mtp: { kind: 'deepseek' } });
    const t = new Trainer(cfg);
    const init = path.join(cfg.out, 'init');
    expect(t.tm.model.weights.mtp!.modules.length).toBe(declared || 1);
    expect(readConfig(init).raw.num_nextn_predict_layers).toBe(declared || 1);
    const t0 = fs.statSync(path.join(init, 'config.json')).mtimeMs;
    new Trainer(cfg);
    expect(fs.statSync(path.join(init, 'config.json')).mtimeMs).toBe(t0);
    expect(fs.readdirSync(cfg.out).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('text files as the data: the first step trains on their packed paragraphs', async () => {
    const f = path.join(tmp, 'data.txt');
    fs.writeFileSync(f, 'the cat sat\n\non the mat\n\nand so on and so forth');
    const cfg = cfgOf('text', { model: { from: path.join(FIX, 'mixtral') }, data: { source: 'text', files: [f], seq_len: 16, tokenizer: TOK }, train: { steps: 1, batch_size: 2, seed: 5, clip: 0 }, balance: { switch: 0 } });
    const t = new Trainer(cfg);
    const d = t.tm.model.desc;
    const b = new Packer(textFileSource([f], 5), loadTokenizer(TOK)!, 16, { bos: d.bosTokenId, eos: d.eosTokenIds[0], pad: d.padTokenId ?? d.eosTokenIds[0] }).batch(2);
    const r = microStep(t.tm.model, b, { scale: 1, balance: cfg.balance, subs: [], distill: 0, globalCounts: null, globalTokens: 32, mtp: null }, new Grads(t.tm.params.values()));
    expect((await t.trainStep()).loss).toBe(r.loss);
  });
});

describe('refusals', () => {
  it('nothing to resume; aux_free on a router without a selection bias; no tokenizer; an undeclared mtp.depth', () => {
    const mixtral = path.join(FIX, 'mixtral');
    const a = cfgOf('resume', { model: { from: mixtral }, data: { seq_len: 16, tokenizer: TOK } });
    expect(refusal(() => new Trainer(a, { resume: true }))).toEqual({ message: '--resume: no complete checkpoint to resume from', file: a.out });
    expect(refusal(() => new Trainer(cfgOf('auxfree', { model: { from: mixtral }, data: { seq_len: 16, tokenizer: TOK }, balance: { aux_free: 0.01 } }))).message)
      .toBe('balance.aux_free: the mixtral router has no selection bias to update (deepseek_v3 and ernie4_5_moe have one)');
    expect(refusal(() => new Trainer(cfgOf('notok', { model: { from: mixtral } })))).toEqual({ message: 'no tokenizer.json (give data.tokenizer, or start from a checkpoint with one)', file: mixtral });
    // a checkpoint with one MTP module, asked for two
    const one = path.join(tmp, 'one-mtp');
    writeRandomCheckpoint(one, { ...QWEN, num_nextn_predict_layers: 1 }, 2, 'F32', { std: 0.02 }, 'deepseek');
    for (const [kind, key] of [['deepseek', 'num_nextn_predict_layers']] as const) {
      const c = cfgOf(`depth-${kind}`, { model: { from: one }, data: { seq_len: 16, tokenizer: TOK }, mtp: { kind, depth: 2 } });
      expect(refusal(() => new Trainer(c))).toEqual({ message: `mtp.depth 2: the checkpoint's config declares 1 (${key})`, file: one });
    }
    const g = path.join(tmp, 'one-group');
    writeRandomCheckpoint(g, { ...QWEN, next_group_heads: 1 }, 2, 'F32', { std: 0.02 }, 'group');
    const cg = cfgOf('depth-group', { model: { from: g }, data: { seq_len: 16, tokenizer: TOK }, mtp: { kind: 'group', depth: 3 } });
    expect(refusal(() => new Trainer(cg))).toEqual({ message: 'mtp.depth 3: the checkpoint\'s config declares 1 (next_group_heads)', file: g });
  });
});

describe('what the trainer cannot train', () => {
  it('the fixtures it refuses, each with its reason; every flag of a description on its own', () => {
    for (const [arch, why] of [
      ['phimoe', 'its LayerNorms have no backward here (RMSNorm only)'],
      ['qwen3_next', 'its Gated DeltaNet layers have no backward here'],
      ['llama4_text', 'its MoE blocks (sigmoid top-k weights on the experts\' inputs) have no backward here'],
    ]) {
      const dir = path.join(FIX, arch);
      expect(refusal(() => TrainableModel.load(dir))).toEqual({ message: `the trainer cannot train this ${arch} model: ${why}`, file: path.join(dir, 'config.json') });
    }
    const d = TrainableModel.load(path.join(FIX, 'mixtral')).model.desc;
    expect(untrainable(d)).toBeNull();
    expect(untrainable({ ...d, attention: { ...d.attention, outputGate: true } })).toBe('its gated attention has no backward here');
    expect(untrainable({ ...d, normPlusOne: true })).toBe('its zero-centred norms are loaded as 1 + w, which the trainer would save as w');
    expect(untrainable({ ...d, moe: { ...d.moe, router: 'sparsemixer' } })).toBe('the sparsemixer router has no backward here');
    expect(untrainable({ ...d, moe: { ...d.moe, weightInput: true } })).toBe('its MoE blocks (sigmoid top-k weights on the experts\' inputs) have no backward here');
    expect(untrainable({ ...d, moe: { ...d.moe, router: 'topk_sigmoid' } })).toBe('its MoE blocks (sigmoid top-k weights on the experts\' inputs) have no backward here');
    expect(untrainable({ ...d, norm: 'layer' })).toBe('its LayerNorms have no backward here (RMSNorm only)');
  });
});
