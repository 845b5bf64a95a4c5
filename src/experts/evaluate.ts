/**
 * `moekit experts eval`: what the patterns of a store keep of the model. For each score and keep ratio
 * (100, 75, 50, 25% of the experts per MoE layer), for each profiled built-in task, exact match on that
 * task's held-out prompts answered by the task's own pattern, the weight bytes it loaded (a lazy model:
 * non-expert weights + the experts read, measured) and the decode speed; peak RSS of a pattern in a fresh
 * process against what it should hold; retrieval accuracy (a held-out prompt's nearest stored task is its
 * own) and end-to-end accuracy (each held-out prompt answered with the pattern retrieval picks for it).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TextTokenizer } from '../io/tokenizer.js';
import type { ModelDesc } from '../models/desc.js';
import type { MoeModel, SubModel } from '../models/model.js';
import { evaluateWith } from '../runtime/eval.js';
import { generate } from '../runtime/generate.js';
import { heldOut } from '../tasks/split.js';
import { TASKS } from '../tasks/registry.js';
import type { Task } from '../tasks/types.js';
import { MoekitError } from '../util/errors.js';
import type { ProgressCallback } from '../util/progress.js';
import { loadLazy, retrievePattern, taskPattern } from './pattern.js';
import type { RssResult, RssSpec } from './rss-child.js';
import { SCORES, type ScoreName } from './scores.js';
import { checkBudget, ratioBudget } from './select.js';
import { RATIOS, type StoreFile } from './store.js';

export interface GridRow {
  score: ScoreName | 'full';
  ratio: number;
  keep: number;
  topK: number;
  /** task → exact match with its own pattern */
  tasks: Record<string, number>;
  mean: number;
  /** Σ exact match / Σ the full model's (over the tasks) */
  relative: number;
  /** mean over tasks of the weight bytes the lazy model read (non-expert + experts) */
  bytesLoaded: number;
  /** decode tokens / s over all answers */
  decodeTokS: number;
}

export interface PatternEvalReport {
  model: string;
  n: number;
  tasks: string[];
  grid: GridRow[];
  retrieval: { layers: number[]; threshold: number; accuracy: number; tasks: Record<string, number>; fallbacks: number };
  endToEnd: { score: ScoreName; ratio: number; keep: number; tasks: Record<string, number>; mean: number; relative: number }[];
  /** peak RSS against runtimeRss (the same workload holding no experts: process, non-expert weights, KV cache) + experts held */
  rss: (RssResult & { label: string; ratio: number; keep: number; runtimeRss: number; predicted: number; withinPct: number })[];
}

export interface PatternEvalOptions {
  n: number;
  scores?: ScoreName[];
  ratios?: number[];
  /** measure peak RSS in child processes (needs the built dist/) */
  rss?: boolean;
  onProgress?: ProgressCallback;
}

interface Answered { right: number; n: number; newTokens: number; decodeMs: number }

/** answer task's held-out prompts with the model (and mask), greedily, as runtime/eval does */
function runTask(model: MoeModel, tok: TextTokenizer, task: Task, n: number, sub: SubModel | undefined): Answered {
  const a: Answered = { right: 0, n: 0, newTokens: 0, decodeMs: 0 };
  const r = evaluateWith((t, prompt) => {
    const res = generate(model, tok.encode(prompt, true), { maxNewTokens: t.maxAnswerTokens + 1, greedy: true, eosTokenIds: model.desc.eosTokenIds, sub });
    a.newTokens += Math.max(0, res.newTokens - 1);
    a.decodeMs += res.timings.decodeMs;
    const out = res.ids.slice(res.promptTokens);
    if (res.finishReason === 'eos') out.pop();
    return out.length ? tok.decode(out, false) : '';
  }, { tasks: [task], n });
  a.n = r.tasks[task.name].n;
  a.right = r.tasks[task.name].exact_match * a.n;
  return a;
}

const meanOf = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

export function evaluatePatterns(dir: string, s: StoreFile, d: ModelDesc, tok: TextTokenizer, full: MoeModel, o: PatternEvalOptions): PatternEvalReport {
  const tasks = TASKS.filter((t) => s.tasks[t.name]?.complete && s.tasks[t.name].source === 'builtin');
  if (tasks.length === 0) throw new MoekitError('the store has no complete pattern of a built-in task to evaluate (moekit experts profile --tasks ...)');
  const scores = o.scores ?? [...SCORES];
  const ratios = o.ratios ?? [...RATIOS];
  const budgets = ratios.map((q) => ({ ratio: q, ...ratioBudget(d, q) }));
  const fullTasks: Record<string, number> = {};
  const cells = (1 + scores.length * budgets.filter((b) => b.keep < d.moe.experts).length + 2) * tasks.length;
  let done = 0;
  o.onProgress?.({ status: 'initiate', task: 'experts eval', total: cells });
  const tick = (item: string) => o.onProgress?.({ status: 'progress', task: 'experts eval', loaded: ++done, total: cells, item });
  const memo = new Map<string, { a: Answered; bytes: number }>();
  const cell = (task: Task, score: ScoreName | 'full', b: { keep: number; topK: number }) => {
    const p = taskPattern(s, d, score === 'full' ? null : task.name, score === 'full' ? 'tcess' : score, b);
    const key = `${task.name}|${b.topK}|${JSON.stringify(p.keep)}`;
    let m = memo.get(key);
    if (!m) {
      const model = loadLazy(dir, s.bytes.nonExpert, undefined);
      try {
        const a = runTask(model, tok, task, o.n, p.sub);
        m = { a, bytes: s.bytes.nonExpert + model.expertStore!.residentBytes() };
      } finally { model.close(); }
      memo.set(key, m);
    }
    tick(`${score} ${b.keep}/${d.moe.experts} ${task.name}`);
    return m;
  };
  const grid: GridRow[] = [];
  const row = (score: ScoreName | 'full', b: (typeof budgets)[number]): GridRow => {
    const res = tasks.map((t) => cell(t, score, b));
    const em = Object.fromEntries(tasks.map((t, i) => [t.name, res[i].a.n ? res[i].a.right / res[i].a.n : 0]));
    const sumFull = tasks.reduce((a, t) => a + (fullTasks[t.name] ?? em[t.name]), 0);
    const sum = tasks.reduce((a, t) => a + em[t.name], 0);
    const tokens = res.reduce((a, r) => a + r.a.newTokens, 0), ms = res.reduce((a, r) => a + r.a.decodeMs, 0);
    return {
      score, ratio: b.ratio, keep: b.keep, topK: b.topK, tasks: em, mean: meanOf(Object.values(em)),
      relative: sumFull ? sum / sumFull : 1, bytesLoaded: meanOf(res.map((r) => r.bytes)), decodeTokS: ms ? tokens / (ms / 1000) : 0,
    };
  };
  const fullB = { ratio: 1, keep: d.moe.experts, topK: d.moe.topK };
  const f = row('full', fullB);
  Object.assign(fullTasks, f.tasks);
  grid.push(f);
  for (const score of scores) for (const b of budgets) if (b.keep < d.moe.experts) grid.push(row(score, b));
  // retrieval: each held-out prompt's nearest task
  const rTasks: Record<string, number> = {};
  let right = 0, total = 0, fallbacks = 0;
  const e2eBudgets = budgets.filter((b) => b.keep < d.moe.experts && (b.ratio === 0.5 || b.ratio === 0.25));
  const e2e = e2eBudgets.map((b) => ({ score: 'tcess' as ScoreName, ratio: b.ratio, keep: b.keep, tasks: {} as Record<string, number>, mean: 0, relative: 0 }));
  for (const task of tasks) {
    const exs = heldOut(task, o.n);
    let ok = 0;
    const e2eRight = e2eBudgets.map(() => 0);
    for (const ex of exs) {
      const ids = tok.encode(ex.prompt, true);
      e2eBudgets.forEach((b, k) => {
        const p = retrievePattern(full, s, ids, 'tcess', b);
        if (k === 0) {
          if (p.match!.nearest === task.name) ok++;
          if (p.match!.pattern !== p.match!.nearest) fallbacks++;
        }
        const res = generate(full, ids, { maxNewTokens: task.maxAnswerTokens + 1, greedy: true, eosTokenIds: d.eosTokenIds, sub: p.sub });
        const out = res.ids.slice(res.promptTokens);
        if (res.finishReason === 'eos') out.pop();
        if (task.check(ex.answer, out.length ? tok.decode(out, false) : '')) e2eRight[k]++;
      });
      if (e2eBudgets.length === 0) {
        const p = retrievePattern(full, s, ids, 'tcess', fullB);
        if (p.match!.nearest === task.name) ok++;
      }
    }
    rTasks[task.name] = exs.length ? ok / exs.length : 0;
    right += ok; total += exs.length;
    e2e.forEach((r, k) => { r.tasks[task.name] = exs.length ? e2eRight[k] / exs.length : 0; });
    tick(`retrieval ${task.name}`); tick(`end-to-end ${task.name}`);
  }
  for (const r of e2e) {
    r.mean = meanOf(Object.values(r.tasks));
    const sf = tasks.reduce((a, t) => a + fullTasks[t.name], 0);
    r.relative = sf ? tasks.reduce((a, t) => a + r.tasks[t.name], 0) / sf : 1;
  }
  const rss = o.rss ? measureRss(dir, s, d, tasks, Math.min(o.n, 20)) : [];
  o.onProgress?.({ status: 'done', task: 'experts eval', total: cells });
  return {
    model: dir, n: o.n, tasks: tasks.map((t) => t.name), grid,
    retrieval: { layers: s.settings.retrievalLayers, threshold: s.retrieval.threshold, accuracy: total ? right / total : 0, tasks: rTasks, fallbacks },
    endToEnd: e2e, rss,
  };
}

/**
 * Peak RSS of the full model (eager) and of the 50% and 25% TCESS patterns (lazy) of the first task, each in a
 * fresh process, against runtime + the experts they hold. The runtime (the process, the non-expert weights, the KV
 * cache, the forward's working memory) is measured on the same workload run by the smallest pattern (k experts
 * per layer, lazy): its peak minus the experts it held. (A run holding no expert at all, budget 0, re-reads
 * experts all the time and its peak counts their garbage, not the runtime.)
 */
function measureRss(dir: string, s: StoreFile, d: ModelDesc, tasks: Task[], n: number): PatternEvalReport['rss'] {
  const child = fileURLToPath(new URL('./rss-child.js', import.meta.url));
  if (!fs.existsSync(child)) throw new MoekitError(`peak RSS needs the built ${child} (npm run build)`);
  return rssRuns(child, dir, s, d, tasks[0].name, n);
}

export function rssRuns(child: string, dir: string, s: StoreFile, d: ModelDesc, task: string, n: number): PatternEvalReport['rss'] {
  const run = (spec: RssSpec): RssResult => {
    const out = execFileSync(process.execPath, ['--expose-gc', child, JSON.stringify(spec)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    return JSON.parse(out.trim().split('\n').pop()!) as RssResult;
  };
  let M0 = d.moe.topK;
  for (; M0 < d.moe.experts; M0++) { try { checkBudget(d, M0); break; } catch { /* not expressible: try the next */ } }
  const b0 = checkBudget(d, M0);
  const small = run({ dir, mode: 'lazy', keep: taskPattern(s, d, task, 'tcess', b0).keep, topK: b0.topK, task, n });
  const runtime = { peakRss: small.peakRss - small.expertBytes };
  const runs: { label: string; ratio: number; keep: number; spec: RssSpec }[] = [
    { label: 'full model, eager', ratio: 1, keep: d.moe.experts, spec: { dir, mode: 'eager', keep: null, topK: d.moe.topK, task, n } },
  ];
  for (const q of [0.5, 0.25]) {
    const b = ratioBudget(d, q);
    const p = taskPattern(s, d, task, 'tcess', b);
    runs.push({ label: `${task} tcess ${b.keep}/${d.moe.experts}, lazy`, ratio: q, keep: b.keep, spec: { dir, mode: 'lazy', keep: p.keep, topK: b.topK, task, n } });
  }
  return runs.map((r) => {
    const m = run(r.spec);
    const predicted = runtime.peakRss + m.expertBytes;
    return { ...m, label: r.label, ratio: r.ratio, keep: r.keep, runtimeRss: runtime.peakRss, predicted, withinPct: (100 * (m.peakRss - predicted)) / predicted };
  });
}
