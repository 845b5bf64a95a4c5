/**
 * Profiling: calibration prompts through the full model, one forward per example, the router tracing
 * hook (Tracer.moe with expert outputs) feeding each task's running sums (scores.ts) and the retrieval
 * sums (retrieval.ts). Memory stays flat in the number of examples: only [E] sums per MoE layer and one
 * [R·E] vector per task are kept. The store is written (atomically) every `everyMs` and when a task ends,
 * so an interrupt (the signal) loses at most that much work and leaves the store readable; profiling the
 * same tasks again resumes at the examples already done, drawing the same calibration stream.
 *
 * Calibration examples: a built-in task's stream of non-held-out prompts (its own seeded generator: never
 * the held-out prompts that eval uses), tokenized as the corpus does (<bos> prompt answer); or the lines of
 * a text / JSONL file ({"text"} or {"prompt", "answer"}), tokenized with the model's tokenizer. With
 * answers (the default) the answer tokens count too, as teacher-forced continuation; the retrieval vector
 * always reads the prompt's tokens only (causal attention: the same as a prompt-only forward).
 */
import * as fs from 'node:fs';
import type { TextTokenizer } from '../io/tokenizer.js';
import type { ModelDesc } from '../models/desc.js';
import type { MoeModel } from '../models/model.js';
import { tokenizeExample } from '../tasks/corpus.js';
import { hashString, isHeldOut } from '../tasks/split.js';
import type { Task } from '../tasks/types.js';
import { MoekitError } from '../util/errors.js';
import type { ProgressCallback } from '../util/progress.js';
import { rng } from '../util/rng.js';
import { addQueryBlock } from './retrieval.js';
import { accumulate } from './scores.js';
import { finish, fromJson, newTask, toJson, writeStore, type StoreFile, type TaskRecord } from './store.js';

/** one calibration example: ids [T]; tokens [0, counted) count, tokens [0, prompt) make the retrieval vector */
export interface CalibrationExample { ids: number[]; counted: number; prompt: number }

export interface CalibrationSource {
  name: string;
  /** 'builtin' or the file */
  source: string;
  /** examples from index `start` on (finite for files) */
  examples(start: number): Iterable<CalibrationExample>;
  /** how many there are at most (Infinity for built-in tasks) */
  size: number;
}

/** a built-in task's calibration stream: its non-held-out prompts, drawn by a generator of its own */
export function builtinSource(task: Task, answers = true): CalibrationSource {
  return {
    name: task.name, source: 'builtin', size: Infinity,
    *examples(start: number) {
      const rand = rng(hashString(`calibration:${task.name}`));
      for (let i = 0; ; ) {
        const ex = task.generate(rand);
        if (isHeldOut(ex.prompt)) continue;
        if (i++ < start) continue;
        const c = tokenizeExample(task.name, ex);
        const ids = Array.from(c.ids);
        yield { ids, counted: answers ? ids.length - 1 : c.answerStart, prompt: c.answerStart };
      }
    },
  };
}

/** a text file (one prompt per line) or JSONL ({"text"} or {"prompt", "answer"}) as a calibration task */
export function fileSource(name: string, file: string, tok: TextTokenizer, answers = true): CalibrationSource {
  if (!fs.existsSync(file)) throw new MoekitError('no such calibration file', file);
  const lines = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const items = lines.map((line, i) => {
    if (!line.startsWith('{')) return { prompt: line, answer: '' };
    let o: { text?: unknown; prompt?: unknown; answer?: unknown };
    try { o = JSON.parse(line); } catch { throw new MoekitError(`line ${i + 1}: malformed JSON`, file); }
    if (typeof o.text === 'string') return { prompt: o.text, answer: '' };
    if (typeof o.prompt === 'string') return { prompt: o.prompt, answer: typeof o.answer === 'string' ? o.answer : '' };
    throw new MoekitError(`line ${i + 1}: a JSONL line needs "text" or "prompt" (and optionally "answer")`, file);
  });
  if (items.length === 0) throw new MoekitError('the calibration file has no lines', file);
  return {
    name, source: file, size: items.length,
    *examples(start: number) {
      for (const it of items.slice(start)) {
        const p = tok.encode(it.prompt, true), a = it.answer ? tok.encode(it.answer, false) : [];
        if (p.length === 0) continue;
        yield { ids: [...p, ...a], counted: answers ? p.length + a.length : p.length, prompt: p.length };
      }
    },
  };
}

/** run one example through the model, adding to the task record's sums (in `sums`, the live Float64 copies) */
function profileExample(model: MoeModel, s: StoreFile, live: Live, ex: CalibrationExample): void {
  const d = model.desc, H = d.hidden, E = d.moe.experts;
  const T = ex.counted, P = Math.min(ex.prompt, T);
  const ids = Int32Array.from(ex.ids.slice(0, T));
  const bad = ex.ids.find((id) => !(id >= 0 && id < d.vocab));
  if (bad !== undefined) throw new MoekitError(`a calibration token id ${bad} is outside the model's vocabulary [0, ${d.vocab})`);
  const q = new Float64Array(s.settings.retrievalLayers.length * E);
  model.forward(ids, 1, T, {
    lastOnly: true,
    trace: {
      expertOutputs: true,
      moe: (ev) => {
        accumulate(live.sums.get(ev.layer)!, ev, H, s.settings.r);
        const slot = s.settings.retrievalLayers.indexOf(ev.layer);
        if (slot >= 0) addQueryBlock(q, slot, ev, P);
      },
    },
  });
  live.t.tokens += T;
  live.t.examples++;
  live.t.query.n++;
  let sq = 0;
  q.forEach((v, i) => { live.t.query.sum[i] += v; sq += v * v; });
  live.t.query.sumSq += sq;
}

interface Live { t: TaskRecord; sums: Map<number, ReturnType<typeof fromJson>> }

export interface ProfileOptions {
  /** calibration examples per task */
  n: number;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** write the store at least this often (ms; default 2000) */
  everyMs?: number;
}

export interface ProfileResult { interrupted: boolean; examples: number; tokens: number }

/**
 * Profile `sources` into the store s (written to `file`): each task resumes at the examples its record
 * has done (a record made with a different source or n is an error, to say so rather than mix them).
 */
export async function profileTasks(model: MoeModel, desc: ModelDesc, file: string, s: StoreFile, sources: CalibrationSource[],
                                   o: ProfileOptions): Promise<ProfileResult> {
  if (!Number.isInteger(o.n) || o.n < 1) throw new MoekitError(`--n must be an integer ≥ 1, got ${o.n}`);
  const plan = sources.map((src) => {
    if (src.name === 'general') throw new MoekitError("'general' is the store's pooled pattern, not a task name");
    const target = Math.min(o.n, src.size);
    let t = s.tasks[src.name];
    if (t && t.source !== src.source) throw new MoekitError(`the store's pattern '${src.name}' was profiled from ${t.source}, not ${src.source} (use another name or store)`, file);
    if (t && t.complete && t.target !== target) throw new MoekitError(`the store's pattern '${src.name}' is complete with ${t.target} examples; --n ${o.n} asks for ${target} (use another store to re-profile)`, file);
    if (!t) { t = newTask(s, src.source, target); s.tasks[src.name] = t; }
    t.target = target;
    return { src, t };
  });
  const total = plan.reduce((a, p) => a + p.t.target, 0);
  let loaded = plan.reduce((a, p) => a + Math.min(p.t.examples, p.t.target), 0);
  const task = 'profile';
  o.onProgress?.({ status: 'initiate', task, total });
  let last = Date.now(), examples = 0, tokens = 0;
  const save = () => { finish(s, desc); writeStore(file, s); last = Date.now(); };
  for (const { src, t } of plan) {
    if (t.complete) continue;
    const live: Live = { t, sums: new Map(s.model.moeLayers.map((l) => [l, fromJson(t.sums[l])])) };
    const sync = () => { for (const [l, v] of live.sums) t.sums[l] = toJson(v); };
    for (const ex of src.examples(t.examples)) {
      if (t.examples >= t.target) break;
      if (o.signal?.aborted) { sync(); save(); return { interrupted: true, examples, tokens }; }
      const before = t.tokens;
      profileExample(model, s, live, ex);
      examples++; tokens += t.tokens - before;
      o.onProgress?.({ status: 'progress', task, loaded: ++loaded, total, item: src.name });
      if (Date.now() - last >= (o.everyMs ?? 2000)) { sync(); save(); }
      await new Promise((r) => setImmediate(r)); // let a signal land between examples
    }
    if (o.signal?.aborted && t.examples < t.target) { sync(); save(); return { interrupted: true, examples, tokens }; }
    t.target = t.examples; // a file may have had fewer usable lines
    t.complete = true;
    sync();
    save();
  }
  o.onProgress?.({ status: 'done', task, total });
  save();
  return { interrupted: false, examples, tokens };
}
