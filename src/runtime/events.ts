/**
 * The events of a model session, typed once for every consumer: the CLI (bar and streamed text),
 * the worker's port, and the OpenAI-style server that streams them as SSE. Loading reports the
 * ProgressEvents of src/util/progress.ts unchanged; a generation reports its tokens, then one `done`
 * (or one `error`) and nothing after.
 *
 *   loading:     progress* → (ready, or error)
 *   generation:  token* → done | error
 */
import type { ProgressEvent } from '../util/progress.js';
import type { SubModel } from '../models/pass.js';
import type { SamplingOptions } from './sampling.js';

/** OpenAI's finish reasons ('stop': an end-of-sequence id; 'length': max tokens), and ours for an abort */
export type FinishReason = 'stop' | 'length' | 'cancelled';

/** OpenAI's usage block */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/**
 * llama.cpp server's timings: prompt = the prefill forward, predicted = from the end of the prefill to
 * the last token (wall clock: with batching it includes the steps shared with other sequences).
 * Rates are 0 when nothing was timed. queue_ms (ours): from submit to the start of the prefill.
 */
export interface Timings {
  queue_ms: number;
  prompt_n: number;
  prompt_ms: number;
  prompt_per_token_ms: number;
  prompt_per_second: number;
  predicted_n: number;
  predicted_ms: number;
  predicted_per_token_ms: number;
  predicted_per_second: number;
}

/** how the sequence was batched: decode forwards it took part in, and the largest batch among them */
export interface BatchStats {
  decode_steps: number;
  max_batch: number;
}

export interface ProgressMsg { type: 'progress'; event: ProgressEvent }
/**
 * One position's routing, per MoE layer (indexed by MoE layer): the experts chosen and their combine
 * weights, [K] each; null for a layer the sub-model skips.
 */
export interface TokenRoute {
  experts: (number[] | null)[];
  weights: (number[] | null)[];
}

/**
 * one generated token; `text` is the printable text it adds (with a tokenizer; '' while a UTF-8 sequence is
 * incomplete). With `traceRoutes`, `routes` is the routing of the positions the forward that produced it fed: every
 * prompt position for the first token, the previous token after that (so the routes of all token events, in
 * order, are those of positions 0 … prompt + n − 2).
 */
export interface TokenMsg { type: 'token'; id: number; index: number; text?: string; routes?: TokenRoute[] }
/** the end of a generation; `text` is the whole completion, decoded once (with a tokenizer) */
export interface DoneMsg { type: 'done'; finish_reason: FinishReason; usage: Usage; timings: Timings; batch: BatchStats; text?: string }
/** a request that failed (bad prompt, bad options, a forward that threw); its session ends here */
export interface ErrorMsg { type: 'error'; message: string }

/** every event of a session */
export type SessionEvent = ProgressMsg | TokenMsg | DoneMsg | ErrorMsg;
/** what a generation streams */
export type GenEvent = TokenMsg | DoneMsg | ErrorMsg;
/** what loading streams (an error when the model cannot load) */
export type LoadEvent = ProgressMsg | ErrorMsg;

/** what a request asks for (plain data: it crosses the worker's port) */
export interface SessionOptions extends SamplingOptions {
  maxNewTokens: number;
  /** stop at the eos ids (default true) */
  stopAtEos?: boolean;
  /** default: the model's eos_token_id */
  eosTokenIds?: number[];
  /** run a sub-model (layers, experts, top-k); only sequences with the same sub-model share a forward */
  sub?: SubModel;
  /** token events carry the routing of every position (TokenMsg.routes) */
  traceRoutes?: boolean;
}

export function usageOf(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** timings from the clock readings of one sequence (ms, performance.now()) */
export function timingsOf(t: { submitted: number; prefillStart: number; prefillEnd: number; end: number }, promptN: number, predictedN: number): Timings {
  const promptMs = Math.max(0, t.prefillEnd - t.prefillStart), predictedMs = Math.max(0, t.end - t.prefillEnd);
  return {
    queue_ms: Math.max(0, t.prefillStart - t.submitted),
    prompt_n: promptN,
    prompt_ms: promptMs,
    prompt_per_token_ms: promptN > 0 ? promptMs / promptN : 0,
    prompt_per_second: promptMs > 0 ? (promptN * 1000) / promptMs : 0,
    predicted_n: predictedN,
    predicted_ms: predictedMs,
    predicted_per_token_ms: predictedN > 0 ? predictedMs / predictedN : 0,
    predicted_per_second: predictedMs > 0 ? (predictedN * 1000) / predictedMs : 0,
  };
}
