/**
 * A pattern put to use: a stored task's kept set at a budget as the engine's sub-model mask (the masked
 * pass over the full model computes what the pruned checkpoint computes), chosen by name or retrieved
 * from the prompt, and a lazy model whose expert cache fits a memory budget.
 */
import type { ModelDesc } from '../models/desc.js';
import { MoeModel, type LoadOptions } from '../models/model.js';
import type { SubModel } from '../models/pass.js';
import { MoekitError } from '../util/errors.js';
import { nearestTask, queryVector, type Match } from './retrieval.js';
import type { ScoreName } from './scores.js';
import { checkBudget, keepSub, type Budget } from './select.js';
import { keepOf, patternOf, type StoreFile } from './store.js';

export interface Pattern {
  /** the stored task used ('general' for the pooled one), or null: the full model */
  task: string | null;
  budget: Budget;
  keep: Record<number, number[]> | null;
  /** the mask over the full model (undefined: all experts) */
  sub: SubModel | undefined;
  /** checkpoint bytes the pattern needs: non-expert weights + its experts */
  bytes: number;
  match?: Match;
}

/** M per MoE layer: --keep-experts, or half the experts (rounded to what the architecture expresses) */
export function patternBudget(d: ModelDesc, keepExperts?: number): Budget {
  if (keepExperts !== undefined) return checkBudget(d, keepExperts);
  const half = Math.floor(d.moe.experts / 2), G = d.moe.nGroup > 1 ? d.moe.nGroup : 1;
  return checkBudget(d, Math.max(G, Math.floor(half / G) * G, d.moe.router === 'sigmoid_group' && G > 1 ? 2 * G : 1));
}

/** the pattern of a stored task (or 'general'; null: the full model) at budget b by score */
export function taskPattern(s: StoreFile, d: ModelDesc, task: string | null, score: ScoreName, b: Budget, file?: string): Pattern {
  if (task === null) {
    return { task: null, budget: { keep: d.moe.experts, topK: d.moe.topK }, keep: null, sub: undefined, bytes: s.bytes.nonExpert + d.moe.experts * s.bytes.perExpertAllLayers };
  }
  const keep = keepOf(s, d, patternOf(s, task, file), score, b.keep);
  return { task, budget: b, keep, sub: keepSub(d, keep, b.topK), bytes: s.bytes.nonExpert + b.keep * s.bytes.perExpertAllLayers };
}

/** the pattern of a prompt by retrieval (a partial forward of `model`) */
export function retrievePattern(model: MoeModel, s: StoreFile, prompt: readonly number[], score: ScoreName, b: Budget,
                                o: { threshold?: number; fallback?: 'general' | 'full' } = {}): Pattern {
  const match = nearestTask(s, queryVector(model, prompt, s.settings.retrievalLayers), o);
  return { ...taskPattern(s, model.desc, match.pattern, score, b), match };
}

/**
 * Load dir lazily for a memory budget: the expert cache gets what the non-expert weights leave of
 * `memoryBudget` (bytes; undefined: no limit). An error when the non-expert weights alone do not fit.
 */
export function loadLazy(dir: string, nonExpertBytes: number, memoryBudget: number | undefined, o: LoadOptions = {}): MoeModel {
  let expertBudgetBytes: number | undefined;
  if (memoryBudget !== undefined) {
    expertBudgetBytes = memoryBudget - nonExpertBytes;
    if (expertBudgetBytes < 0) throw new MoekitError(`--memory-budget ${memoryBudget} is below the ${nonExpertBytes} bytes of the model's non-expert weights`);
  }
  return MoeModel.load(dir, { ...o, experts: 'lazy', expertBudgetBytes });
}
