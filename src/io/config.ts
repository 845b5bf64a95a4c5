/**
 * config.json → a typed reader that names the file and the key in every error. Architecture
 * files (src/models/*.ts) use it to build their ModelDesc; `loadConfig` picks the architecture.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MoekitError } from '../util/errors.js';
import { CONFIG_MAX_BYTES, readJsonCapped } from './read.js';

type Json = Record<string, unknown>;

/** RoPE as a config describes it (read by ConfigReader.rope; part of the model description) */
export interface RopeDesc {
  type: 'default' | 'linear' | 'yarn' | 'llama3' | 'longrope';
  theta: number;
  /** rotated dims per head (≤ D; D·partial_rotary_factor, or qk_rope_head_dim for MLA) */
  dim: number;
  /** pairs (2i, 2i+1) instead of (i, i + dim/2) */
  interleaved: boolean;
  /** scaling factor (linear, yarn, llama3) */
  factor: number;
  /** YaRN / llama3 extras */
  originalMaxPositions?: number;
  betaFast?: number;
  betaSlow?: number;
  truncate?: boolean;
  mscale?: number;
  mscaleAllDim?: number;
  attentionFactor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  /**
   * longrope: per-frequency divisors [dim/2] of the positions within original_max_position_embeddings (the ones
   * used: transformers 5.17's Phimoe and Phi-3 rotary embeddings compute their frequencies without a sequence
   * length, hence from the short factors; longFactor is kept for the record)
   */
  shortFactor?: number[];
  longFactor?: number[];
}


/** the allowed range of a number read from a config */
export interface NumRange {
  min?: number;
  max?: number;
  /** min itself excluded: v > min */
  exclusiveMin?: boolean;
  /** 0 refused */
  nonZero?: boolean;
}

/**
 * Upper limits of the size keys, whoever reads them: they keep every allocation a description leads to possible
 * (and `inspect` of a config alone fast). Far above any published model.
 */
export const SIZE_LIMITS: Record<string, number> = {
  num_hidden_layers: 4096, hidden_size: 65536, vocab_size: 2 ** 24, max_position_embeddings: 2 ** 24,
  num_local_experts: 4096, num_experts: 4096, n_routed_experts: 4096, moe_num_experts: 4096,
  num_experts_per_tok: 4096, moe_k: 4096, n_shared_experts: 4096, moe_num_shared_experts: 4096,
  n_group: 4096, topk_group: 4096,
  intermediate_size: 2 ** 20, moe_intermediate_size: 2 ** 20, shared_expert_intermediate_size: 2 ** 20,
  num_attention_heads: 65536, num_key_value_heads: 65536, head_dim: 65536,
  q_lora_rank: 65536, kv_lora_rank: 65536, qk_nope_head_dim: 65536, qk_rope_head_dim: 65536, v_head_dim: 65536,
  original_max_position_embeddings: 2 ** 24,
};

/** "an integer in [0, 4096]", "a number > 0" */
export function rangeText(r: NumRange, max: number | undefined, int: boolean): string {
  const what = int ? 'an integer' : 'a number';
  const lo = r.min, nz = r.nonZero ? ' other than 0' : '';
  if (lo !== undefined && max !== undefined) return `${what} in ${r.exclusiveMin ? '(' : '['}${lo}, ${max}]${nz}`;
  if (lo !== undefined) return `${what} ${r.exclusiveMin ? '>' : '≥'} ${lo}${nz}`;
  if (max !== undefined) return `${what} ≤ ${max}${nz}`;
  return `${what}${nz || ''}`;
}

export class ConfigReader {
  constructor(readonly raw: Json, readonly file: string) {}

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }
  private fail(msg: string): never {
    throw new MoekitError(msg, this.file);
  }
  /**
   * a number (required when `dflt` is undefined; `dflt` when the key is absent or null), checked against `r`
   * and, for the size keys of SIZE_LIMITS, against their limit
   */
  num(key: string, dflt?: number, r: NumRange = {}): number {
    return this.ranged(key, dflt, r, false);
  }
  /** a non-negative integer (required when `dflt` is undefined), checked against `r` and SIZE_LIMITS */
  int(key: string, dflt?: number, r: NumRange = {}): number {
    return this.ranged(key, dflt, { min: 0, ...r }, true);
  }
  private ranged(key: string, dflt: number | undefined, r: NumRange, int: boolean): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) this.fail(`missing key '${key}'`);
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`key '${key}' must be a finite number, got ${JSON.stringify(v)}`);
    this.checkRange(key, v, r, int);
    return v;
  }
  private checkRange(key: string, v: number, r: NumRange, int: boolean): void {
    const lim = SIZE_LIMITS[key];
    const max = r.max ?? lim;
    const bad = (int && !Number.isInteger(v)) ||
      (r.min !== undefined && (r.exclusiveMin ? !(v > r.min) : !(v >= r.min))) ||
      (max !== undefined && !(v <= max)) || (r.nonZero && v === 0);
    if (bad) this.fail(`key '${key}' must be ${rangeText(r, max, int)}, got ${v}`);
  }
  bool(key: string, dflt: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') this.fail(`key '${key}' must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  str(key: string, dflt?: string): string {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) this.fail(`missing key '${key}'`);
      return dflt;
    }
    if (typeof v !== 'string') this.fail(`key '${key}' must be a string, got ${JSON.stringify(v)}`);
    return v;
  }
  /** an optional array (null when absent) */
  arr(key: string): unknown[] | null {
    const v = this.raw[key];
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v)) this.fail(`key '${key}' must be a list, got ${JSON.stringify(v)}`);
    return v;
  }
  /** a required value check */
  ensure(cond: unknown, msg: string): asserts cond {
    if (!cond) this.fail(msg);
  }

  /** token ids that may be a number, a list or null */
  ids(key: string): number[] {
    const v = this.raw[key];
    if (v === undefined || v === null) return [];
    if (Number.isSafeInteger(v)) return [v as number];
    if (Array.isArray(v) && v.every((x) => Number.isSafeInteger(x))) return v as number[];
    this.fail(`key '${key}' must be an integer token id or a list of them, got ${JSON.stringify(v)}`);
  }

  /**
   * RoPE parameters from either transformers 5's `rope_parameters` or the older
   * `rope_theta` + `rope_scaling`. `dim` is the rotated width per head.
   */
  rope(dim: number, interleaved: boolean): RopeDesc {
    const params = (this.raw['rope_parameters'] ?? null) as Json | null;
    const scaling = (this.raw['rope_scaling'] ?? null) as Json | null;
    if (params !== null && typeof params !== 'object') this.fail(`key 'rope_parameters' must be an object`);
    if (scaling !== null && typeof scaling !== 'object') this.fail(`key 'rope_scaling' must be an object`);
    const p: Json = { ...(scaling ?? {}), ...(params ?? {}) };
    const theta = (p['rope_theta'] ?? this.raw['rope_theta']) as number | undefined;
    if (typeof theta !== 'number') this.fail(`missing key 'rope_theta' (or 'rope_parameters.rope_theta')`);
    const typeRaw = (p['rope_type'] ?? p['type'] ?? 'default') as string;
    let type = typeRaw === 'deepseek_yarn' ? 'yarn' : typeRaw;
    let base = theta;
    if (type === 'dynamic') {
      // dynamic NTK: within max_position_embeddings the frequencies are the default ones, of a base raised by
      // HunYuan's NTK alpha when given (theta · alpha^(dim / (dim − 2)), transformers' HunYuanMoEV1RotaryEmbedding);
      // transformers recomputes them past max_position_embeddings, which moekit refuses (validate: maxPositions)
      const alpha = p['alpha'];
      if (alpha !== undefined && alpha !== null) {
        if (typeof alpha !== 'number' || !(alpha > 0) || !Number.isFinite(alpha)) this.fail(`rope parameter 'alpha' must be a positive number, got ${JSON.stringify(alpha)}`);
        if (!(dim > 2)) this.fail(`rope parameter 'alpha' needs more than 2 rotated dims per head, got ${dim}`);
        base = theta * Math.pow(alpha, dim / (dim - 2));
      }
      type = 'default';
    }
    if (!['default', 'linear', 'yarn', 'llama3', 'longrope'].includes(type)) {
      this.fail(`unsupported rope type '${typeRaw}' (supported: default, dynamic, linear, yarn, llama3, longrope)`);
    }
    const optNum = (k: string): number | undefined => {
      const v = p[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'number') this.fail(`rope parameter '${k}' must be a number`);
      return v;
    };
    const maxPos = this.int('max_position_embeddings', 4096);
    const orig = optNum('original_max_position_embeddings') ?? (type === 'longrope' && this.has('original_max_position_embeddings') ? this.num('original_max_position_embeddings') : undefined);
    let longrope: Pick<RopeDesc, 'shortFactor' | 'longFactor' | 'attentionFactor'> = {};
    if (type === 'longrope') {
      const list = (k: string): number[] => {
        const v = p[k];
        if (!Array.isArray(v) || v.length !== dim / 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)) {
          this.fail(`rope parameter '${k}' must list ${dim / 2} positive numbers (one per rotated pair), got ${JSON.stringify(v)?.slice(0, 80)}`);
        }
        return v as number[];
      };
      if (orig === undefined) this.fail(`rope type 'longrope' needs 'original_max_position_embeddings'`);
      // cos and sin scale: PhiMoE's short_mscale (its rotary embedding, within original_max_position_embeddings), else
      // attention_factor, else √(1 + ln(factor) / ln(original)) with factor = max_position_embeddings / original
      const fac = optNum('factor') ?? maxPos / orig;
      const af = optNum('short_mscale') ?? optNum('attention_factor') ?? (fac <= 1 ? 1 : Math.sqrt(1 + Math.log(fac) / Math.log(orig)));
      longrope = { shortFactor: list('short_factor'), longFactor: list('long_factor'), attentionFactor: af };
    }
    let factor = optNum('factor');
    if (factor === undefined) {
      if (type === 'default' || type === 'longrope') factor = 1;
      else if (type === 'yarn' && orig !== undefined) factor = maxPos / orig;
      else this.fail(`rope type '${type}' needs 'factor'`);
    }
    return {
      type: type as RopeDesc['type'], theta: base, dim, interleaved, factor,
      originalMaxPositions: orig ?? (type === 'yarn' ? maxPos : undefined),
      betaFast: optNum('beta_fast'), betaSlow: optNum('beta_slow'),
      truncate: p['truncate'] === undefined ? undefined : Boolean(p['truncate']),
      mscale: optNum('mscale'), mscaleAllDim: optNum('mscale_all_dim'),
      attentionFactor: optNum('attention_factor'),
      lowFreqFactor: optNum('low_freq_factor'), highFreqFactor: optNum('high_freq_factor'),
      ...longrope,
    };
  }
}

/** Read and parse `<dir>/config.json` (or a config file path). */
export function readConfig(dirOrFile: string): ConfigReader {
  if (!fs.existsSync(dirOrFile)) throw new MoekitError('no such model directory or config file', dirOrFile);
  const file = fs.statSync(dirOrFile).isDirectory() ? path.join(dirOrFile, 'config.json') : dirOrFile;
  if (!fs.existsSync(file)) throw new MoekitError('no config.json in the model directory', file);
  const raw = readJsonCapped(file, CONFIG_MAX_BYTES, 'config');
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new MoekitError('config must be a JSON object', file);
  return new ConfigReader(raw as Json, file);
}
