// Field-by-field checks of src/plan/spec.ts: every validation branch with exactly one thing wrong in a small valid
// spec (exact message and the field the MoekitError names), the boundary of every limit, every default, every derived
// value and the preset lookups. Expected values are written out by hand from spec.ts / models.ts / hardware.ts.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  DEFAULT_EXPERT_LOAD_CV, PLAN_LIMITS, int, layoutProblem, loadSpec, readSpecFile, resolveModel, resolveParallel,
  resolveSpec, resolveTraining, validateParallel, type Parallel,
} from '../../src/plan/spec.js';
import { MoekitError } from '../../src/util/errors.js';
import { errorOf } from './helpers.js';

type Raw = Record<string, unknown>;

/** a small valid MoE spec: 4 layers, 4 heads, 4 experts top-2, 8 H100s, everything else defaulted */
const base = (): Raw => ({
  model: { layers: 4, hidden: 64, heads: 4, vocab: 100, experts: 4, top_k: 2, expert_ffn: 32 },
  hardware: { preset: 'h100', devices: 8 },
  training: { seq_len: 128, global_batch: 16 },
});
/** the same with a dense model (no experts, 128-wide FFN) */
const denseModel = (): Raw => ({ layers: 4, hidden: 64, heads: 4, vocab: 100, dense_ffn: 128 });

/** base() with `patch` merged into one section (a section base() lacks starts empty) */
function vary(section: string, patch: Raw, from: Raw = base()): Raw {
  const prev = from[section];
  from[section] = { ...(typeof prev === 'object' && prev !== null ? (prev as Raw) : {}), ...patch };
  return from;
}
/** base() with `section` replaced whole (or deleted with undefined) */
function replace(section: string, value: unknown): Raw {
  const b = base();
  if (value === undefined) delete b[section];
  else b[section] = value;
  return b;
}
/** base() with one key of a section deleted */
function drop(section: string, key: string): Raw {
  const b = base();
  const s = { ...(b[section] as Raw) };
  delete s[key];
  b[section] = s;
  return b;
}

function expectError(raw: Raw, file: string, message: string, opts: { template?: boolean } = {}): void {
  const e = errorOf(() => resolveSpec(raw, 'spec', opts));
  expect(e.message).toBe(message);
  expect(e.file).toBe(file);
}

const intMsg = (min: number, max: number, got: string) => `must be an integer in [${min}, ${max}] (got ${got})`;
const numMsg = (min: number, max: number, got: string) => `must be a number in [${min}, ${max}] (got ${got})`;

// ---------------------------------------------------------------------------------------------------------------
describe('int: an exact integer in [min, PLAN_LIMITS[where]]', () => {
  // every limit written out by hand from the PLAN_LIMITS table
  const limits: [string, number][] = [
    ['model.layers', 4096], ['model.hidden', 1048576], ['model.heads', 65536], ['model.kv_heads', 65536],
    ['model.head_dim', 65536], ['model.vocab', 16777216], ['model.dense_layers', 4096], ['model.dense_ffn', 4194304],
    ['model.experts', 65536], ['model.shared_experts', 4096], ['model.shared_ffn', 4194304], ['model.top_k', 65536],
    ['model.expert_ffn', 4194304], ['model.mtp_layers', 64], ['model.q_lora_rank', 65536], ['model.kv_lora_rank', 65536],
    ['model.qk_nope_head_dim', 65536], ['model.qk_rope_head_dim', 65536], ['model.v_head_dim', 65536],
    ['model.sliding_window', 16777216], ['model.window_layers', 4096], ['hardware.devices', 1048576],
    ['parallel.tp', 1048576], ['parallel.pp', 1048576], ['parallel.vpp', 4096], ['parallel.ep', 1048576],
    ['parallel.etp', 1048576], ['parallel.cp', 1048576], ['parallel.dp', 1048576], ['parallel.zero', 3],
    ['training.seq_len', 16777216], ['training.micro_batch', 1048576], ['training.global_batch', 1073741824],
    ['training.node_limit', 1048576],
  ];
  it('the table has exactly these limits', () => {
    expect(PLAN_LIMITS).toEqual(Object.fromEntries(limits));
  });
  it.each(limits)('%s: the limit %d passes, one more fails naming the field', (where, max) => {
    expect(int(max, where)).toBe(max);
    const e = errorOf(() => int(max + 1, where));
    expect(e.message).toBe(intMsg(1, max, String(max + 1)));
    expect(e.file).toBe(where);
  });
  it('a field not in the table is limited to 2^30 = 1073741824', () => {
    expect(int(2 ** 30, 'training.other')).toBe(1073741824);
    expect(errorOf(() => int(2 ** 30 + 1, 'training.other')).message).toBe(intMsg(1, 1073741824, '1073741825'));
  });
  it('min defaults to 1: 1 passes, 0 fails; an explicit min 0 lets 0 through and refuses -1', () => {
    expect(int(1, 'model.layers')).toBe(1);
    expect(errorOf(() => int(0, 'model.layers')).message).toBe(intMsg(1, 4096, '0'));
    expect(int(0, 'model.layers', 0)).toBe(0);
    expect(errorOf(() => int(-1, 'model.layers', 0)).message).toBe(intMsg(0, 4096, '-1'));
    expect(int(5, 'model.layers', 5)).toBe(5);
    expect(errorOf(() => int(4, 'model.layers', 5)).message).toBe(intMsg(5, 4096, '4'));
  });
  it.each([
    ['a string', '4', '"4"'],
    ['a fraction', 1.5, '1.5'],
    ['2^53 (not a safe integer)', 2 ** 53, '9007199254740992'],
    ['1e308', 1e308, '1e+308'],
    ['NaN', NaN, 'null'],
    ['Infinity', Infinity, 'null'],
    ['null', null, 'null'],
    ['a boolean', true, 'true'],
    ['undefined', undefined, 'undefined'],
  ])('refuses %s', (_what, v, got) => {
    const e = errorOf(() => int(v, 'training.seq_len'));
    expect(e.message).toBe(intMsg(1, 16777216, got));
    expect(e.file).toBe('training.seq_len');
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('resolveSpec: sections', () => {
  it('returns the seven parts; devices from hardware.devices; no sweep section -> undefined', () => {
    const s = resolveSpec(base());
    expect(Object.keys(s).sort()).toEqual(['devices', 'given', 'hardware', 'model', 'parallel', 'sweep', 'training']);
    expect(s.devices).toBe(8);
    expect(s.sweep).toBeUndefined();
    expect(s.given).toEqual(new Set());
  });
  it('accepts the sections sweep, name and __dir besides the four', () => {
    const sweep = { layers: [2, 4] };
    const s = resolveSpec({ ...base(), name: 'run', __dir: '.', sweep });
    expect(s.sweep).toBe(sweep);
  });
  it('sweep: null is no sweep', () => {
    expect(resolveSpec({ ...base(), sweep: null }).sweep).toBeUndefined();
  });
  it.each([
    ['a number', 5], ['a string', 'layers'], ['an array', [1, 2]],
  ])('sweep that is %s is refused', (_w, v) => {
    expectError({ ...base(), sweep: v }, 'sweep', 'must be a mapping (layers, hidden, experts, top_k, expert_ffn, ...)');
  });
  it('an unknown section names the section after `where`, "spec" by default', () => {
    const d = errorOf(() => resolveSpec({ ...base(), extra: 1 }));
    expect(d.file).toBe('spec: extra');
    expectError({ ...base(), trainig: {} }, 'spec: trainig', "unknown section 'trainig'");
    const e = errorOf(() => resolveSpec({ ...base(), extra: 1 }, 'my.yaml'));
    expect(e.message).toBe("unknown section 'extra'");
    expect(e.file).toBe('my.yaml: extra');
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('resolveModel: defaults and derived values', () => {
  it('a minimal MoE model: every default filled in', () => {
    expect(resolveSpec(base()).model).toStrictEqual({
      name: 'custom', layers: 4, hidden: 64, heads: 4,
      kv_heads: 4, // = heads
      head_dim: 16, // hidden / heads = 64 / 4
      attention: 'gqa', // no kv_lora_rank
      q_lora_rank: 0, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0,
      vocab: 100, dense_layers: 0, dense_ffn: 0, experts: 4, shared_experts: 0, shared_ffn: 0, top_k: 2, expert_ffn: 32,
      mtp_layers: 0, tied_embeddings: false,
    });
  });
  it('a dense model (experts omitted = 0): dense_layers defaults to layers', () => {
    expect(resolveSpec(replace('model', denseModel())).model).toStrictEqual({
      name: 'custom', layers: 4, hidden: 64, heads: 4, kv_heads: 4, head_dim: 16, attention: 'gqa',
      q_lora_rank: 0, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0,
      vocab: 100, dense_layers: 4, dense_ffn: 128, experts: 0, shared_experts: 0, shared_ffn: 0, top_k: 0, expert_ffn: 0,
      mtp_layers: 0, tied_embeddings: false,
    });
  });
  it('every field given explicitly is kept (head_dim not recomputed, kv_heads not copied)', () => {
    const model = {
      name: 'mine', layers: 4, hidden: 64, heads: 4, kv_heads: 2, head_dim: 32, attention: 'gqa', q_lora_rank: 3,
      kv_lora_rank: 0, qk_nope_head_dim: 5, qk_rope_head_dim: 6, v_head_dim: 7, vocab: 100, dense_layers: 1,
      dense_ffn: 128, experts: 4, shared_experts: 1, shared_ffn: 48, top_k: 4, expert_ffn: 32, mtp_layers: 1,
      tied_embeddings: true, sliding_window: 16, window_layers: 2,
    };
    expect(resolveSpec(replace('model', { ...model })).model).toStrictEqual(model);
  });
  it('kv_lora_rank > 0 without attention means MLA', () => {
    const m = resolveSpec(vary('model', { kv_lora_rank: 8, qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 8 })).model;
    expect(m.attention).toBe('mla');
    expect(m.kv_lora_rank).toBe(8);
    expect(m.q_lora_rank).toBe(0);
  });
  it('attention gqa given with kv_lora_rank > 0 stays gqa', () => {
    expect(resolveSpec(vary('model', { attention: 'gqa', kv_lora_rank: 8 })).model.attention).toBe('gqa');
  });
  it('experts > 0 with dense_layers 0 keeps dense_layers 0; dense_layers = layers passes', () => {
    expect(resolveSpec(base()).model.dense_layers).toBe(0);
    expect(resolveSpec(vary('model', { dense_layers: 4, dense_ffn: 8 })).model.dense_layers).toBe(4);
  });
  it('a dense model with dense_layers = layers given passes', () => {
    expect(resolveSpec(replace('model', { ...denseModel(), experts: 0, dense_layers: 4 })).model.dense_layers).toBe(4);
  });
  it('sliding window fields are absent unless given; 0 is allowed', () => {
    const m = resolveSpec(base()).model;
    expect('sliding_window' in m).toBe(false);
    expect('window_layers' in m).toBe(false);
    const w = resolveSpec(vary('model', { sliding_window: 0, window_layers: 0 })).model;
    expect(w.sliding_window).toBe(0);
    expect(w.window_layers).toBe(0);
  });
  it('window_layers = layers passes', () => {
    expect(resolveSpec(vary('model', { sliding_window: 16, window_layers: 4 })).model.window_layers).toBe(4);
  });
  it('top_k at 1 and at experts pass', () => {
    expect(resolveSpec(vary('model', { top_k: 1 })).model.top_k).toBe(1);
    expect(resolveSpec(vary('model', { top_k: 4 })).model.top_k).toBe(4);
  });
  it('expert_ffn 1 passes; dense_ffn 1 with a dense layer passes', () => {
    expect(resolveSpec(vary('model', { expert_ffn: 1 })).model.expert_ffn).toBe(1);
    expect(resolveSpec(vary('model', { dense_layers: 1, dense_ffn: 1 })).model.dense_ffn).toBe(1);
  });
  it('kv_heads dividing heads passes; MLA skips the heads / kv_heads check', () => {
    expect(resolveSpec(vary('model', { kv_heads: 2 })).model.kv_heads).toBe(2);
    const mla = resolveSpec(vary('model', { kv_heads: 3, kv_lora_rank: 8, qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 8 })).model;
    expect(mla.kv_heads).toBe(3);
  });
  it('layers at the limit 4096 and vocab at 2^24 pass through the whole spec', () => {
    const m = resolveSpec(vary('model', { layers: 4096, vocab: 16777216 })).model;
    expect(m.layers).toBe(4096);
    expect(m.vocab).toBe(16777216);
  });
  it('a model given as a preset name string', () => {
    expect(resolveSpec(replace('model', 'mixtral-8x7b')).model).toStrictEqual({
      name: 'Mixtral 8x7B', layers: 32, hidden: 4096, heads: 32, kv_heads: 8, head_dim: 128, attention: 'gqa',
      q_lora_rank: 0, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0,
      vocab: 32000, dense_layers: 0, dense_ffn: 0, experts: 8, shared_experts: 0, shared_ffn: 0, top_k: 2, expert_ffn: 14336,
      mtp_layers: 0, tied_embeddings: false,
    });
  });
  it('a preset with field overrides: the overrides win', () => {
    const m = resolveSpec(replace('model', { preset: 'mixtral-8x7b', layers: 8, name: 'small' })).model;
    expect(m.layers).toBe(8);
    expect(m.name).toBe('small');
    expect(m.hidden).toBe(4096);
  });
  it('a config.json path (relative to the working directory without __dir), then field overrides', () => {
    const m = resolveSpec(replace('model', { config: 'fixtures/configs/mixtral-8x7b.json', layers: 8 })).model;
    expect(m.name).toBe('mixtral'); // model_type
    expect(m.layers).toBe(8);
    expect(m.hidden).toBe(4096);
    expect(m.experts).toBe(8);
    expect(m.top_k).toBe(2);
    expect(m.kv_heads).toBe(8);
  });
  it('hf_config is a synonym of config', () => {
    const m = resolveSpec(replace('model', { hf_config: 'fixtures/configs/mixtral-8x7b.json' })).model;
    expect(m.name).toBe('mixtral');
    expect(m.layers).toBe(32);
  });
  it('config over a preset: the config wins, the preset fills nothing the config has', () => {
    const m = resolveSpec(replace('model', { preset: 'deepseek-v3', config: 'fixtures/configs/mixtral-8x7b.json' })).model;
    expect(m.name).toBe('mixtral');
    expect(m.attention).toBe('gqa');
    expect(m.q_lora_rank).toBe(0);
    expect(m.layers).toBe(32);
  });
  it('a relative config path resolves against __dir', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moekit-spec-fields-'));
    copyFileSync('fixtures/configs/mixtral-8x7b.json', join(dir, 'cfg.json'));
    const m = resolveSpec({ ...replace('model', { config: 'cfg.json' }), __dir: dir }).model;
    expect(m.name).toBe('mixtral');
    expect(m.layers).toBe(32);
  });
  it('resolveModel alone: baseDir defaults to "."', () => {
    expect(resolveModel({ config: 'fixtures/configs/mixtral-8x7b.json' }).experts).toBe(8);
    expect(resolveModel('mixtral-8x22b').layers).toBe(56);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('resolveModel: every validation branch', () => {
  const missing = 'missing model section (a preset name, a config.json path, or fields)';
  it.each([
    ['absent', undefined], ['null', null], ['an array', [1]], ['a number', 5],
  ])('a model section that is %s', (_w, v) => {
    expectError(replace('model', v), 'model', missing);
  });

  const modelInt: [string, number][] = [
    ['layers', 4096], ['hidden', 1048576], ['heads', 65536], ['kv_heads', 65536], ['head_dim', 65536], ['vocab', 16777216],
  ];
  it.each(modelInt)('model.%s (min 1): 0 is refused', (k, max) => {
    expectError(vary('model', { [k]: 0 }), `model.${k}`, intMsg(1, max, '0'));
  });
  it.each(modelInt)('model.%s: one past the limit %d is refused', (k, max) => {
    expectError(vary('model', { [k]: max + 1 }), `model.${k}`, intMsg(1, max, String(max + 1)));
  });
  it.each(modelInt)('model.%s: a string is refused', (k, max) => {
    expectError(vary('model', { [k]: '8' }), `model.${k}`, intMsg(1, max, '"8"'));
  });
  it('missing layers / hidden / heads / vocab are refused (undefined)', () => {
    expectError(drop('model', 'layers'), 'model.layers', intMsg(1, 4096, 'undefined'));
    expectError(drop('model', 'vocab'), 'model.vocab', intMsg(1, 16777216, 'undefined'));
    // without hidden and heads head_dim is not derived: hidden is the first missing field
    expectError(drop('model', 'hidden'), 'model.hidden', intMsg(1, 1048576, 'undefined'));
    expectError(drop('model', 'heads'), 'model.heads', intMsg(1, 65536, 'undefined'));
  });
  it('head_dim is only derived when it divides evenly: hidden 66 / heads 4 = 16.5 is refused', () => {
    expectError(vary('model', { hidden: 66 }), 'model.head_dim', intMsg(1, 65536, '16.5'));
  });

  const modelInt0: [string, number][] = [
    ['dense_layers', 4096], ['dense_ffn', 4194304], ['experts', 65536], ['shared_experts', 4096], ['shared_ffn', 4194304],
    ['top_k', 65536], ['expert_ffn', 4194304], ['mtp_layers', 64], ['q_lora_rank', 65536], ['kv_lora_rank', 65536],
    ['qk_nope_head_dim', 65536], ['qk_rope_head_dim', 65536], ['v_head_dim', 65536],
  ];
  it.each(modelInt0)('model.%s (min 0): -1 is refused', (k, max) => {
    expectError(vary('model', { [k]: -1 }), `model.${k}`, intMsg(0, max, '-1'));
  });
  it.each(modelInt0)('model.%s: one past the limit %d is refused', (k, max) => {
    expectError(vary('model', { [k]: max + 1 }), `model.${k}`, intMsg(0, max, String(max + 1)));
  });
  it.each(modelInt0)('model.%s: a fraction is refused', (k, max) => {
    expectError(vary('model', { [k]: 0.5 }), `model.${k}`, intMsg(0, max, '0.5'));
  });
  it('mtp_layers at its limit 64 passes', () => {
    expect(resolveSpec(vary('model', { mtp_layers: 64 })).model.mtp_layers).toBe(64);
  });

  const modelOpt: [string, number][] = [['sliding_window', 16777216], ['window_layers', 4096]];
  it.each(modelOpt)('model.%s (optional, min 0): -1 and one past %d are refused', (k, max) => {
    expectError(vary('model', { [k]: -1 }), `model.${k}`, intMsg(0, max, '-1'));
    expectError(vary('model', { [k]: max + 1 }), `model.${k}`, intMsg(0, max, String(max + 1)));
    expectError(vary('model', { [k]: 'x' }), `model.${k}`, intMsg(0, max, '"x"'));
  });

  it.each([
    ['model.preset not a string', { preset: 5 }, 'model.preset', 'must be a model preset name (got 5)'],
    ['model.preset null', { preset: null }, 'model.preset', 'must be a model preset name (got null)'],
    ['model.config not a string', { config: 5 }, 'model.config', 'must be a path to a Hugging Face config.json (got 5)'],
    ['model.hf_config not a string', { hf_config: [1] }, 'model.hf_config', 'must be a path to a Hugging Face config.json (got [1])'],
    ['an unknown field', { experts_per_tok: 2 }, 'model.experts_per_tok', "unknown model field 'experts_per_tok'"],
    ['tied_embeddings a string', { tied_embeddings: 'yes' }, 'model.tied_embeddings', 'must be true or false (got "yes")'],
    ['tied_embeddings a number', { tied_embeddings: 1 }, 'model.tied_embeddings', 'must be true or false (got 1)'],
    ['attention unknown', { attention: 'mha' }, 'model.attention', 'must be one of gqa, mla (got "mha")'],
    ['attention not a string', { attention: 2 }, 'model.attention', 'must be one of gqa, mla (got 2)'],
    ['window_layers > layers', { sliding_window: 16, window_layers: 5 }, 'model.window_layers', 'window_layers 5 exceeds layers 4'],
    ['dense_layers > layers', { dense_layers: 5, dense_ffn: 8 }, 'model.dense_layers', 'dense_layers 5 exceeds layers 4'],
    ['a dense layer without dense_ffn', { dense_layers: 1 }, 'model.dense_ffn', 'dense layers need dense_ffn > 0'],
    ['top_k 0 with experts', { top_k: 0 }, 'model.top_k', 'top_k must be in 1..experts (4)'],
    ['top_k > experts', { top_k: 5 }, 'model.top_k', 'top_k must be in 1..experts (4)'],
    ['experts without expert_ffn', { expert_ffn: 0 }, 'model.expert_ffn', 'MoE layers need expert_ffn > 0'],
    ['heads not a multiple of kv_heads', { kv_heads: 3 }, 'model.kv_heads', 'heads 4 not a multiple of kv_heads 3'],
    ['MLA without kv_lora_rank', { attention: 'mla', qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 8 }, 'model.kv_lora_rank', 'MLA attention needs this field > 0'],
    ['MLA without qk_nope_head_dim', { kv_lora_rank: 8, qk_rope_head_dim: 4, v_head_dim: 8 }, 'model.qk_nope_head_dim', 'MLA attention needs this field > 0'],
    ['MLA without qk_rope_head_dim', { kv_lora_rank: 8, qk_nope_head_dim: 8, v_head_dim: 8 }, 'model.qk_rope_head_dim', 'MLA attention needs this field > 0'],
    ['MLA without v_head_dim', { kv_lora_rank: 8, qk_nope_head_dim: 8, qk_rope_head_dim: 4 }, 'model.v_head_dim', 'MLA attention needs this field > 0'],
  ])('%s', (_w, patch, file, message) => {
    expectError(vary('model', patch as Raw), file, message);
  });
  it('an unknown model preset names model.preset', () => {
    const e = errorOf(() => resolveSpec(replace('model', { preset: 'gpt-5' })));
    expect(e.file).toBe('model.preset');
    expect(e.message.startsWith("unknown model preset 'gpt-5' (known: ")).toBe(true);
  });
  it('a dense model: dense_layers below layers is refused, no dense_ffn is refused', () => {
    expectError(replace('model', { ...denseModel(), dense_layers: 2 }), 'model.experts', 'a model with experts = 0 must have dense_layers = layers');
    expectError(replace('model', { ...denseModel(), experts: 0, dense_ffn: 0 }), 'model.dense_ffn', 'dense layers need dense_ffn > 0');
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('model and hardware presets', () => {
  // hand-copied from MODEL_PRESETS in models.ts
  it.each([
    ['deepseek-v3', 'DeepSeek-V3', 61, 7168, 256, 'mla'],
    ['pangu-ultra-moe', 'Pangu Ultra MoE 718B', 61, 7680, 256, 'mla'],
    ['mixtral-8x7b', 'Mixtral 8x7B', 32, 4096, 8, 'gqa'],
    ['mixtral-8x22b', 'Mixtral 8x22B', 56, 6144, 8, 'gqa'],
    ['qwen3-235b-a22b', 'Qwen3-235B-A22B', 94, 4096, 128, 'gqa'],
    ['qwen3-30b-a3b', 'Qwen3-30B-A3B', 48, 2048, 128, 'gqa'],
    ['skywork-moe', 'Skywork-MoE 146B', 52, 4608, 16, 'gqa'],
    ['glm-4.5', 'GLM-4.5', 92, 5120, 160, 'gqa'],
    ['dots.llm1', 'dots.llm1', 62, 4096, 128, 'gqa'],
    ['hunyuan-a13b', 'Hunyuan-A13B', 32, 4096, 64, 'gqa'],
    ['llama-4-scout', 'Llama 4 Scout 17B-16E', 48, 5120, 16, 'gqa'],
    ['gpt-oss-120b', 'GPT-OSS-120B', 36, 2880, 128, 'gqa'],
    ['llama3.1-405b', 'Llama 3.1 405B', 126, 16384, 0, 'gqa'],
  ])('model preset %s', (preset, name, layers, hidden, experts, attention) => {
    const m = resolveSpec(replace('model', { preset })).model;
    expect([m.name, m.layers, m.hidden, m.experts, m.attention]).toEqual([name, layers, hidden, experts, attention]);
  });
  it('gpt-oss-120b keeps its sliding window; hunyuan-a13b its tied embeddings', () => {
    const g = resolveSpec(replace('model', 'gpt-oss-120b')).model;
    expect([g.sliding_window, g.window_layers]).toEqual([128, 18]);
    expect(resolveSpec(replace('model', 'hunyuan-a13b')).model.tied_embeddings).toBe(true);
  });
  // hand-copied from PRESETS in hardware.ts
  it.each([
    ['a100', 'NVIDIA A100 SXM4 80GB (DGX A100)', 8, 312e12, 0],
    ['a800', 'NVIDIA A800 SXM4 80GB', 8, 312e12, 0],
    ['h100', 'NVIDIA H100 SXM5 80GB (DGX H100)', 8, 989e12, 1979e12],
    ['h800', 'NVIDIA H800 SXM5 80GB', 8, 989e12, 1979e12],
    ['h200', 'NVIDIA H200 SXM 141GB (HGX H200)', 8, 989e12, 1979e12],
    ['b200', 'NVIDIA B200 (DGX/HGX B200)', 8, 2250e12, 4500e12],
    ['gb200', 'NVIDIA GB200 NVL72', 4, 2500e12, 5000e12],
    ['910b', 'Huawei Ascend 910B (Atlas 800T A2)', 8, 313e12, 0],
    ['910c', 'Huawei Ascend 910C (CloudMatrix 384)', 8, 752e12, 0],
  ])('hardware preset %s', (preset, name, perNode, bf16, fp8) => {
    const h = resolveSpec(replace('hardware', { preset, devices: 8 })).hardware;
    expect([h.preset, h.name, h.devices_per_node, h.peak_bf16, h.peak_fp8]).toEqual([preset, name, perNode, bf16, fp8]);
  });
  it('hardware preset names are case-insensitive and have aliases', () => {
    expect(resolveSpec(replace('hardware', { preset: 'H100', devices: 8 })).hardware.preset).toBe('h100');
    expect(resolveSpec(replace('hardware', { preset: 'cloudmatrix-384', devices: 8 })).hardware.preset).toBe('910c');
  });
  it('hardware overrides reach the resolved hardware', () => {
    const h = resolveSpec(replace('hardware', { preset: 'h100', devices: 8, inter_gbps: 25 })).hardware;
    expect(h.inter_bw).toBe(25e9); // 25 GB/s
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('resolveSpec: the hardware section', () => {
  it.each([
    ['absent', undefined], ['null', null], ['a number', 8], ['an array', ['h100']],
  ])('a hardware section that is %s', (_w, v) => {
    expectError(replace('hardware', v), 'hardware', 'missing hardware section (preset, devices)');
  });
  it('a preset name string is the preset, still without a device count', () => {
    expectError(replace('hardware', 'h100'), 'hardware.devices', 'missing device count');
  });
  it('devices missing', () => {
    expectError(replace('hardware', { preset: 'h100' }), 'hardware.devices', 'missing device count');
  });
  it('a missing preset is hardware.preset', () => {
    expect(errorOf(() => resolveSpec(replace('hardware', { devices: 8 }))).file).toBe('hardware.preset');
  });
  it.each([
    [0, '0'], [1048577, '1048577'], ['8', '"8"'], [1.5, '1.5'], [null, 'null'],
  ])('devices %j is refused', (v, got) => {
    expectError(vary('hardware', { devices: v }), 'hardware.devices', intMsg(1, 1048576, got));
  });
  it('devices 1 passes (dp 1 by default) and the limit 2^20 passes', () => {
    const one = resolveSpec(vary('training', { global_batch: 1 }, vary('hardware', { devices: 1 })));
    expect([one.devices, one.parallel.dp]).toEqual([1, 1]);
    // 2^20 devices: dp = 2^20; global_batch 2^20 divisible by micro_batch*dp = 2^20
    const big = resolveSpec(vary('training', { global_batch: 1048576 }, vary('hardware', { devices: 1048576 })));
    expect([big.devices, big.parallel.dp]).toEqual([1048576, 1048576]);
  });
  it('offload needs a host link: host_gbps 0 with offload 0.5 is refused', () => {
    const raw = vary('parallel', { offload: 0.5 }, vary('hardware', { host_gbps: 0 }));
    expectError(raw, 'hardware.host_bw', 'must be positive to offload activations (parallel.offload 0.5)');
  });
  it('host_gbps 0 without offload passes; offload with a host link passes', () => {
    expect(resolveSpec(vary('hardware', { host_gbps: 0 })).hardware.host_bw).toBe(0);
    expect(resolveSpec(vary('parallel', { offload: 0.5 })).parallel.offload).toBe(0.5);
  });
  it('fp8 on a device without FP8 GEMMs is refused, naming the preset', () => {
    const raw = vary('training', { precision: 'fp8' }, replace('hardware', { preset: 'A100', devices: 8 }));
    expectError(raw, 'training.precision', 'fp8 needs FP8 GEMMs: a100 has none (peak_fp8 0); use bf16, or set hardware.peak_fp8_tflops');
  });
  it('fp8 passes on an A100 given peak_fp8_tflops, and on an H100; bf16 passes on an A100', () => {
    const a = vary('training', { precision: 'fp8' }, replace('hardware', { preset: 'a100', devices: 8, peak_fp8_tflops: 600 }));
    expect(resolveSpec(a).hardware.peak_fp8).toBe(600e12);
    expect(resolveSpec(vary('training', { precision: 'fp8' })).training.precision).toBe('fp8');
    expect(resolveSpec(replace('hardware', { preset: 'a100', devices: 8 })).training.precision).toBe('bf16');
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('resolveParallel: defaults and derived values', () => {
  const defaults: Parallel = {
    tp: 1, pp: 1, vpp: 1, ep: 1, etp: 1, cp: 1, dp: 8, zero: 1, recompute: 'none', offload: 0, schedule: '1f1b',
    ep_overlap: 'none', a2a: 'flat', tp_overlap: true, dispatcher: 'alltoall', shared_expert_overlap: false,
    dp_overlap: true, cuda_graphs: false,
  };
  it('no parallel section: every default (dp = devices 8 / (tp*pp*cp = 1) = 8)', () => {
    const s = resolveSpec(base());
    expect(s.parallel).toStrictEqual(defaults);
    expect(s.given).toEqual(new Set());
  });
  it('an empty (null) parallel section is the defaults', () => {
    const s = resolveSpec(replace('parallel', null));
    expect(s.parallel).toStrictEqual(defaults);
    expect(s.given).toEqual(new Set());
  });
  it('every field given explicitly is kept, and given lists them all', () => {
    // tp*pp*cp*dp = 2*2*1*2 = 8 devices; ep*etp = 2 divides tp*cp*dp = 4; chunks pp*vpp = 4 = layers
    const par = {
      tp: 2, pp: 2, vpp: 2, ep: 2, etp: 1, cp: 1, dp: 2, zero: 3, recompute: ['mlp', 'moe_act'], offload: 0.25,
      schedule: 'interleaved', ep_overlap: 'adaptive', a2a: 'hierarchical', tp_overlap: false, dispatcher: 'flex',
      shared_expert_overlap: true, dp_overlap: false, cuda_graphs: true,
    };
    const s = resolveSpec(replace('parallel', { ...par }));
    expect(s.parallel).toStrictEqual(par);
    expect([...s.given].sort()).toEqual(Object.keys(par).sort());
  });
  it('given holds only the fields given', () => {
    expect(resolveSpec(vary('parallel', { tp: 2, ep: 2 })).given).toEqual(new Set(['tp', 'ep']));
  });
  // dp = devices / (tp*pp*cp), devices 8
  it.each([
    [{ tp: 2 }, 4], // 8 / 2
    [{ tp: 2, pp: 2 }, 2], // 8 / 4
    [{ tp: 2, pp: 2, cp: 2 }, 1], // 8 / 8
    [{ cp: 4 }, 2], // 8 / 4
    [{ pp: 4 }, 2], // 8 / 4
  ])('dp derived from %j = %d', (p, dp) => {
    expect(resolveSpec(vary('parallel', p)).parallel.dp).toBe(dp);
  });
  it('etp defaults to tp, or is given', () => {
    expect(resolveSpec(vary('parallel', { tp: 2 })).parallel.etp).toBe(2);
    expect(resolveSpec(vary('parallel', { tp: 2, etp: 1 })).parallel.etp).toBe(1);
  });
  it('tp = heads passes (tp 4: dp 2, etp 4)', () => {
    const p = resolveSpec(vary('parallel', { tp: 4 })).parallel;
    expect([p.tp, p.dp, p.etp]).toEqual([4, 2, 4]);
  });
  it('schedule: interleaved when vpp > 1 is given, else 1f1b', () => {
    expect(resolveSpec(vary('parallel', { pp: 2, vpp: 2 })).parallel.schedule).toBe('interleaved');
    expect(resolveSpec(vary('parallel', { vpp: 1 })).parallel.schedule).toBe('1f1b');
    expect(resolveSpec(vary('parallel', { pp: 2 })).parallel.schedule).toBe('1f1b');
  });
  it.each([
    ['1f1b', {}, 'none'],
    ['interleaved', { pp: 2, vpp: 2 }, 'none'],
    ['interleaved', {}, 'none'], // vpp 1 with interleaved is allowed
    ['dualpipe', { pp: 2 }, 'dualpipe'],
    ['dualpipev', { pp: 2 }, 'dualpipe'],
    ['zero-bubble', {}, 'none'],
  ])('schedule %s %j: ep_overlap defaults to %s', (schedule, p, epo) => {
    const par = resolveSpec(vary('parallel', { schedule, ...p })).parallel;
    expect(par.schedule).toBe(schedule);
    expect(par.ep_overlap).toBe(epo);
  });
  it.each(['none', 'adaptive', 'dualpipe', 'a2a-1f1b'])('ep_overlap %s given is kept', (v) => {
    expect(resolveSpec(vary('parallel', { ep_overlap: v })).parallel.ep_overlap).toBe(v);
  });
  it('ep_overlap given overrides the dualpipe default', () => {
    expect(resolveSpec(vary('parallel', { schedule: 'dualpipe', pp: 2, ep_overlap: 'none' })).parallel.ep_overlap).toBe('none');
  });
  it.each([
    ['alltoall', 'flat'], ['allgather', 'flat'], ['flex', 'hierarchical'],
  ])('dispatcher %s: a2a defaults to %s', (dispatcher, a2a) => {
    const p = resolveSpec(vary('parallel', { dispatcher })).parallel;
    expect([p.dispatcher, p.a2a]).toEqual([dispatcher, a2a]);
  });
  it.each(['flat', 'hierarchical', 'hierarchical-allgather'])('a2a %s given is kept, also with flex', (a2a) => {
    expect(resolveSpec(vary('parallel', { a2a })).parallel.a2a).toBe(a2a);
    expect(resolveSpec(vary('parallel', { a2a, dispatcher: 'flex' })).parallel.a2a).toBe(a2a);
  });
  it.each([
    ['tp_overlap', false], ['shared_expert_overlap', true], ['dp_overlap', false], ['cuda_graphs', true],
  ])('%s given as the opposite of its default (%s) is kept', (k, v) => {
    expect(resolveSpec(vary('parallel', { [k]: v })).parallel[k as keyof Parallel]).toBe(v);
    expect(resolveSpec(vary('parallel', { [k]: !v })).parallel[k as keyof Parallel]).toBe(!v);
  });
  it.each([0, 1, 2, 3])('zero %d passes', (z) => {
    expect(resolveSpec(vary('parallel', { zero: z })).parallel.zero).toBe(z);
  });
  it.each([['none', 'none'], ['selective', 'selective'], ['full', 'full']])('recompute %s', (v, want) => {
    expect(resolveSpec(vary('parallel', { recompute: v })).parallel.recompute).toBe(want);
  });
  it.each(['attention', 'core_attn', 'mla_up', 'mlp', 'moe', 'moe_act', 'layernorm'])('recompute one module %s -> [module]', (m) => {
    expect(resolveSpec(vary('parallel', { recompute: m })).parallel.recompute).toEqual([m]);
    expect(resolveSpec(vary('parallel', { recompute: [m] })).parallel.recompute).toEqual([m]);
  });
  it('recompute: a list of modules is kept in order; an empty list stays empty', () => {
    expect(resolveSpec(vary('parallel', { recompute: ['moe_act', 'attention', 'layernorm'] })).parallel.recompute)
      .toEqual(['moe_act', 'attention', 'layernorm']);
    expect(resolveSpec(vary('parallel', { recompute: [] })).parallel.recompute).toEqual([]);
  });
  it('offload at 0 and at 1 passes', () => {
    expect(resolveSpec(vary('parallel', { offload: 0 })).parallel.offload).toBe(0);
    expect(resolveSpec(vary('parallel', { offload: 1 })).parallel.offload).toBe(1);
  });
  it('template (search): devices not divisible by tp*pp*cp floor to dp, at least 1', () => {
    const t = { template: true };
    expect(resolveSpec(vary('parallel', { pp: 3 }), 'spec', t).parallel.dp).toBe(2); // floor(8 / 3)
    expect(resolveSpec(vary('parallel', { tp: 2, cp: 3 }), 'spec', t).parallel.dp).toBe(1); // floor(8 / 6)
    expect(resolveSpec(vary('parallel', { pp: 4, cp: 4 }), 'spec', t).parallel.dp).toBe(1); // floor(8 / 16) = 0 -> 1
    expect(resolveSpec(vary('parallel', { pp: 2 }), 'spec', t).parallel.dp).toBe(4); // 8 / 2
  });
  it('template: the layout is not validated (ep 3 does not divide 4 experts)', () => {
    const s = resolveSpec(vary('parallel', { ep: 3 }), 'spec', { template: true });
    expect(s.parallel.ep).toBe(3);
    expect(s.given).toEqual(new Set(['ep']));
  });
  it('template: field errors and tp | heads are still checked', () => {
    expectError(vary('parallel', { tp: 3 }), 'parallel.tp', 'tp 3 does not divide heads 4', { template: true });
    expectError(vary('parallel', { pp: 0 }), 'parallel.pp', intMsg(1, 1048576, '0'), { template: true });
  });
  it('resolveParallel alone: strict defaults to true', () => {
    const m = resolveModel(base().model);
    expect(errorOf(() => resolveParallel({ pp: 3 }, 8, m)).file).toBe('parallel');
    expect(resolveParallel({ pp: 3 }, 8, m, false).parallel.dp).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('resolveParallel: every validation branch', () => {
  it.each([
    ['a number', 5, '5'], ['a string', 'tp2', '"tp2"'], ['an array', [2], '[2]'], ['true', true, 'true'],
  ])('a parallel section that is %s', (_w, v, got) => {
    expectError(replace('parallel', v), 'parallel', `must be a mapping (got ${got})`);
  });
  const ints: [string, number][] = [
    ['tp', 1048576], ['pp', 1048576], ['cp', 1048576], ['vpp', 4096], ['ep', 1048576], ['etp', 1048576], ['dp', 1048576],
  ];
  it.each(ints)('parallel.%s: 0 is refused', (k, max) => {
    expectError(vary('parallel', { [k]: 0 }), `parallel.${k}`, intMsg(1, max, '0'));
  });
  it.each(ints)('parallel.%s: one past the limit %d is refused', (k, max) => {
    expectError(vary('parallel', { [k]: max + 1 }), `parallel.${k}`, intMsg(1, max, String(max + 1)));
  });
  it.each(ints)('parallel.%s: a string is refused', (k, max) => {
    expectError(vary('parallel', { [k]: '2' }), `parallel.${k}`, intMsg(1, max, '"2"'));
  });
  it('zero: -1 and 4 are refused by the integer range [0, 3]', () => {
    expectError(vary('parallel', { zero: -1 }), 'parallel.zero', intMsg(0, 3, '-1'));
    expectError(vary('parallel', { zero: 4 }), 'parallel.zero', intMsg(0, 3, '4'));
    expectError(vary('parallel', { zero: 1.5 }), 'parallel.zero', intMsg(0, 3, '1.5'));
  });
  it.each([
    ['unknown field', { tensor: 2 }, 'parallel.tensor', "unknown parallel field 'tensor'"],
    ['schedule', { schedule: '2f2b' }, 'parallel.schedule', 'must be one of 1f1b, interleaved, dualpipe, dualpipev, zero-bubble (got "2f2b")'],
    ['schedule not a string', { schedule: 1 }, 'parallel.schedule', 'must be one of 1f1b, interleaved, dualpipe, dualpipev, zero-bubble (got 1)'],
    ['recompute unknown', { recompute: 'some' }, 'parallel.recompute', 'must be one of none, selective, full, attention, core_attn, mla_up, mlp, moe, moe_act, layernorm (got "some")'],
    ['recompute a number', { recompute: 1 }, 'parallel.recompute', 'must be one of none, selective, full, attention, core_attn, mla_up, mlp, moe, moe_act, layernorm (got 1)'],
    ['recompute list entry', { recompute: ['mlp', 'full'] }, 'parallel.recompute[1]', 'must be one of attention, core_attn, mla_up, mlp, moe, moe_act, layernorm (got "full")'],
    ['recompute first list entry', { recompute: [3] }, 'parallel.recompute[0]', 'must be one of attention, core_attn, mla_up, mlp, moe, moe_act, layernorm (got 3)'],
    ['offload > 1', { offload: 1.5 }, 'parallel.offload', numMsg(0, 1, '1.5')],
    ['offload < 0', { offload: -0.1 }, 'parallel.offload', numMsg(0, 1, '-0.1')],
    ['offload a string', { offload: 'half' }, 'parallel.offload', numMsg(0, 1, '"half"')],
    ['offload NaN', { offload: NaN }, 'parallel.offload', numMsg(0, 1, 'null')],
    ['ep_overlap', { ep_overlap: 'full' }, 'parallel.ep_overlap', 'must be one of none, adaptive, dualpipe, a2a-1f1b (got "full")'],
    ['dispatcher', { dispatcher: 'deepep' }, 'parallel.dispatcher', 'must be one of alltoall, allgather, flex (got "deepep")'],
    ['a2a', { a2a: 'tree' }, 'parallel.a2a', 'must be one of flat, hierarchical, hierarchical-allgather (got "tree")'],
    ['tp_overlap', { tp_overlap: 'yes' }, 'parallel.tp_overlap', 'must be true or false (got "yes")'],
    ['shared_expert_overlap', { shared_expert_overlap: 1 }, 'parallel.shared_expert_overlap', 'must be true or false (got 1)'],
    ['dp_overlap', { dp_overlap: null }, 'parallel.dp_overlap', 'must be true or false (got null)'],
    ['cuda_graphs', { cuda_graphs: 'no' }, 'parallel.cuda_graphs', 'must be true or false (got "no")'],
    ['tp not dividing heads', { tp: 3 }, 'parallel.tp', 'tp 3 does not divide heads 4'],
    ['devices not divisible by tp*pp*cp', { pp: 3 }, 'parallel', 'devices 8 not divisible by tp*pp*cp = 3'],
    ['devices not divisible by tp*pp*cp (tp 2, cp 3)', { tp: 2, cp: 3 }, 'parallel', 'devices 8 not divisible by tp*pp*cp = 6'],
    ['dp given not matching devices', { dp: 4 }, 'parallel.dp', 'tp*pp*cp*dp = 4 but devices = 8'],
    ['dp given too large', { tp: 2, dp: 8 }, 'parallel.dp', 'tp*pp*cp*dp = 16 but devices = 8'],
    ['ep not dividing experts', { ep: 3 }, 'parallel.ep', 'ep 3 does not divide experts 4'],
    ['ep*etp not dividing tp*cp*dp', { ep: 4, etp: 4 }, 'parallel.ep', 'ep*etp = 16 does not divide tp*cp*dp = 8'],
    ['ep*etp not dividing tp*cp*dp (pp does not count)', { pp: 2, ep: 4, etp: 2 }, 'parallel.ep', 'ep*etp = 8 does not divide tp*cp*dp = 4'],
    ['vpp without interleaved', { pp: 2, vpp: 2, schedule: '1f1b' }, 'parallel.vpp', 'vpp 2 needs schedule interleaved'],
    ['vpp without a pipeline', { vpp: 2 }, 'parallel.vpp', 'vpp 2 needs pp > 1'],
    ['more chunks than layers (pp 8)', { pp: 8 }, 'parallel.pp', '4 layers cannot fill 8 pipeline chunks'],
    ['more chunks than layers (pp 2 x vpp 4)', { pp: 2, vpp: 4 }, 'parallel.pp', '4 layers cannot fill 8 pipeline chunks'],
    ['dualpipe doubles the chunks (pp 4 x 2)', { pp: 4, schedule: 'dualpipe' }, 'parallel.pp', '4 layers cannot fill 8 pipeline chunks'],
    ['dualpipev doubles the chunks (pp 4 x 2)', { pp: 4, schedule: 'dualpipev' }, 'parallel.pp', '4 layers cannot fill 8 pipeline chunks'],
    ['dualpipe with an odd pp', { schedule: 'dualpipe' }, 'parallel.pp', 'dualpipe needs an even pp'],
    ['dualpipev with an odd pp', { schedule: 'dualpipev' }, 'parallel.pp', 'dualpipev needs an even pp'],
  ])('%s', (_w, patch, file, message) => {
    expectError(vary('parallel', patch as Raw), file, message);
  });
  it('etp not dividing expert_ffn (etp 8, expert_ffn 36)', () => {
    // ep*etp = 8 divides tp*cp*dp = 8; 36 % 8 = 4
    expectError(vary('parallel', { etp: 8 }, vary('model', { expert_ffn: 36 })), 'parallel.etp', 'etp 8 does not divide expert_ffn 36');
  });
  it('ep > 1 on a dense model', () => {
    expectError(vary('parallel', { ep: 2 }, replace('model', denseModel())), 'parallel.ep', 'ep > 1 needs a model with experts');
    expect(resolveSpec(vary('parallel', { ep: 1 }, replace('model', denseModel()))).parallel.ep).toBe(1);
  });
  it('tp and kv_heads that do not divide each other (tp 6, kv_heads 4)', () => {
    const raw = vary('parallel', { tp: 6, etp: 1 }, vary('hardware', { devices: 6 }, vary('model', { heads: 12, hidden: 96, kv_heads: 4 })));
    expectError(raw, 'parallel.tp', 'tp 6 and kv_heads 4 do not divide each other');
  });
  it('the same tp 6 with MLA attention passes (the kv_heads rule is GQA only)', () => {
    const mla = { heads: 12, hidden: 96, kv_heads: 4, kv_lora_rank: 8, qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 8 };
    const raw = vary('parallel', { tp: 6, etp: 1 }, vary('hardware', { devices: 6 }, vary('model', mla)));
    expect(resolveSpec(raw).parallel.dp).toBe(1); // 6 / 6
  });
  it('tp a multiple of kv_heads passes (tp 8, kv_heads 4, heads 8)', () => {
    const raw = vary('parallel', { tp: 8, etp: 1 }, vary('model', { heads: 8, kv_heads: 4 }));
    expect(resolveSpec(raw).parallel.dp).toBe(1);
  });
  it('kv_heads a multiple of tp passes (tp 2, kv_heads 4)', () => {
    expect(resolveSpec(vary('parallel', { tp: 2 })).parallel.tp).toBe(2);
  });
  it('boundaries that pass: ep*etp = tp*cp*dp, chunks = layers, dualpipe with an even pp', () => {
    expect(resolveSpec(vary('parallel', { ep: 4, etp: 2 })).parallel.ep).toBe(4); // 4*2 = 8 = 1*1*8
    expect(resolveSpec(vary('parallel', { pp: 4 })).parallel.pp).toBe(4); // 4 chunks, 4 layers
    expect(resolveSpec(vary('parallel', { pp: 2, vpp: 2 })).parallel.vpp).toBe(2); // 2*2 = 4 chunks
    expect(resolveSpec(vary('parallel', { pp: 2, schedule: 'dualpipe' })).parallel.pp).toBe(2); // 2*1*2 = 4 chunks
    expect(resolveSpec(vary('parallel', { dp: 8 })).parallel.dp).toBe(8);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('layoutProblem / validateParallel', () => {
  // (set in beforeEach, not at collection time: StrykerJS runs every test file for a mutant reached while a file is collected)
  let m: ReturnType<typeof resolveModel>;
  beforeEach(() => { m = resolveModel(base().model); });
  // 4 layers, 4 heads, kv_heads 4, 4 experts, expert_ffn 32, gqa
  const par = (p: Partial<Parallel> = {}): Parallel => ({ ...resolveParallel({}, 8, m).parallel, ...p });
  it('a valid layout: undefined', () => {
    expect(layoutProblem(par(), 8, m)).toBeUndefined();
    expect(layoutProblem(par({ dp: 1 }), 1, m)).toBeUndefined();
  });
  it('devices < 1', () => {
    expect(layoutProblem(par({ dp: 0 }), 0, m)).toEqual(['parallel', 'devices must be >= 1']);
  });
  it('each rule as [field, message]', () => {
    expect(layoutProblem(par({ dp: 7 }), 8, m)).toEqual(['parallel.dp', 'tp*pp*cp*dp = 7 but devices = 8']);
    // tp*pp*cp*dp = 2*2*2*1 = 8; mutating one factor changes the product
    expect(layoutProblem(par({ tp: 2, pp: 2, cp: 2, dp: 2, etp: 2 }), 8, m)).toEqual(['parallel.dp', 'tp*pp*cp*dp = 16 but devices = 8']);
    expect(layoutProblem(par({ tp: 3, etp: 1, dp: 1 }), 3, m)).toEqual(['parallel.tp', 'tp 3 does not divide heads 4']);
    expect(layoutProblem(par({ ep: 3 }), 8, m)).toEqual(['parallel.ep', 'ep 3 does not divide experts 4']);
    expect(layoutProblem(par({ ep: 2, etp: 8 }), 8, m)).toEqual(['parallel.ep', 'ep*etp = 16 does not divide tp*cp*dp = 8']);
    // tp*cp*dp = 2*2*2 = 8 with pp 1: ep*etp = 4*2 = 8 passes
    expect(layoutProblem(par({ tp: 2, cp: 2, dp: 2, ep: 4, etp: 2 }), 8, m)).toBeUndefined();
    // cp counts: tp*cp*dp = 1*2*4 = 8
    expect(layoutProblem(par({ cp: 2, dp: 4, ep: 4, etp: 4 }), 8, m)).toEqual(['parallel.ep', 'ep*etp = 16 does not divide tp*cp*dp = 8']);
    expect(layoutProblem(par({ cp: 2, dp: 4, ep: 4, etp: 2 }), 8, m)).toBeUndefined();
    expect(layoutProblem(par({ etp: 8 }), 8, { ...m, expert_ffn: 36 })).toEqual(['parallel.etp', 'etp 8 does not divide expert_ffn 36']);
    expect(layoutProblem(par({ vpp: 2, pp: 2, dp: 4 }), 8, m)).toEqual(['parallel.vpp', 'vpp 2 needs schedule interleaved']);
    expect(layoutProblem(par({ vpp: 2, schedule: 'interleaved' }), 8, m)).toEqual(['parallel.vpp', 'vpp 2 needs pp > 1']);
    expect(layoutProblem(par({ pp: 2, dp: 4, vpp: 3, schedule: 'interleaved' }), 8, m)).toEqual(['parallel.pp', '4 layers cannot fill 6 pipeline chunks']);
    expect(layoutProblem(par({ schedule: 'dualpipev' }), 8, m)).toEqual(['parallel.pp', 'dualpipev needs an even pp']);
    expect(layoutProblem(par({ schedule: 'zero-bubble', pp: 8, dp: 1 }), 8, m)).toEqual(['parallel.pp', '4 layers cannot fill 8 pipeline chunks']);
  });
  it('a dense model: ep 1 passes, ep 2 is refused', () => {
    const d = resolveModel(denseModel());
    expect(layoutProblem(par(), 8, d)).toBeUndefined();
    expect(layoutProblem(par({ ep: 2 }), 8, d)).toEqual(['parallel.ep', 'ep > 1 needs a model with experts']);
  });
  it('validateParallel throws the problem as a MoekitError, or returns', () => {
    expect(validateParallel(par(), 8, m)).toBeUndefined();
    const e = errorOf(() => validateParallel(par({ ep: 3 }), 8, m));
    expect(e.message).toBe('ep 3 does not divide experts 4');
    expect(e.file).toBe('parallel.ep');
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('resolveTraining: defaults', () => {
  it('DEFAULT_EXPERT_LOAD_CV is the fitted 0.12', () => {
    expect(DEFAULT_EXPERT_LOAD_CV).toBe(0.12);
  });
  it('a minimal training section: every default filled in', () => {
    expect(resolveSpec(base()).training).toStrictEqual({
      seq_len: 128, micro_batch: 1, global_batch: 16, precision: 'bf16', optimizer_precision: 'fp32',
      grad_precision: 'fp32', load_imbalance: 0, expert_load_cv: 0.12, dispatch_bytes: 2, node_limit: 0, capacity_factor: 0,
    });
  });
  it('every field given explicitly is kept', () => {
    // global_batch 32 divisible by micro_batch*dp = 2*8 = 16
    const t = {
      seq_len: 256, micro_batch: 2, global_batch: 32, precision: 'fp8', optimizer_precision: 'bf16', grad_precision: 'bf16',
      load_imbalance: 1.2, expert_load_cv: 0.3, dispatch_bytes: 1, node_limit: 4, capacity_factor: 1.25,
    };
    expect(resolveSpec(replace('training', { ...t })).training).toStrictEqual(t);
  });
  it.each([
    ['load_imbalance', 1], ['load_imbalance', 100], ['expert_load_cv', 0], ['expert_load_cv', 10],
    ['dispatch_bytes', 0.5], ['dispatch_bytes', 4], ['node_limit', 0], ['node_limit', 1048576],
    ['capacity_factor', 0], ['capacity_factor', 0.1], ['capacity_factor', 16], ['micro_batch', 2],
  ])('%s = %s passes', (k, v) => {
    expect(resolveSpec(vary('training', { [k]: v })).training[k as 'seq_len']).toBe(v);
  });
  it('seq_len divisible by cp passes; global_batch = micro_batch*dp passes', () => {
    expect(resolveSpec(vary('parallel', { cp: 2 }, vary('training', { seq_len: 126 }))).training.seq_len).toBe(126);
    expect(resolveSpec(vary('training', { micro_batch: 2 })).training.global_batch).toBe(16); // 16 = 2 * 8
  });
  it('resolveTraining alone: strict defaults to true', () => {
    const par = resolveSpec(vary('parallel', { cp: 2 })).parallel; // cp 2, dp 4
    const e = errorOf(() => resolveTraining({ seq_len: 127, global_batch: 16 }, par));
    expect(e.message).toBe('seq_len 127 not divisible by cp 2');
    expect(resolveTraining({ seq_len: 127, global_batch: 16 }, par, false).seq_len).toBe(127);
  });
  it('template: seq_len and global_batch divisibility are not checked', () => {
    const t = { template: true };
    expect(resolveSpec(vary('parallel', { cp: 2 }, vary('training', { seq_len: 127 })), 'spec', t).training.seq_len).toBe(127);
    expect(resolveSpec(vary('training', { global_batch: 12 }), 'spec', t).training.global_batch).toBe(12);
  });
});

describe('resolveTraining: every validation branch', () => {
  it.each([
    ['absent', undefined], ['null', null], ['an array', [128]], ['a number', 128],
  ])('a training section that is %s', (_w, v) => {
    expectError(replace('training', v), 'training', 'missing training section (seq_len, micro_batch, global_batch)');
  });
  it('missing seq_len / global_batch', () => {
    expectError(drop('training', 'seq_len'), 'training.seq_len', intMsg(1, 16777216, 'undefined'));
    expectError(drop('training', 'global_batch'), 'training.global_batch', intMsg(1, 1073741824, 'undefined'));
  });
  it.each([
    ['unknown field', { batch: 4 }, 'training.batch', "unknown training field 'batch'"],
    ['seq_len 0', { seq_len: 0 }, 'training.seq_len', intMsg(1, 16777216, '0')],
    ['seq_len past 2^24', { seq_len: 16777217 }, 'training.seq_len', intMsg(1, 16777216, '16777217')],
    ['seq_len a string', { seq_len: '128' }, 'training.seq_len', intMsg(1, 16777216, '"128"')],
    ['micro_batch 0', { micro_batch: 0 }, 'training.micro_batch', intMsg(1, 1048576, '0')],
    ['micro_batch past 2^20', { micro_batch: 1048577 }, 'training.micro_batch', intMsg(1, 1048576, '1048577')],
    ['global_batch 0', { global_batch: 0 }, 'training.global_batch', intMsg(1, 1073741824, '0')],
    ['global_batch past 2^30', { global_batch: 1073741825 }, 'training.global_batch', intMsg(1, 1073741824, '1073741825')],
    ['precision', { precision: 'fp16' }, 'training.precision', 'must be one of bf16, fp8 (got "fp16")'],
    ['precision a number', { precision: 8 }, 'training.precision', 'must be one of bf16, fp8 (got 8)'],
    ['optimizer_precision', { optimizer_precision: 'fp16' }, 'training.optimizer_precision', 'must be one of fp32, bf16 (got "fp16")'],
    ['grad_precision', { grad_precision: 'fp8' }, 'training.grad_precision', 'must be one of fp32, bf16 (got "fp8")'],
    ['load_imbalance below 1', { load_imbalance: 0.99 }, 'training.load_imbalance', numMsg(1, 100, '0.99')],
    ['load_imbalance 0 given', { load_imbalance: 0 }, 'training.load_imbalance', numMsg(1, 100, '0')],
    ['load_imbalance above 100', { load_imbalance: 100.5 }, 'training.load_imbalance', numMsg(1, 100, '100.5')],
    ['load_imbalance a string', { load_imbalance: '1.2' }, 'training.load_imbalance', numMsg(1, 100, '"1.2"')],
    ['load_imbalance Infinity', { load_imbalance: Infinity }, 'training.load_imbalance', numMsg(1, 100, 'null')],
    ['expert_load_cv below 0', { expert_load_cv: -0.1 }, 'training.expert_load_cv', numMsg(0, 10, '-0.1')],
    ['expert_load_cv above 10', { expert_load_cv: 10.5 }, 'training.expert_load_cv', numMsg(0, 10, '10.5')],
    ['expert_load_cv NaN', { expert_load_cv: NaN }, 'training.expert_load_cv', numMsg(0, 10, 'null')],
    ['dispatch_bytes below 0.5', { dispatch_bytes: 0.4 }, 'training.dispatch_bytes', numMsg(0.5, 4, '0.4')],
    ['dispatch_bytes above 4', { dispatch_bytes: 4.5 }, 'training.dispatch_bytes', numMsg(0.5, 4, '4.5')],
    ['node_limit -1', { node_limit: -1 }, 'training.node_limit', intMsg(0, 1048576, '-1')],
    ['node_limit past 2^20', { node_limit: 1048577 }, 'training.node_limit', intMsg(0, 1048576, '1048577')],
    ['node_limit a fraction', { node_limit: 1.5 }, 'training.node_limit', intMsg(0, 1048576, '1.5')],
    ['capacity_factor below 0.1', { capacity_factor: 0.05 }, 'training.capacity_factor', numMsg(0.1, 16, '0.05')],
    ['capacity_factor above 16', { capacity_factor: 16.5 }, 'training.capacity_factor', numMsg(0.1, 16, '16.5')],
    ['capacity_factor negative', { capacity_factor: -1 }, 'training.capacity_factor', numMsg(0.1, 16, '-1')],
    ['capacity_factor a string', { capacity_factor: '1' }, 'training.capacity_factor', numMsg(0.1, 16, '"1"')],
    ['global_batch not divisible by micro_batch*dp = 1*8', { global_batch: 12 }, 'training.global_batch', 'global_batch 12 not divisible by micro_batch*dp = 8'],
    ['global_batch not divisible by micro_batch*dp = 2*8', { global_batch: 24, micro_batch: 2 }, 'training.global_batch', 'global_batch 24 not divisible by micro_batch*dp = 16'],
  ])('%s', (_w, patch, file, message) => {
    expectError(vary('training', patch as Raw), file, message);
  });
  it('seq_len not divisible by cp', () => {
    // cp 2: dp = 8 / 2 = 4, global_batch 16 divisible by 4
    expectError(vary('parallel', { cp: 2 }, vary('training', { seq_len: 127 })), 'training.seq_len', 'seq_len 127 not divisible by cp 2');
  });
  it('global_batch checked against dp = devices / (tp*pp): tp 2 pp 2 -> dp 2', () => {
    expectError(vary('parallel', { tp: 2, pp: 2 }, vary('training', { global_batch: 3 })), 'training.global_batch', 'global_batch 3 not divisible by micro_batch*dp = 2');
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('readSpecFile / loadSpec', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moekit-spec-fields-'));
  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const yamlSpec = 'model: mixtral-8x7b\nhardware: { preset: h100, devices: 8 }\ntraining: { seq_len: 128, global_batch: 16 }\n';
  const parserMessage = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('parsed');
  };
  const jsonSpec = JSON.stringify({ model: 'mixtral-8x7b', hardware: { preset: 'h100', devices: 8 }, training: { seq_len: 128, global_batch: 16 } });

  it('a YAML file: the mapping plus __dir, the absolute folder', () => {
    expect(readSpecFile(write('a.yaml', yamlSpec))).toEqual({
      model: 'mixtral-8x7b', hardware: { preset: 'h100', devices: 8 }, training: { seq_len: 128, global_batch: 16 }, __dir: dir,
    });
  });
  it('a JSON file', () => {
    expect(readSpecFile(write('a.json', jsonSpec))).toEqual({
      model: 'mixtral-8x7b', hardware: { preset: 'h100', devices: 8 }, training: { seq_len: 128, global_batch: 16 }, __dir: dir,
    });
  });
  it.each(['b.json', 'B.JSON'])('%s holding YAML is not valid JSON (one line, naming the file)', (name) => {
    const p = write(name, yamlSpec);
    const e = errorOf(() => readSpecFile(p));
    expect(e.message).toBe(`not valid JSON: ${parserMessage(() => JSON.parse(yamlSpec))}`);
    expect(e.message).not.toContain('\n');
    expect(e.file).toBe(p);
  });
  it.each(['b.json.yaml', 'b-json', 'b.jsonl'])('%s is read as YAML', (name) => {
    expect(readSpecFile(write(name, yamlSpec)).model).toBe('mixtral-8x7b');
  });
  it('a missing file or a directory is read as "the spec"', () => {
    const missing = join(dir, 'missing.yaml');
    const e = errorOf(() => readSpecFile(missing));
    expect(e.message).toBe('no such spec file');
    expect(e.file).toBe(missing);
    expect(errorOf(() => readSpecFile(dir)).message).toBe('the spec is a directory, not a regular file');
  });
  it('broken YAML: one line, naming the file', () => {
    const p = write('bad.yaml', 'model: [unclosed\n');
    const e = errorOf(() => readSpecFile(p));
    // the parser's message is several lines (it quotes the input): only its first line is kept
    const full = parserMessage(() => parseYaml('model: [unclosed\n'));
    expect(full).toContain('\n');
    expect(e.message).toBe(`not valid YAML: ${full.split('\n')[0]}`);
    expect(e.message.length).toBeGreaterThan('not valid YAML: '.length + 10);
    expect(e.message).not.toContain('\n');
    expect(e.file).toBe(p);
  });
  it.each([
    ['a list', 'list.yaml', '- a\n- b\n'], ['a scalar', 'scalar.yaml', '42\n'], ['empty', 'empty.yaml', ''],
    ['a JSON array', 'arr.json', '[1, 2]'], ['JSON null', 'null.json', 'null'],
  ])('a file holding %s is not a spec', (_w, name, text) => {
    const p = write(name, text);
    const e = errorOf(() => readSpecFile(p));
    expect(e.message).toBe('spec must be a mapping with model / hardware / parallel / training');
    expect(e.file).toBe(p);
  });
  it('loadSpec: a config path relative to the spec file', () => {
    copyFileSync('fixtures/configs/mixtral-8x7b.json', join(dir, 'cfg.json'));
    const p = write('cfg.yaml', 'model: { config: cfg.json }\nhardware: { preset: h100, devices: 8 }\ntraining: { seq_len: 128, global_batch: 16 }\n');
    const s = loadSpec(p);
    expect([s.model.name, s.model.layers, s.parallel.dp]).toEqual(['mixtral', 32, 8]);
  });
  it('loadSpec: errors name the file as where', () => {
    const p = write('extra.yaml', `${yamlSpec}extra: 1\n`);
    const e = errorOf(() => loadSpec(p));
    expect(e.message).toBe("unknown section 'extra'");
    expect(e.file).toBe(`${p}: extra`);
  });
  it('loadSpec: template passes through (the layout is not validated)', () => {
    const p = write('tmpl.yaml', `${yamlSpec}parallel: { ep: 3 }\n`);
    expect(loadSpec(p, { template: true }).parallel.ep).toBe(3);
    expect(errorOf(() => loadSpec(p)).file).toBe('parallel.ep');
  });
});
