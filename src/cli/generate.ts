/**
 * `moekit generate MODEL_DIR (--ids 1,2,3 | --prompt TEXT) --max-new-tokens N
 *   [--greedy | --temperature T --top-k K --top-p P --seed S] [--no-stop] [--json]`
 * With `--experts auto|TASK --store STORE` it runs one pattern of a PreMoe store (retrieved from the prompt,
 * or named): only that pattern's experts are routed to, read from the checkpoint on first use; with
 * `--memory-budget SIZE` the expert cache gets what the non-expert weights leave of SIZE (evicting the least
 * recently used), with or without a pattern.
 */
import * as path from 'node:path';
import { loadTokenizer } from '../io/tokenizer.js';
import { MoeModel } from '../models/model.js';
import type { DoneMsg } from '../runtime/events.js';
import { legacyTimings } from '../runtime/generate.js';
import { Scheduler } from '../runtime/scheduler.js';
import { MoekitError } from '../util/errors.js';
import { terminalProgress } from './bar.js';
import { dtypeFlag, numFlag, onePositional, parse, sizeFlag, EXPERT_OPTIONS, EXPERT_USAGE, expertFlags } from './args.js';
import { loadLazy, patternBudget, retrievePattern, taskPattern, type Pattern } from '../experts/pattern.js';
import type { ScoreName } from '../experts/scores.js';
import { modelIdentity, readStore } from '../experts/store.js';
import { scoreFlag } from './experts.js';

interface PatternFlags {
  /** 'auto' (retrieval), a task name, or undefined: no pattern (a memory budget only) */
  task?: string;
  store?: string;
  keepExperts?: number;
  score: ScoreName;
  threshold?: number;
  fallback: 'general' | 'full';
  memoryBudget?: number;
}

/** --experts auto|TASK (with --store) and --memory-budget; null when neither is given (plain eager/lazy) */
function patternFlags(v: Record<string, string | boolean | undefined>): PatternFlags | null {
  const mode = v.experts as string | undefined;
  const task = mode !== undefined && mode !== 'eager' && mode !== 'lazy' ? mode : undefined;
  const memoryBudget = sizeFlag(v['memory-budget'] as string | undefined, 'memory-budget');
  const patternOnly = ['store', 'keep-experts', 'score', 'threshold', 'fallback'].filter((k) => v[k] !== undefined);
  if (task === undefined) {
    if (patternOnly.length) throw new MoekitError(`--${patternOnly[0]} needs --experts auto|TASK`);
    if (memoryBudget === undefined) return null;
    if (mode === 'eager') throw new MoekitError('--memory-budget needs lazy experts (not --experts eager)');
  }
  if (v['expert-budget'] !== undefined) throw new MoekitError('--expert-budget caps experts alone (--experts lazy); with a pattern or --memory-budget, give --memory-budget SIZE (all weights)');
  if (task !== undefined && v.store === undefined) throw new MoekitError(`--experts ${task} needs --store STORE (a pattern store from moekit experts profile)`);
  const fallback = (v.fallback as string | undefined) ?? 'general';
  if (fallback !== 'general' && fallback !== 'full') throw new MoekitError(`--fallback must be 'general' or 'full', got '${fallback}'`);
  return {
    task, store: v.store as string | undefined, memoryBudget, score: scoreFlag(v.score as string | undefined), fallback,
    keepExperts: numFlag(v['keep-experts'] as string | undefined, 'keep-experts', { int: true, min: 1 }),
    threshold: numFlag(v.threshold as string | undefined, 'threshold', { min: 0 }),
  };
}

/** the most positions one generation may reach (the KV cache grows to it as tokens come, never up front) */
const MAX_NEW_TOKENS = 2 ** 24;

const USAGE = `moekit generate MODEL_DIR (--ids 1,2,3 | --prompt TEXT) [--max-new-tokens N] [--greedy | --temperature T --top-k K --top-p P --seed S] [--chat [--system TEXT]] [--no-stop] [--dtype auto|f32|q8_0|q4_0] ${EXPERT_USAGE} [--experts auto|TASK --store STORE [--keep-experts M] [--score tcess|frequency|soft|reap] [--threshold D] [--fallback general|full]] [--memory-budget SIZE] [--json]`;

export async function runGenerate(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ids: { type: 'string' }, prompt: { type: 'string' }, 'max-new-tokens': { type: 'string' },
    greedy: { type: 'boolean' }, temperature: { type: 'string' }, 'top-k': { type: 'string' },
    'top-p': { type: 'string' }, seed: { type: 'string' }, 'no-stop': { type: 'boolean' }, chat: { type: 'boolean' }, system: { type: 'string' }, json: { type: 'boolean' }, dtype: { type: 'string' }, ...EXPERT_OPTIONS,
    store: { type: 'string' }, 'keep-experts': { type: 'string' }, score: { type: 'string' }, threshold: { type: 'string' },
    fallback: { type: 'string' }, 'memory-budget': { type: 'string' },
  }, USAGE);
  const dir = onePositional(positionals, 'model directory', USAGE);
  if ((values.ids === undefined) === (values.prompt === undefined)) throw new MoekitError(`give exactly one of --ids or --prompt (--help for usage)`);
  if ((values.chat || values.system !== undefined) && values.prompt === undefined) throw new MoekitError('--chat and --system need --prompt');
  const maxNew = numFlag(values['max-new-tokens'], 'max-new-tokens', { int: true, min: 0, max: MAX_NEW_TOKENS }) ?? 16;
  const temperature = numFlag(values.temperature, 'temperature', { min: 0 });
  const topK = numFlag(values['top-k'], 'top-k', { int: true, min: 0 });
  const topP = numFlag(values['top-p'], 'top-p', { min: 0, max: 1 });
  const seed = numFlag(values.seed, 'seed', { int: true, min: 0 });
  const sampled = temperature !== undefined || topK !== undefined || topP !== undefined || seed !== undefined;
  if (values.greedy && sampled) throw new MoekitError('--greedy cannot be combined with --temperature, --top-k, --top-p or --seed');
  const tokenizer = loadTokenizer(dir);
  let prompt: number[];
  if (values.ids !== undefined) {
    prompt = values.ids.split(',').map((s) => {
      // digits only: no exponents, fractions, signs or hex; and exact (2^53 + 1 would round)
      const x = Number(s.trim());
      if (!/^\s*\d+\s*$/.test(s) || !Number.isSafeInteger(x)) throw new MoekitError(`--ids must be comma-separated non-negative integers, got '${s}'`);
      return x;
    });
  } else {
    if (!tokenizer) throw new MoekitError(`--prompt needs a tokenizer.json in the model directory; use --ids`, path.join(dir, 'tokenizer.json'));
    if (values.chat || values.system !== undefined) {
      const messages = [...(values.system !== undefined ? [{ role: 'system', content: values.system }] : []), { role: 'user', content: values.prompt! }];
      prompt = tokenizer.applyChatTemplate(messages, true);
    } else {
      prompt = tokenizer.encode(values.prompt!);
    }
  }
  const pat = patternFlags(values);
  const model = pat
    ? loadLazy(dir, modelIdentity(dir).bytes.nonExpert, pat.memoryBudget, { onProgress: terminalProgress(), dtype: dtypeFlag(values.dtype) })
    : MoeModel.load(dir, { onProgress: terminalProgress(), dtype: dtypeFlag(values.dtype), ...expertFlags(values) });
  const bad = prompt.find((id) => !(Number.isInteger(id) && id >= 0 && id < model.desc.vocab));
  if (bad !== undefined) {
    const what = `token id ${bad} is outside the model's vocabulary [0, ${model.desc.vocab})`;
    if (values.ids !== undefined) throw new MoekitError(`--ids: ${what}`);
    throw new MoekitError(`the tokenizer gave ${what}`, path.join(dir, 'tokenizer.json'));
  }
  if (prompt.length + maxNew > MAX_NEW_TOKENS) {
    throw new MoekitError(`${prompt.length} prompt tokens + --max-new-tokens ${maxNew} exceed the ${MAX_NEW_TOKENS} positions moekit generates`);
  }
  if (prompt.length + maxNew > model.desc.maxPositions) {
    process.stderr.write(`moekit: warning: ${prompt.length} prompt + ${maxNew} new tokens exceed the model's max_position_embeddings (${model.desc.maxPositions}); quality may degrade\n`);
  }
  let pattern: Pattern | null = null;
  if (pat?.task !== undefined) {
    const s = readStore(pat.store!, dir);
    const b = patternBudget(model.desc, pat.keepExperts);
    pattern = pat.task === 'auto'
      ? retrievePattern(model, s, prompt, pat.score, b, { threshold: pat.threshold, fallback: pat.fallback })
      : taskPattern(s, model.desc, pat.task, pat.score, b, pat.store);
    if (!values.json) {
      const m = pattern.match;
      process.stderr.write(`pattern: ${pattern.task ?? 'full model'}${m ? ` (retrieved: nearest ${m.nearest}, distance ${m.distance.toPrecision(3)}, threshold ${m.threshold.toPrecision(3)})` : ''}, ` +
        `${pattern.budget.keep}/${model.desc.moe.experts} experts per MoE layer, top-${pattern.budget.topK}, ${(pattern.bytes / 2 ** 20).toFixed(2)} MiB of weights\n`);
    }
  }
  const stream = !values.json && tokenizer !== null && process.stdout.isTTY === true;
  // in-process: a one-shot command has nothing else for its main thread to do, and a worker would only add
  // its start-up; the events are those a worker (src/runtime/remote.ts) streams
  const scheduler = new Scheduler(model, { maxBatch: 1, tokenizer });
  const events = scheduler.submit(prompt, {
    maxNewTokens: maxNew, greedy: values.greedy || !sampled, temperature, topK, topP, seed,
    stopAtEos: !values['no-stop'], sub: pattern?.sub,
  });
  const generated: number[] = [];
  let done: DoneMsg | null = null;
  for await (const ev of events) {
    if (ev.type === 'error') throw new MoekitError(ev.message);
    if (ev.type === 'token') {
      generated.push(ev.id);
      if (stream && ev.text) process.stdout.write(ev.text);
    } else done = ev;
  }
  const t = done!.timings;
  const res = {
    ids: [...prompt, ...generated], promptTokens: prompt.length, newTokens: generated.length,
    finishReason: done!.finish_reason === 'stop' ? 'eos' : 'length',
    timings: legacyTimings(t.prompt_n, t.predicted_n, t.prompt_ms, t.predicted_ms),
  };
  const text = done!.text;
  if (values.json) {
    process.stdout.write(JSON.stringify({
      ids: res.ids, prompt_tokens: res.promptTokens, new_tokens: res.newTokens, finish_reason: res.finishReason,
      ...(text !== undefined ? { text } : {}), timings: res.timings,
      ...(pattern ? { pattern: { task: pattern.task, keep: pattern.budget.keep, top_k: pattern.budget.topK, bytes: pattern.bytes,
        ...(pattern.match ? { nearest: pattern.match.nearest, distance: pattern.match.distance, threshold: pattern.match.threshold } : {}) } } : {}),
      ...(model.expertStore ? { experts: { ...model.expertStore.counters, resident_bytes: model.expertStore.residentBytes(),
        budget_bytes: Number.isFinite(model.expertStore.budgetBytes) ? model.expertStore.budgetBytes : null } } : {}),
    }) + '\n');
  } else if (stream) {
    process.stdout.write('\n');
  } else {
    process.stdout.write(`${res.ids.join(',')}\n${text !== undefined ? text + '\n' : ''}`);
    process.stderr.write(`${res.newTokens} new tokens (${res.finishReason}); prefill ${res.timings.prefillTokensPerS.toFixed(0)} tok/s, decode ${res.timings.decodeTokensPerS.toFixed(1)} tok/s\n`);
  }
  return 0;
}
