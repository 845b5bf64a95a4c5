/**
 * config.json → a typed reader that names the file and the key in every error. Architecture
 * files (src/models/*.ts) use it to build their ModelDesc; `loadConfig` picks the architecture.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MoekitError } from '../util/errors.js';

type Json = Record<string, unknown>;

/** RoPE as a config describes it (read by ConfigReader.rope; part of the model description) */
export interface RopeDesc {
  type: 'default' | 'linear' | 'yarn' | 'llama3';
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
}


export class ConfigReader {
  constructor(readonly raw: Json, readonly file: string) {}

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }
  private fail(msg: string): never {
    throw new MoekitError(msg, this.file);
  }
  /** a required number */
  num(key: string): number;
  /** a number, or `dflt` when the key is absent or null */
  num(key: string, dflt: number): number;
  num(key: string, dflt?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) this.fail(`missing key '${key}'`);
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`key '${key}' must be a number, got ${JSON.stringify(v)}`);
    return v;
  }
  /** a required positive integer (or `dflt`) */
  int(key: string, dflt?: number): number {
    const v = dflt === undefined ? this.num(key) : this.num(key, dflt);
    if (!Number.isInteger(v) || v < 0) this.fail(`key '${key}' must be a non-negative integer, got ${v}`);
    return v;
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
    if (typeof v === 'number') return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
    this.fail(`key '${key}' must be a token id or a list of them`);
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
    const type = typeRaw === 'deepseek_yarn' ? 'yarn' : typeRaw;
    if (!['default', 'linear', 'yarn', 'llama3'].includes(type)) {
      this.fail(`unsupported rope type '${typeRaw}' (supported: default, linear, yarn, llama3)`);
    }
    const optNum = (k: string): number | undefined => {
      const v = p[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'number') this.fail(`rope parameter '${k}' must be a number`);
      return v;
    };
    const maxPos = this.num('max_position_embeddings', 4096);
    const orig = optNum('original_max_position_embeddings');
    let factor = optNum('factor');
    if (factor === undefined) {
      if (type === 'default') factor = 1;
      else if (type === 'yarn' && orig !== undefined) factor = maxPos / orig;
      else this.fail(`rope type '${type}' needs 'factor'`);
    }
    return {
      type: type as RopeDesc['type'], theta, dim, interleaved, factor,
      originalMaxPositions: orig ?? (type === 'yarn' ? maxPos : undefined),
      betaFast: optNum('beta_fast'), betaSlow: optNum('beta_slow'),
      truncate: p['truncate'] === undefined ? undefined : Boolean(p['truncate']),
      mscale: optNum('mscale'), mscaleAllDim: optNum('mscale_all_dim'),
      attentionFactor: optNum('attention_factor'),
      lowFreqFactor: optNum('low_freq_factor'), highFreqFactor: optNum('high_freq_factor'),
    };
  }
}

/** Read and parse `<dir>/config.json` (or a config file path). */
export function readConfig(dirOrFile: string): ConfigReader {
  if (!fs.existsSync(dirOrFile)) throw new MoekitError('no such model directory or config file', dirOrFile);
  const file = fs.statSync(dirOrFile).isDirectory() ? path.join(dirOrFile, 'config.json') : dirOrFile;
  if (!fs.existsSync(file)) throw new MoekitError('no config.json in the model directory', file);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MoekitError(`malformed JSON: ${(e as Error).message}`, file);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new MoekitError('config must be a JSON object', file);
  return new ConfigReader(raw as Json, file);
}
