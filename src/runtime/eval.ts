/**
 * Exact match on the built-in tasks' held-out prompts: each prompt is tokenized as the corpus does
 * (<bos> prompt), answered greedily until <eos> or the task's longest answer, and the decoded answer is
 * checked by the task. Means are over tasks (each task counts once, whatever its n).
 */
import type { TextTokenizer } from '../io/tokenizer.js';
import type { MoeModel, SubModel, Tracer } from '../models/model.js';
import { heldOut } from '../tasks/split.js';
import type { Pair, Task } from '../tasks/types.js';
import { MoekitError } from '../util/errors.js';
import type { ProgressCallback } from '../util/progress.js';
import { generate } from './generate.js';

export interface TaskScore { n: number; exact_match: number }

export interface EvalReport {
  tasks: Record<string, TaskScore>;
  /** mean exact match over the text tasks (null when none was evaluated) */
  text: number | null;
  image: number | null;
  /** mean over all evaluated tasks */
  mean: number;
}

/** one task's exact match: outputs[i] answers examples[i] */
export function scoreTask(task: Task, examples: readonly Pair[], outputs: readonly string[]): TaskScore {
  if (examples.length !== outputs.length) throw new Error(`scoreTask: ${examples.length} examples, ${outputs.length} outputs`);
  const right = examples.filter((ex, i) => task.check(ex.answer, outputs[i])).length;
  return { n: examples.length, exact_match: examples.length ? right / examples.length : 0 };
}

/** the report of per-task scores: the means over text tasks, image tasks and all */
export function summarize(tasks: readonly Task[], scores: readonly TaskScore[]): EvalReport {
  const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const of = (m?: string) => tasks.flatMap((t, i) => (m === undefined || t.modality === m ? [scores[i].exact_match] : []));
  return {
    tasks: Object.fromEntries(tasks.map((t, i) => [t.name, scores[i]])),
    text: mean(of('text')), image: mean(of('image')), mean: mean(of()) ?? 0,
  };
}

export interface EvalOptions {
  tasks: readonly Task[];
  /** held-out prompts per task (fewer where a task has fewer) */
  n: number;
  /** evaluate a sub-model (layers, experts, top-k) */
  sub?: SubModel;
  onProgress?: ProgressCallback;
  /** called with every answered example */
  onExample?: (task: Task, example: Pair, output: string, right: boolean) => void;
}

/** the model's greedy answer to prompt: the decoded new tokens, <eos> removed */
export function answer(model: MoeModel, tok: TextTokenizer, task: Task, prompt: string, sub?: SubModel, trace?: Tracer): string {
  const eos = model.desc.eosTokenIds;
  const res = generate(model, tok.encode(prompt, true), { maxNewTokens: task.maxAnswerTokens + 1, greedy: true, eosTokenIds: eos, sub, trace });
  const out = res.ids.slice(res.promptTokens);
  if (res.finishReason === 'eos') out.pop();
  return out.length ? tok.decode(out, false) : '';
}

/** a way to answer a task's prompt: the model's greedy answer, or a stand-in in tests */
export type Answerer = (task: Task, prompt: string) => string;

/** score answerer on every task's held-out prompts */
export function evaluateWith(answerer: Answerer, o: EvalOptions): EvalReport {
  const sets = o.tasks.map((t) => heldOut(t, o.n));
  const total = sets.reduce((a, s) => a + s.length, 0);
  o.onProgress?.({ status: 'initiate', task: 'eval', total });
  let done = 0;
  const scores = o.tasks.map((task, k) => {
    const outputs = sets[k].map((ex) => {
      const out = answerer(task, ex.prompt);
      o.onExample?.(task, ex, out, task.check(ex.answer, out));
      o.onProgress?.({ status: 'progress', task: 'eval', loaded: ++done, total, item: task.name });
      return out;
    });
    return scoreTask(task, sets[k], outputs);
  });
  o.onProgress?.({ status: 'done', task: 'eval', total });
  return summarize(o.tasks, scores);
}

/** the model's exact match on every task's held-out prompts */
export function evaluate(model: MoeModel, tok: TextTokenizer, o: EvalOptions): EvalReport {
  if (model.desc.eosTokenIds.length === 0) throw new MoekitError('the model has no eos_token_id in its config.json: eval needs it to know where an answer ends');
  return evaluateWith((task, prompt) => answer(model, tok, task, prompt, o.sub), o);
}
