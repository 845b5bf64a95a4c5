/**
 * Autoregressive generation with a KV cache: one prefill over the prompt, then one token at a
 * time. Greedy or sampled; stops at max_new_tokens or an end-of-sequence id.
 */
import type { MoeModel, SubModel, Tracer } from '../models/model.js';
import { MoekitError } from '../util/errors.js';
import { rng, sample, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** stop at the model's eos ids (default true) */
  stopAtEos?: boolean;
  eosTokenIds?: number[];
  trace?: Tracer;
  /** run a sub-model (layers, experts, top-k) */
  sub?: SubModel;
  /** called with each new token id */
  onToken?: (id: number, index: number) => void;
}

export interface GenerateResult {
  /** prompt followed by the generated ids */
  ids: number[];
  promptTokens: number;
  newTokens: number;
  finishReason: 'length' | 'eos';
  timings: { prefillMs: number; decodeMs: number; prefillTokensPerS: number; decodeTokensPerS: number };
}

export function generate(model: MoeModel, prompt: number[], o: GenerateOptions): GenerateResult {
  if (prompt.length === 0) throw new MoekitError('the prompt is empty: give at least one token id');
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) throw new MoekitError(`max new tokens must be a non-negative integer, got ${o.maxNewTokens}`);
  const eos = new Set(o.stopAtEos === false ? [] : (o.eosTokenIds ?? model.desc.eosTokenIds));
  const rand = rng(o.seed ?? 0);
  const cache = model.newCache(1, prompt.length + o.maxNewTokens);
  const ids = prompt.slice();
  let finishReason: GenerateResult['finishReason'] = 'length';
  const t0 = performance.now();
  let logits = model.forward(Int32Array.from(prompt), 1, prompt.length, { cache, lastOnly: true, trace: o.trace, sub: o.sub });
  const t1 = performance.now();
  for (let i = 0; i < o.maxNewTokens; i++) {
    const next = sample(logits, o, rand);
    ids.push(next);
    o.onToken?.(next, i);
    if (eos.has(next)) { finishReason = 'eos'; break; }
    if (i + 1 < o.maxNewTokens) logits = model.forward(Int32Array.of(next), 1, 1, { cache, lastOnly: true, trace: o.trace, sub: o.sub });
  }
  const t2 = performance.now();
  const newTokens = ids.length - prompt.length;
  return {
    ids, promptTokens: prompt.length, newTokens, finishReason,
    timings: {
      prefillMs: t1 - t0, decodeMs: t2 - t1,
      prefillTokensPerS: prompt.length / ((t1 - t0) / 1000),
      decodeTokensPerS: newTokens > 1 ? (newTokens - 1) / ((t2 - t1) / 1000) : 0,
    },
  };
}
