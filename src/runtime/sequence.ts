/**
 * One sequence being generated, and the two forward steps every generation is made of: the prefill of
 * prompts (a forward of their T tokens: one prompt, or several of one length), and the decode of B sequences
 * by one token each (one forward [B, 1] over their own caches, each at its own length). The synchronous generate() runs them for one
 * sequence; the scheduler interleaves them for many.
 */
import type { MoeModel, SubModel, Tracer } from '../models/model.js';
import { KvCache, type SeqCache } from '../models/kv-cache.js';
import { resolveSub } from '../models/pass.js';
import { MoekitError } from '../util/errors.js';
import type { SessionOptions } from './events.js';
import { rng, sample } from './sampling.js';

export class Sequence {
  readonly eos: Set<number>;
  readonly rand: () => number;
  readonly cache: SeqCache;
  /** sequences share a decode forward only when their keys are equal (same sub-model) */
  readonly subKey: string;
  /** the generated ids */
  readonly out: number[] = [];
  finish: 'length' | 'eos' | null = null;
  /** clock readings (performance.now(), ms) */
  readonly t = { submitted: performance.now(), prefillStart: 0, prefillEnd: 0, end: 0 };
  /** decode forwards this sequence took part in, and the largest B among them */
  decodeSteps = 0;
  maxBatch = 0;

  /** checks the request (a MoekitError names what is wrong) */
  constructor(model: MoeModel, readonly prompt: number[], readonly o: SessionOptions) {
    const V = model.desc.vocab;
    if (!Array.isArray(prompt) || prompt.length === 0) throw new MoekitError('the prompt is empty: give at least one token id');
    for (const id of prompt) if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new MoekitError(`token id ${id} is outside the vocabulary [0, ${V}) (vocab_size)`, model.dir ? `${model.dir}/config.json` : undefined);
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) throw new MoekitError(`max new tokens must be a non-negative integer, got ${o.maxNewTokens}`);
    checkSampling(o);
    resolveSub(model.desc, o.sub);
    this.subKey = subKey(o.sub);
    this.eos = new Set(o.stopAtEos === false ? [] : (o.eosTokenIds ?? model.desc.eosTokenIds));
    this.rand = rng(o.seed ?? 0);
    // room for the prompt and some tokens; the cache doubles when it needs more
    this.cache = model.newSeqCache(prompt.length + Math.min(o.maxNewTokens, 256));
  }

  get done(): boolean {
    return this.finish !== null;
  }

  /** the token the next decode step feeds */
  get last(): number {
    return this.out[this.out.length - 1];
  }

  /** logits [V] → the next token; sets `finish` at an eos id or the last allowed token */
  take(logits: Float32Array): number {
    const next = sample(logits, this.o, this.rand);
    this.out.push(next);
    if (this.eos.has(next)) this.finish = 'eos';
    else if (this.out.length >= this.o.maxNewTokens) this.finish = 'length';
    if (this.finish) this.t.end = performance.now();
    return next;
  }
}

/** forward the prompt of `s` alone and take its first token (none for max new tokens 0) */
export function prefill(model: MoeModel, s: Sequence, trace?: Tracer): void {
  prefillBatch(model, [s], trace);
}

/**
 * the prompts of B sequences of one length and one sub-model in one forward [B, T] (each into its own cache),
 * and each one's first token (none for max new tokens 0)
 */
export function prefillBatch(model: MoeModel, seqs: Sequence[], trace?: Tracer): void {
  const B = seqs.length, T = seqs[0].prompt.length, V = model.desc.vocab;
  if (seqs.some((s) => s.prompt.length !== T || s.subKey !== seqs[0].subKey)) throw new Error('prefillBatch: prompts of different lengths or sub-models in one batch');
  const t0 = performance.now();
  const ids = new Int32Array(B * T); // [B, T]
  seqs.forEach((s, b) => { s.t.prefillStart = t0; ids.set(s.prompt, b * T); });
  const logits = model.forward(ids, B, T, { cache: new KvCache(seqs.map((s) => s.cache)), lastOnly: true, trace, sub: seqs[0].o.sub }); // [B, V]
  const t1 = performance.now();
  seqs.forEach((s, b) => {
    s.t.prefillEnd = t1;
    if (s.o.maxNewTokens === 0) {
      s.finish = 'length';
      s.t.end = t1;
    } else {
      s.take(logits.subarray(b * V, (b + 1) * V));
    }
  });
}

/** one batched decode step: feed each sequence's last token (one forward [B, 1]) and take the next */
export function decode(model: MoeModel, seqs: Sequence[], trace?: Tracer): void {
  const B = seqs.length, V = model.desc.vocab;
  if (seqs.some((s) => s.done || s.subKey !== seqs[0].subKey)) throw new Error('decode: finished sequences or different sub-models in one batch');
  const ids = Int32Array.from(seqs, (s) => s.last); // [B, 1]
  const logits = model.forward(ids, B, 1, { cache: new KvCache(seqs.map((s) => s.cache)), lastOnly: true, trace, sub: seqs[0].o.sub }); // [B, V]
  seqs.forEach((s, b) => {
    s.decodeSteps++;
    s.maxBatch = Math.max(s.maxBatch, B);
    s.take(logits.subarray(b * V, (b + 1) * V));
  });
}

/** a sub-model's identity by value (requests that crossed a thread are copies) */
export function subKey(sub: SubModel | undefined): string {
  if (!sub) return '';
  return JSON.stringify({
    layers: sub.layers ?? null,
    experts: sub.experts?.map((m) => (m ? Array.from(m).join('') : null)) ?? null,
    topK: sub.topK ?? null,
  });
}

function checkSampling(o: SessionOptions): void {
  const bad = (name: string, v: unknown, what: string) => new MoekitError(`${name} must be ${what}, got ${v}`);
  if (o.temperature !== undefined && !(Number.isFinite(o.temperature) && o.temperature >= 0)) throw bad('temperature', o.temperature, 'a number ≥ 0');
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw bad('top-k', o.topK, 'an integer ≥ 0');
  if (o.topP !== undefined && !(Number.isFinite(o.topP) && o.topP >= 0 && o.topP <= 1)) throw bad('top-p', o.topP, 'a number in [0, 1]');
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw bad('seed', o.seed, 'an integer');
}
