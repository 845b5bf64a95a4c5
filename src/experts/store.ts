/**
 * The pattern store: one JSON file of task patterns for one model, written atomically (a temporary name,
 * then rename), so an interrupted writer leaves the previous version whole. It holds
 * - the model's identity (a hash of config.json, every tensor's name, dtype and shape, and the bytes of
 *   the final norm weight, which any training changes): a store from another model is refused;
 * - per task: the running sums of the profile (so a profile resumes where it stopped: `examples` done of
 *   `target`), and derived from them the scores per MoE layer, the kept sets per budget and the retrieval
 *   centroid with its spread;
 * - the bytes a pattern needs (non-expert weights + M experts per MoE layer), per budget.
 * Readers check everything (format, model, every MoE layer of every pattern, array lengths, finite values)
 * and fail with one line naming the store and the problem.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpoint } from '../io/checkpoint.js';
import { readConfig } from '../io/config.js';
import type { ModelDesc } from '../models/desc.js';
import { describeModel } from '../models/registry.js';
import { MoekitError } from '../util/errors.js';
import { emptyLayerSums, layerScores, SCORES, type LayerSums, type ScoreName } from './scores.js';
import { ratioBudget, topExperts, type Budget } from './select.js';

export const STORE_FORMAT = 'moekit-premoe-store';
export const STORE_VERSION = 1;
/**
 * TCESS's default confidence threshold r: a selection counts only when the router gave the expert ≥ 0.2. The
 * demo model's router is flat (median first choice 0.095 of 16 experts); with r = 0 TCESS is close to selection
 * frequency and 25% patterns kept 79% of the full model's accuracy on six tasks; r = 0.15, 0.2, 0.3 kept ≥ 99%,
 * r = 0.5 85% (docs/premoe.md).
 */
export const DEFAULT_R = 0.2;
/** the keep ratios whose kept sets the store lists (and `experts eval` measures) */
export const RATIOS = [1, 0.75, 0.5, 0.25] as const;

export interface ModelIdentity {
  /** sha256 (first 16 hex digits) of config + tensor names/dtypes/shapes + the final norm's bytes */
  id: string;
  arch: string;
  experts: number;
  topK: number;
  nGroup: number;
  /** decoder indices of the MoE layers */
  moeLayers: number[];
}

/** how the profile counts and how retrieval reads a prompt */
export interface StoreSettings {
  /** TCESS confidence threshold r */
  r: number;
  /** decoder indices of the MoE layers whose router statistics make the retrieval vector */
  retrievalLayers: number[];
}

export interface LayerSumsJson { tcess: number[]; count: number[]; soft: number[]; reap: number[] }

export interface TaskRecord {
  /** 'builtin', or the calibration file */
  source: string;
  /** calibration examples asked for, and done (the profile resumes at `examples`) */
  target: number;
  examples: number;
  complete: boolean;
  /** counted tokens (T of the scores) */
  tokens: number;
  /** decoder layer → running sums */
  sums: Record<string, LayerSumsJson>;
  /** retrieval: Σ of the calibration prompts' vectors, Σ of their squared norms, and how many */
  query: { n: number; sum: number[]; sumSq: number };
  // derived from the sums on every write (readers need not recompute them)
  scores: Record<ScoreName, Record<string, number[]>>;
  /** score → "M" → decoder layer → kept expert ids */
  keep: Record<ScoreName, Record<string, Record<string, number[]>>>;
  /** retrieval centroid and the RMS distance of the task's calibration prompts to it */
  vector: number[];
  radius: number;
}

export interface StoreFile {
  format: typeof STORE_FORMAT;
  version: number;
  model: ModelIdentity;
  settings: StoreSettings;
  /** Euclidean distance above which retrieval falls back (to the general pattern or the full model) */
  retrieval: { threshold: number };
  /** checkpoint bytes: non-expert weights, one expert of each MoE layer together, and per budget */
  bytes: { nonExpert: number; perExpertAllLayers: number; budgets: (Budget & { bytes: number })[] };
  tasks: Record<string, TaskRecord>;
  /** pooled over every complete task: the pattern for prompts that match none */
  general: TaskRecord | null;
}

/** the identity of the model in dir, from its config and tensor headers (and the final norm's bytes) */
export function modelIdentity(dir: string): { identity: ModelIdentity; desc: ModelDesc; bytes: { nonExpert: number; perExpertAllLayers: number } } {
  const cfg = readConfig(dir);
  const { desc: d } = describeModel(cfg);
  const ck = Checkpoint.open(path.dirname(cfg.file));
  try {
    const h = createHash('sha256');
    const raw = { ...cfg.raw } as Record<string, unknown>;
    for (const k of ['_name_or_path', 'transformers_version']) delete raw[k];
    h.update(stableJson(raw));
    let total = 0, routed = 0;
    for (const name of [...ck.names()].sort()) {
      const t = ck.info(name);
      h.update(`\n${name} ${t.dtype} [${t.shape.join(',')}]`);
      total += t.byteLength;
      if (/\.experts\.|block_sparse_moe\.(input|output)_linear\./.test(name)) routed += t.byteLength;
    }
    if (ck.has('model.norm.weight')) h.update(ck.readRaw('model.norm.weight'));
    const moeLayers = d.layers.flatMap((l, i) => (l.mlp === 'moe' ? [i] : []));
    return {
      identity: { id: h.digest('hex').slice(0, 16), arch: d.arch, experts: d.moe.experts, topK: d.moe.topK, nGroup: d.moe.nGroup, moeLayers },
      desc: d,
      bytes: { nonExpert: total - routed, perExpertAllLayers: d.moe.experts ? routed / d.moe.experts : 0 },
    };
  } finally {
    ck.close();
  }
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/** a new, empty store for the model in dir */
export function newStore(dir: string, settings: Partial<StoreSettings> = {}): StoreFile {
  const { identity, desc, bytes } = modelIdentity(dir);
  const r = settings.r ?? DEFAULT_R;
  if (!(Number.isFinite(r) && r >= 0 && r <= 1)) throw new MoekitError(`the TCESS threshold r must be in [0, 1], got ${r}`);
  const retrievalLayers = settings.retrievalLayers ?? identity.moeLayers.slice(0, 2);
  for (const l of retrievalLayers) if (!identity.moeLayers.includes(l)) throw new MoekitError(`retrieval layer ${l} is not a MoE layer (MoE layers: ${identity.moeLayers.join(', ')})`);
  if (retrievalLayers.length === 0) throw new MoekitError('retrieval needs at least one MoE layer');
  const budgets = RATIOS.map((q) => ratioBudget(desc, q)).filter((b, i, a) => a.findIndex((x) => x.keep === b.keep) === i)
    .map((b) => ({ ...b, bytes: Math.round(bytes.nonExpert + b.keep * bytes.perExpertAllLayers) }));
  return {
    format: STORE_FORMAT, version: STORE_VERSION, model: identity, settings: { r, retrievalLayers },
    retrieval: { threshold: 0 }, bytes: { ...bytes, budgets }, tasks: {}, general: null,
  };
}

/** an empty task record (running sums at 0) */
export function newTask(s: StoreFile, source: string, target: number): TaskRecord {
  const E = s.model.experts, dims = s.settings.retrievalLayers.length * E;
  const sums: Record<string, LayerSumsJson> = {};
  for (const l of s.model.moeLayers) sums[l] = toJson(emptyLayerSums(E));
  return {
    source, target, examples: 0, complete: false, tokens: 0, sums, query: { n: 0, sum: new Array(dims).fill(0), sumSq: 0 },
    scores: {} as TaskRecord['scores'], keep: {} as TaskRecord['keep'], vector: new Array(dims).fill(0), radius: 0,
  };
}

export function toJson(s: LayerSums): LayerSumsJson {
  return { tcess: Array.from(s.tcess), count: Array.from(s.count), soft: Array.from(s.soft), reap: Array.from(s.reap) };
}
export function fromJson(s: LayerSumsJson): LayerSums {
  return { tcess: Float64Array.from(s.tcess), count: Float64Array.from(s.count), soft: Float64Array.from(s.soft), reap: Float64Array.from(s.reap) };
}

/** recompute what a task record derives from its sums: scores, kept sets per budget, centroid, spread */
export function derive(s: StoreFile, desc: ModelDesc, t: TaskRecord): void {
  const scores = Object.fromEntries(SCORES.map((k) => [k, {} as Record<string, number[]>])) as TaskRecord['scores'];
  for (const l of s.model.moeLayers) {
    const ls = layerScores(fromJson(t.sums[l]), t.tokens);
    for (const k of SCORES) scores[k][l] = ls[k];
  }
  t.scores = scores;
  t.keep = Object.fromEntries(SCORES.map((k) => [k, Object.fromEntries(s.bytes.budgets.map((b) => [String(b.keep), keepOf(s, desc, t, k, b.keep)]))])) as TaskRecord['keep'];
  const n = t.query.n;
  t.vector = t.query.sum.map((v) => (n ? v / n : 0));
  const c2 = t.vector.reduce((a, v) => a + v * v, 0);
  t.radius = n ? Math.sqrt(Math.max(0, t.query.sumSq / n - c2)) : 0;
}

/** the kept set of task record t by score at M experts per MoE layer */
export function keepOf(s: StoreFile, desc: ModelDesc, t: TaskRecord, score: ScoreName, M: number): Record<number, number[]> {
  const out: Record<number, number[]> = {};
  for (const l of s.model.moeLayers) {
    const ls = layerScores(fromJson(t.sums[l]), t.tokens);
    out[l] = topExperts(desc, ls[score], M, ls.frequency);
  }
  return out;
}

/** the general pattern (sums pooled over the complete tasks) and the retrieval threshold, from the tasks */
export function finish(s: StoreFile, desc: ModelDesc): void {
  const done = Object.values(s.tasks).filter((t) => t.complete);
  for (const t of Object.values(s.tasks)) derive(s, desc, t);
  if (done.length === 0) { s.general = null; s.retrieval.threshold = 0; return; }
  const g = newTask(s, 'general: pooled over ' + Object.keys(s.tasks).filter((k) => s.tasks[k].complete).join(', '), 0);
  g.complete = true;
  for (const t of done) {
    g.target += t.target; g.examples += t.examples; g.tokens += t.tokens;
    for (const l of s.model.moeLayers) for (const k of ['tcess', 'count', 'soft', 'reap'] as const) t.sums[l][k].forEach((v, e) => (g.sums[l][k][e] += v));
    g.query.n += t.query.n; g.query.sumSq += t.query.sumSq;
    t.query.sum.forEach((v, i) => (g.query.sum[i] += v));
  }
  derive(s, desc, g);
  s.general = g;
  // a prompt farther than 3 spreads (RMS) of the widest task from every centroid matches none
  s.retrieval.threshold = 3 * Math.max(...done.map((t) => t.radius));
}

/** write the store atomically */
export function writeStore(file: string, s: StoreFile): void {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, JSON.stringify(s) + '\n');
  fs.renameSync(tmp, file);
}

/**
 * Read and check a store. With `modelDir`, the store must come from that model (its identity); every
 * pattern must have every MoE layer, arrays of the model's lengths, finite values.
 */
export function readStore(file: string, modelDir?: string): StoreFile {
  if (!fs.existsSync(file)) throw new MoekitError('no such pattern store', file);
  const text = fs.readFileSync(file, 'utf8');
  let s: StoreFile;
  try {
    s = JSON.parse(text) as StoreFile;
  } catch {
    throw new MoekitError(`malformed JSON (${text.length ? 'truncated or corrupt' : 'empty'}): not a readable pattern store`, file);
  }
  const bad = (what: string): never => { throw new MoekitError(what, file); };
  if (!s || typeof s !== 'object' || s.format !== STORE_FORMAT) bad(`not a moekit pattern store (format is not '${STORE_FORMAT}')`);
  if (s.version !== STORE_VERSION) bad(`pattern store version ${String(s.version)}, this moekit reads version ${STORE_VERSION}`);
  const m = s.model;
  if (!m || typeof m.id !== 'string' || !Number.isInteger(m.experts) || !Array.isArray(m.moeLayers)) bad('the store has no valid model identity');
  if (!s.settings || !Array.isArray(s.settings.retrievalLayers) || typeof s.settings.r !== 'number') bad('the store has no valid settings');
  if (!s.tasks || typeof s.tasks !== 'object') bad("the store has no 'tasks'");
  if (!s.bytes || !Array.isArray(s.bytes.budgets)) bad("the store has no 'bytes'");
  const E = m.experts, dims = s.settings.retrievalLayers.length * E;
  const nums = (a: unknown, n: number, what: string) => {
    if (!Array.isArray(a) || a.length !== n || !a.every((v) => typeof v === 'number' && Number.isFinite(v))) bad(`${what}: expected ${n} finite numbers`);
  };
  const checkTask = (name: string, t: TaskRecord) => {
    if (!t || typeof t !== 'object' || !t.sums || !t.query) bad(`pattern '${name}' is incomplete (no sums)`);
    if (!Number.isInteger(t.examples) || !Number.isInteger(t.target) || typeof t.tokens !== 'number') bad(`pattern '${name}': examples, target and tokens must be numbers`);
    for (const l of m.moeLayers) {
      const ls = t.sums[l];
      if (!ls) bad(`pattern '${name}' has no scores for MoE layer ${l} (the model's MoE layers: ${m.moeLayers.join(', ')})`);
      for (const k of ['tcess', 'count', 'soft', 'reap'] as const) nums(ls[k], E, `pattern '${name}', layer ${l}, ${k}`);
    }
    for (const l of Object.keys(t.sums)) if (!m.moeLayers.includes(Number(l))) bad(`pattern '${name}' has scores for layer ${l}, which is not a MoE layer of the model`);
    nums(t.query.sum, dims, `pattern '${name}', retrieval sums`);
  };
  for (const [name, t] of Object.entries(s.tasks)) checkTask(name, t);
  if (s.general) checkTask('general', s.general);
  if (modelDir !== undefined) {
    const { identity } = modelIdentity(modelDir);
    if (identity.id !== m.id) {
      bad(`the store was profiled on another model (${m.arch}, ${m.experts} experts, id ${m.id}); ${modelDir} is ${identity.arch}, ${identity.experts} experts, id ${identity.id}`);
    }
  }
  return s;
}

/** the complete pattern of `task`, or a one-line error listing the store's tasks */
export function patternOf(s: StoreFile, task: string, file?: string): TaskRecord {
  const t = task === 'general' ? s.general : s.tasks[task];
  const names = Object.keys(s.tasks).filter((k) => s.tasks[k].complete);
  if (!t) throw new MoekitError(`the store has no pattern for task '${task}' (complete: ${names.join(', ') || 'none'}${s.general ? ', general' : ''})`, file);
  if (!t.complete) throw new MoekitError(`the pattern of task '${task}' is incomplete (${t.examples} of ${t.target} examples profiled; run experts profile again to resume)`, file);
  return t;
}
