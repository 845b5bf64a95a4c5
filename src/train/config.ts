/**
 * The training configuration (`moekit train CONFIG.yaml`, or the same fields from flags), checked field by field:
 * unknown keys, wrong types and impossible values are errors that name the field. Defaults are written here once.
 */
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CONFIG_MAX_BYTES, readJsonCapped, readTextCapped, SPEC_MAX_BYTES, YAML_OPTIONS } from '../io/read.js';
import { MoekitError } from '../util/errors.js';
import type { BalanceWeights } from '../moe/balance.js';
import type { ElasticConfig } from './elastic.js';
import type { MtpKind } from '../models/mtp.js';
import type { ScheduleKind } from './schedule.js';

export interface TrainConfig {
  /** a config.json (object or path) to initialise at random, or a checkpoint directory to start from */
  model: { config?: Record<string, unknown>; from?: string; init_seed: number; init_std: number };
  data: {
    source: 'builtin' | 'text' | 'jsonl'; files: string[]; tasks: string[]; seq_len: number; tokenizer?: string;
    /** built-in corpus: relative weight per task name (default 1 each) */
    mix: Record<string, number>;
    /**
     * intra-document attention masking: a token of a packed row attends only to its own example, not to the examples
     * packed before it (default false: the whole row, as Megatron's default without --reset-attention-mask)
     */
    doc_mask: boolean;
  };
  train: {
    steps: number; batch_size: number; grad_accum: number; lr: number; min_lr: number; schedule: ScheduleKind;
    warmup: number; decay_fraction: number; weight_decay: number; betas: [number, number]; eps: number; clip: number; seed: number;
    /** data-parallel threads (micro-batches are spread over them; 1: this thread only) */
    workers: number;
  };
  balance: Required<BalanceWeights> & { aux_free: number };
  elastic: ElasticConfig | null;
  /**
   * multi-token prediction (docs/mtp.md): none (plain next-token loss), deepseek (DeepSeek-V3's MTP modules) or group
   * (next-group-of-tokens heads); depth modules (heads), null: the model config's count (else 1); loss = CE + weight ·
   * mean over depths of the MTP CE
   */
  mtp: { kind: 'none' | MtpKind; depth: number | null; weight: number };
  checkpoint: { every: number; keep: number };
  log_every: number;
  out: string;
}

export const DEFAULTS = {
  model: { init_seed: 0, init_std: 0.02 },
  data: { source: 'builtin', files: [], tasks: [], seq_len: 128, mix: {}, doc_mask: false },
  train: {
    steps: 1000, batch_size: 8, grad_accum: 1, lr: 3e-3, min_lr: 3e-4, schedule: 'cosine', warmup: 50,
    decay_fraction: 0.2, weight_decay: 0.1, betas: [0.9, 0.95], eps: 1e-8, clip: 1.0, seed: 0, workers: 1,
  },
  balance: { switch: 0.01, seq: 0, global: 0, zloss: 0, aux_free: 0 },
  mtp: { kind: 'none', depth: null, weight: 0.3 },
  checkpoint: { every: 100, keep: 2 },
  log_every: 1,
};

type Kind = 'num' | 'int' | 'str' | 'bool' | 'strs' | 'nums' | 'obj' | 'objstr' | 'axis';
const SCHEMA: Record<string, Record<string, Kind> | Kind> = {
  model: { config: 'objstr', from: 'str', init_seed: 'int', init_std: 'num' },
  data: { source: 'str', files: 'strs', tasks: 'strs', seq_len: 'int', tokenizer: 'str', mix: 'obj', doc_mask: 'bool' },
  train: {
    steps: 'int', batch_size: 'int', grad_accum: 'int', lr: 'num', min_lr: 'num', schedule: 'str', warmup: 'int',
    decay_fraction: 'num', weight_decay: 'num', betas: 'nums', eps: 'num', clip: 'num', seed: 'int', workers: 'int',
  },
  balance: { switch: 'num', seq: 'num', global: 'num', zloss: 'num', aux_free: 'num' },
  elastic: { depth: 'axis', experts: 'axis', top_k: 'axis', samples: 'int', distill: 'num' },
  mtp: { kind: 'str', depth: 'int', weight: 'num' },
  checkpoint: { every: 'int', keep: 'int' },
  log_every: 'int',
  out: 'str',
  recipe: 'str',
};

/**
 * Upper limits of the numbers (by key): sizes that become allocations (batch × sequence), counts that become loops
 * (workers, samples), and rates far past any that trains (an lr of 1e300 computed NaN losses). The rest: integers up
 * to 2^31, numbers up to 1e9.
 */
const LIMITS: Record<string, number> = {
  'data.seq_len': 2 ** 20, 'train.batch_size': 2 ** 16, 'train.grad_accum': 2 ** 16, 'train.workers': 256,
  'mtp.depth': 64, 'elastic.samples': 1024,
  'model.init_std': 10, 'train.lr': 10, 'train.min_lr': 10, 'train.eps': 1, 'train.clip': 1e6, 'train.weight_decay': 10,
  'balance.switch': 1e3, 'balance.seq': 1e3, 'balance.global': 1e3, 'balance.zloss': 1e3, 'balance.aux_free': 1e3,
  'mtp.weight': 1e3, 'elastic.distill': 1e3,
};

function checkKind(v: unknown, k: Kind, where: string, file?: string): void {
  const max = LIMITS[where] ?? (k === 'int' ? 2 ** 31 : 1e9);
  if ((k === 'num' || k === 'int') && typeof v === 'number' && Number.isFinite(v) && Math.abs(v) > max) {
    throw new MoekitError(`${where} must be at most ${max}${k === 'num' ? ' in magnitude' : ''}, got ${v}`, file);
  }
  const ok = {
    num: () => typeof v === 'number' && Number.isFinite(v),
    int: () => Number.isSafeInteger(v) && (v as number) >= 0,
    str: () => typeof v === 'string',
    bool: () => typeof v === 'boolean',
    strs: () => Array.isArray(v) && v.every((x) => typeof x === 'string'),
    nums: () => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)),
    obj: () => v !== null && typeof v === 'object' && !Array.isArray(v),
    axis: () => Array.isArray(v) || (v !== null && typeof v === 'object'),
    objstr: () => typeof v === 'string' || (v !== null && typeof v === 'object' && !Array.isArray(v)),
  }[k]();
  const what = { num: 'a number', int: 'a non-negative integer', str: 'a string', bool: 'true or false', strs: 'a list of strings', nums: 'a list of numbers', obj: 'a mapping', objstr: 'a mapping or a file path', axis: 'a list of choices or {choices, probs}' }[k];
  if (!ok) throw new MoekitError(`${where} must be ${what}, got ${JSON.stringify(v)}`, file);
}

/** check the shape of a raw config object (keys and types), before defaults */
export function checkRaw(raw: unknown, file?: string): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new MoekitError('the training config must be a mapping', file);
  const o = raw as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    const s = SCHEMA[k];
    if (s === undefined) throw new MoekitError(`unknown key '${k}' (known: ${Object.keys(SCHEMA).join(', ')})`, file);
    if (typeof s === 'string') { checkKind(v, s, k, file); continue; }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MoekitError(`${k} must be a mapping`, file);
    for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) {
      const s2 = s[k2];
      if (s2 === undefined) throw new MoekitError(`unknown key '${k}.${k2}' (known: ${Object.keys(s).join(', ')})`, file);
      if (v2 !== null) checkKind(v2, s2, `${k}.${k2}`, file);
    }
  }
  return o;
}

function axis(v: unknown, where: string): ElasticConfig['depth'] {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) v = { choices: v };
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'choices' && k !== 'probs') throw new MoekitError(`unknown key '${where}.${k}' (known: choices, probs)`);
  checkKind(o.choices, 'nums', `${where}.choices`);
  if (o.probs !== undefined) checkKind(o.probs, 'nums', `${where}.probs`);
  return { choices: o.choices as number[], probs: o.probs as number[] | undefined };
}

/** a raw config (from YAML / flags) with defaults filled and values checked; `base` resolves relative paths */
export function resolveConfig(raw: Record<string, unknown>, base = process.cwd()): TrainConfig {
  checkRaw(raw);
  // a null value (an empty YAML key) means the default, as checkRaw reads it
  const given = (k: string) => Object.fromEntries(Object.entries((raw[k] as object) ?? {}).filter(([, v]) => v !== null));
  const g = <T extends object>(k: string, d: T): T => ({ ...d, ...given(k) }) as T;
  const model = g('model', DEFAULTS.model) as TrainConfig['model'];
  const data = g('data', DEFAULTS.data) as TrainConfig['data'];
  const train = g('train', DEFAULTS.train) as TrainConfig['train'];
  const balance = g('balance', DEFAULTS.balance) as TrainConfig['balance'];
  const checkpoint = g('checkpoint', DEFAULTS.checkpoint) as TrainConfig['checkpoint'];
  const mtp = g('mtp', DEFAULTS.mtp) as TrainConfig['mtp'];
  const rel = (p: string) => path.resolve(base, p);
  if ((model.config === undefined) === (model.from === undefined)) throw new MoekitError('model: give exactly one of model.config (a config.json to initialise at random) or model.from (a checkpoint directory)');
  if (typeof (raw.model as Record<string, unknown>)?.config === 'string') {
    const f = rel((raw.model as Record<string, string>).config);
    model.config = readJsonCapped(f, CONFIG_MAX_BYTES, 'model.config') as typeof model.config;
  }
  if (model.from) model.from = rel(model.from);
  if (!(model.init_std > 0)) throw new MoekitError(`model.init_std must be > 0, got ${model.init_std}`);
  if (!['builtin', 'text', 'jsonl'].includes(data.source)) throw new MoekitError(`data.source must be builtin, text or jsonl, got '${data.source}'`);
  if (data.source !== 'builtin' && data.files.length === 0) throw new MoekitError(`data.files: the ${data.source} source needs at least one file`);
  data.files = data.files.map(rel);
  if (data.tokenizer) data.tokenizer = rel(data.tokenizer);
  if (data.seq_len < 2) throw new MoekitError(`data.seq_len must be ≥ 2, got ${data.seq_len}`);
  if (Object.keys(data.mix).length && data.source !== 'builtin') throw new MoekitError(`data.mix weighs the built-in corpus's tasks; data.source is '${data.source}'`);
  for (const [k, w] of Object.entries(data.mix)) if (typeof w !== 'number' || !(w >= 0)) throw new MoekitError(`data.mix.${k} must be a number ≥ 0, got ${JSON.stringify(w)}`);
  if (train.steps < 1) throw new MoekitError(`train.steps must be ≥ 1, got ${train.steps}`);
  if (train.batch_size < 1) throw new MoekitError(`train.batch_size must be ≥ 1, got ${train.batch_size}`);
  if (train.grad_accum < 1) throw new MoekitError(`train.grad_accum must be ≥ 1, got ${train.grad_accum}`);
  if (!(train.lr > 0)) throw new MoekitError(`train.lr must be > 0, got ${train.lr}`);
  if (!(train.min_lr >= 0 && train.min_lr <= train.lr)) throw new MoekitError(`train.min_lr must be in [0, lr], got ${train.min_lr}`);
  if (!['constant', 'cosine', 'wsd'].includes(train.schedule)) throw new MoekitError(`train.schedule must be constant, cosine or wsd, got '${train.schedule}'`);
  if (!(train.decay_fraction > 0 && train.decay_fraction <= 1)) throw new MoekitError(`train.decay_fraction must be in (0, 1], got ${train.decay_fraction}`);
  if (train.betas.length !== 2 || !train.betas.every((b) => b >= 0 && b < 1)) throw new MoekitError(`train.betas must be two numbers in [0, 1), got ${JSON.stringify(train.betas)}`);
  if (!(train.eps > 0)) throw new MoekitError(`train.eps must be > 0`);
  if (!(train.clip >= 0)) throw new MoekitError(`train.clip must be ≥ 0 (0: no clipping)`);
  if (!(train.weight_decay >= 0)) throw new MoekitError(`train.weight_decay must be ≥ 0`);
  if (train.workers < 1) throw new MoekitError(`train.workers must be ≥ 1, got ${train.workers}`);
  if (train.workers > 1 && train.grad_accum < train.workers) throw new MoekitError(`train.workers ${train.workers} needs train.grad_accum ≥ ${train.workers} (each thread takes whole micro-batches)`);
  for (const [k, v] of Object.entries(balance)) if (!(v >= 0)) throw new MoekitError(`balance.${k} must be ≥ 0, got ${v}`);
  if (!['none', 'deepseek', 'group'].includes(mtp.kind)) throw new MoekitError(`mtp.kind must be none, deepseek or group, got '${mtp.kind}'`);
  if (mtp.depth !== null && mtp.depth < 1) throw new MoekitError(`mtp.depth must be ≥ 1, got ${mtp.depth}`);
  if (!(mtp.weight >= 0)) throw new MoekitError(`mtp.weight must be ≥ 0, got ${mtp.weight}`);
  if (checkpoint.keep < 1) throw new MoekitError(`checkpoint.keep must be ≥ 1`);
  const e = raw.elastic as Record<string, unknown> | undefined;
  const elastic: ElasticConfig | null = e ? {
    depth: axis(e.depth, 'elastic.depth'), experts: axis(e.experts, 'elastic.experts'), topK: axis(e.top_k, 'elastic.top_k'),
    samples: (e.samples as number | undefined) ?? 1, distill: (e.distill as number | undefined) ?? 0,
  } : null;
  if (typeof raw.out !== 'string' || raw.out === '') throw new MoekitError('out: the output directory is required');
  return {
    model, data, train, balance, elastic, mtp, checkpoint,
    log_every: (raw.log_every as number | undefined) ?? DEFAULTS.log_every, out: rel(raw.out as string),
  };
}

/** read a YAML (or JSON) training config */
export function readConfigFile(file: string): Record<string, unknown> {
  const text = readTextCapped(file, SPEC_MAX_BYTES, 'training config');
  let raw: unknown;
  try { raw = parseYaml(text, YAML_OPTIONS); } catch (e) { throw new MoekitError(`malformed YAML: ${(e as Error).message.split('\n')[0]}`, file); }
  return checkRaw(raw, file);
}
