/**
 * The training stream of the built-in corpus: examples of the chosen tasks in one token stream, text and
 * images alike, each as <bos> prompt answer <eos> with the answer span marked (loss on the answer only)
 * and every token's modality (for the per-expert modality report). Example i of a seed is drawn from its
 * own generator, so a stream can start at any index (resume) and repeats exactly.
 */
import { MoekitError } from '../util/errors.js';
import { rng } from '../util/rng.js';
import { selectTasks, taskByName } from './registry.js';
import { fmix32, isHeldOut } from './split.js';
import { BOS_ID, EOS_ID, IMG_END_ID, IMG_START_ID, encode } from './tokenizer.js';
import type { Modality, Pair, Task } from './types.js';

/** modality codes of CorpusExample.modality */
export const MODALITIES: readonly Modality[] = ['text', 'image'];
export const TEXT = 0, IMAGE = 1;

export interface CorpusExample extends Pair {
  task: string;
  /** [T]: <bos> prompt answer <eos> */
  ids: Int32Array;
  /** index in ids of the first answer token: the loss goes on ids[answerStart..T), the answer and <eos> */
  answerStart: number;
  /** [T]: TEXT or IMAGE per token; an image is its tokens from <img> to </img>, both included */
  modality: Uint8Array;
}

export interface CorpusOptions {
  /** a --tasks list ('add,sort', 'text', 'image', 'all') or task names; default all */
  tasks?: string | readonly string[];
  /** relative weights by task name (default 1 each; tasks not named keep 1) */
  mix?: Readonly<Record<string, number>>;
  /** index of the first example (to resume a stream) */
  start?: number;
}

/** tokenize an example as the corpus does */
export function tokenizeExample(task: string, ex: Pair): CorpusExample {
  const p = encode(ex.prompt), a = encode(ex.answer);
  const ids = Int32Array.from([BOS_ID, ...p, ...a, EOS_ID]);
  const modality = new Uint8Array(ids.length);
  let inImage = false;
  for (let t = 0; t < ids.length; t++) {
    if (ids[t] === IMG_START_ID) inImage = true;
    modality[t] = inImage ? IMAGE : TEXT;
    if (ids[t] === IMG_END_ID) inImage = false;
  }
  return { task, prompt: ex.prompt, answer: ex.answer, ids, answerStart: 1 + p.length, modality };
}

interface Mixture { tasks: Task[]; cumulative: number[] }

function mixture(o: CorpusOptions): Mixture {
  const tasks = selectTasks(o.tasks ?? 'all');
  for (const [name, w] of Object.entries(o.mix ?? {})) {
    taskByName(name);
    if (!(Number.isFinite(w) && w >= 0)) throw new MoekitError(`mix weight of '${name}' must be a number ≥ 0, got ${w}`);
    if (!tasks.some((t) => t.name === name)) throw new MoekitError(`mix names '${name}', which is not among the corpus's tasks`);
  }
  let sum = 0;
  const cumulative = tasks.map((t) => (sum += o.mix?.[t.name] ?? 1));
  if (!(sum > 0)) throw new MoekitError('the mix weights are all 0');
  return { tasks, cumulative };
}

/** the seed of example index's own generator */
function exampleSeed(seed: number, index: number): number {
  return fmix32(fmix32(seed >>> 0) ^ Math.imul(fmix32(index >>> 0) ^ Math.floor(index / 2 ** 32), 0x9e3779b9));
}

function drawExample(m: Mixture, seed: number, index: number): CorpusExample {
  const rand = rng(exampleSeed(seed, index));
  const u = rand() * m.cumulative[m.cumulative.length - 1];
  const k = m.cumulative.findIndex((c) => u < c);
  const task = m.tasks[k < 0 ? m.tasks.length - 1 : k];
  for (let tries = 0; tries < 10_000; tries++) {
    const ex = task.generate(rand);
    if (!isHeldOut(ex.prompt)) return tokenizeExample(task.name, ex);
  }
  throw new Error(`task ${task.name}: 10000 prompts in a row were held out`);
}

/** example `index` of the stream of `seed` */
export function exampleAt(seed: number, index: number, o: CorpusOptions = {}): CorpusExample {
  return drawExample(mixture(o), seed, index);
}

/** the endless training stream of seed: held-out prompts never occur */
export function* corpus(seed: number, o: CorpusOptions = {}): Generator<CorpusExample, never> {
  const m = mixture(o);
  const start = o.start ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) throw new MoekitError(`the corpus start must be an integer ≥ 0, got ${start}`);
  for (let i = start; ; i++) yield drawExample(m, seed, i);
}
