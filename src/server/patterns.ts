/**
 * The PreMoe pattern store behind a server's `moekit.experts`: a stored task's name runs that task's kept set at the
 * server's budget, "auto" retrieves the task from the prompt (a partial forward through the store's retrieval
 * layers, src/experts/retrieval.ts) and falls back to the pooled "general" pattern beyond the store's distance
 * threshold. Retrieval runs on the request thread with its own lazily loaded copy of the model, which reads only
 * the experts of the retrieval layers that the prompt routes to.
 */
import type { MoeModel } from '../models/model.js';
import { patternBudget, retrievePattern, taskPattern, loadLazy, type Pattern } from '../experts/pattern.js';
import { SCORES, type ScoreName } from '../experts/scores.js';
import { readStore } from '../experts/store.js';
import { MoekitError } from '../util/errors.js';
import { ApiError } from './errors.js';
import type { KeepSet, PatternResolver, ResolvedPattern } from './moe.js';

export interface StoreResolverOptions {
  /** which score picks the kept experts (default tcess) */
  score?: string;
  /** experts kept per MoE layer (default: half, as `moekit generate --experts` keeps) */
  keepExperts?: number;
}

export interface StoreResolver {
  resolve: PatternResolver;
  /** what the dashboard lists: the stored tasks, the budget, the bytes a pattern needs */
  info: { store: string; tasks: string[]; score: ScoreName; keepExperts: number; topK: number; patternBytes: number; fullBytes: number };
}

function keepOfPattern(p: Pattern, m: MoeModel): KeepSet {
  if (p.keep) return p.keep;
  const all: KeepSet = {};
  m.desc.layers.forEach((l, i) => { if (l.mlp === 'moe') all[i] = Array.from({ length: m.desc.moe.experts }, (_, e) => e); });
  return all;
}

/** a resolver over the store at `file` for the model in `dir` (refuses a store of another model) */
export function storeResolver(dir: string, file: string, o: StoreResolverOptions = {}): StoreResolver {
  const score = (o.score ?? 'tcess') as ScoreName;
  if (!SCORES.includes(score)) throw new MoekitError(`--score must be one of ${SCORES.join(', ')}, got '${o.score}'`);
  const s = readStore(file, dir);
  const model = loadLazy(dir, s.bytes.nonExpert, undefined);
  const budget = patternBudget(model.desc, o.keepExperts);
  const tasks = Object.keys(s.tasks);
  const resolve = (name: string, prompt: number[]): ResolvedPattern => {
    if (name !== 'auto' && name !== 'general' && !tasks.includes(name)) {
      throw new ApiError(400, `moekit.experts: no stored pattern '${name}' (the store has: auto, general, ${tasks.join(', ')})`, 'invalid_request_error', 'moekit.experts', 'unknown_pattern');
    }
    let p: Pattern;
    try {
      p = name === 'auto' ? retrievePattern(model, s, prompt, score, budget) : taskPattern(s, model.desc, name, score, budget, file);
    } catch (e) {
      if (e instanceof MoekitError) throw new ApiError(400, `moekit.experts "${name}": ${e.message}`, 'invalid_request_error', 'moekit.experts', 'pattern_unavailable');
      throw e;
    }
    return { name: p.task ?? 'full', keep: keepOfPattern(p, model) };
  };
  const fullBytes = s.bytes.nonExpert + model.desc.moe.experts * s.bytes.perExpertAllLayers;
  return { resolve, info: { store: file, tasks, score, keepExperts: budget.keep, topK: budget.topK, patternBytes: s.bytes.nonExpert + budget.keep * s.bytes.perExpertAllLayers, fullBytes } };
}
