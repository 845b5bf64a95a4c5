/**
 * The built-in corpus as a training data source (src/tasks: text and image tasks in one token stream, already
 * tokenized with the built-in tokenizer, loss on the answer only).
 */
import { exampleAt } from '../tasks/corpus.js';
import type { ExampleSource } from './data.js';

export function builtinSource(seed: number, tasks: string[], mix: Readonly<Record<string, number>> = {}): ExampleSource {
  const o = { ...(tasks.length ? { tasks } : {}), ...(Object.keys(mix).length ? { mix } : {}) };
  try { exampleAt(seed, 0, o); } catch (e) { throw Object.assign(e as Error, { message: `data: ${(e as Error).message}` }); } // checks the task names and the mix now
  return {
    at(i) {
      const ex = exampleAt(seed, i, o);
      const ids = Array.from(ex.ids);
      return { tokens: { ids, mask: ids.map((_, t) => (t >= ex.answerStart ? 1 : 0)) } };
    },
  };
}
