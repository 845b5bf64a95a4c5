/**
 * Synchronous autoregressive generation of one sequence with a KV cache: one prefill over the prompt,
 * then one token at a time (greedy or sampled; stops at max_new_tokens or an end-of-sequence id). The
 * steps are those of the scheduler (src/runtime/sequence.ts) run for a batch of one; tests, the trainer
 * and the benchmarks call this, streaming sessions go through src/runtime/scheduler.ts.
 */
import type { MoeModel, Tracer } from '../models/model.js';
import type { SessionOptions } from './events.js';
import { decode, prefill, Sequence } from './sequence.js';

export interface GenerateOptions extends SessionOptions {
  trace?: Tracer;
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
  const s = new Sequence(model, prompt, o);
  prefill(model, s, o.trace);
  if (s.out.length > 0) o.onToken?.(s.last, 0);
  while (!s.done) {
    decode(model, [s], o.trace);
    o.onToken?.(s.last, s.out.length - 1);
  }
  return {
    ids: [...prompt, ...s.out], promptTokens: prompt.length, newTokens: s.out.length, finishReason: s.finish!,
    timings: legacyTimings(prompt.length, s.out.length, s.t.prefillEnd - s.t.prefillStart, s.t.end - s.t.prefillEnd),
  };
}

/** the timings `generate` and `moekit generate --json` report: decode counts the tokens after the first */
export function legacyTimings(promptTokens: number, newTokens: number, prefillMs: number, decodeMs: number): GenerateResult['timings'] {
  return {
    prefillMs, decodeMs,
    prefillTokensPerS: promptTokens / (prefillMs / 1000),
    decodeTokensPerS: newTokens > 1 ? (newTokens - 1) / (decodeMs / 1000) : 0,
  };
}
