/**
 * One peak-RSS measurement in a fresh process (peak RSS cannot be reset inside one): `node rss-child.js SPEC_JSON`
 * loads the model (eager, or lazy with a pattern's mask), answers a task's held-out prompts, and prints one JSON line: the peak RSS
 * sampled at every decoder layer of every forward, the weight bytes held at the end and the KV cache's largest size.
 */
import { loadTokenizer } from '../io/tokenizer.js';
import { inspectModel } from '../models/inspect.js';
import { MoeModel } from '../models/model.js';
import { answer } from '../runtime/eval.js';
import { heldOut } from '../tasks/split.js';
import { taskByName } from '../tasks/registry.js';
import { keepSub } from './select.js';
import { modelIdentity } from './store.js';

export interface RssSpec {
  dir: string;
  mode: 'eager' | 'lazy';
  keep: Record<number, number[]> | null;
  topK: number;
  task: string;
  n: number;
}

export interface RssResult {
  /** the largest RSS sampled from loading on (at every decoder layer of every forward) */
  peakRss: number;
  /** the process's own peak (getrusage), start-up included */
  processMaxRss: number;
  /** RSS after start-up, before loading */
  startRss: number;
  nonExpertBytes: number;
  /** routed expert bytes held at the end */
  expertBytes: number;
  kvBytes: number;
}

function main(): void {
  const spec = JSON.parse(process.argv[2]) as RssSpec;
  const task = taskByName(spec.task);
  const examples = heldOut(task, spec.n);
  const info = inspectModel(spec.dir);
  const { bytes } = modelIdentity(spec.dir);
  const tok = loadTokenizer(spec.dir)!;
  global.gc?.();
  const startRss = process.memoryUsage().rss;
  let peakRss = startRss;
  const sample = () => { peakRss = Math.max(peakRss, process.memoryUsage().rss); };
  const model = MoeModel.load(spec.dir, { experts: spec.mode });
  sample();
  const sub = spec.keep ? keepSub(model.desc, spec.keep, spec.topK) : undefined;
  let maxTokens = 0;
  for (const ex of examples) {
    const out = answer(model, tok, task, ex.prompt, sub, { hidden: sample });
    maxTokens = Math.max(maxTokens, tok.encode(ex.prompt, true).length + tok.encode(out, false).length + 1);
    sample();
  }
  const expertBytes = model.expertStore ? model.expertStore.residentBytes()
    : model.weights.layers.reduce((a, l) => a + (l.moe ? l.moe.experts.residentBytes() : 0), 0);
  const r: RssResult = { peakRss, processMaxRss: process.resourceUsage().maxRSS * 1024, startRss, nonExpertBytes: bytes.nonExpert, expertBytes, kvBytes: info.memory.kvCacheBytesPerToken * maxTokens };
  model.close();
  process.stdout.write(JSON.stringify(r) + '\n');
}

main();
