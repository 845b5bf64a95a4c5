/**
 * The scheduler in-process (src/runtime/scheduler.ts; the worker runs the compiled copy of the same code): concurrent
 * sessions each give the ids generate() gives alone; slots, admission and batched prefill by prompt length; the
 * counts stats() reports, worked out from the requests; cancelling (abort, leaving the loop, cancelAll, an aborted
 * signal); max new tokens 0; per-token routing against a traced generate(); text through a tokenizer; the event
 * helpers (usage, timings) and the text stream that holds back incomplete characters.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { MoeModel, type MoeEvent } from '../src/models/model.js';
import { timingsOf, usageOf, type DoneMsg, type GenEvent, type SessionOptions, type TokenMsg } from '../src/runtime/events.js';
import { generate, legacyTimings } from '../src/runtime/generate.js';
import { errorMsg, Scheduler } from '../src/runtime/scheduler.js';
import { TextStream } from '../src/runtime/text-stream.js';
import { Channel } from '../src/runtime/channel.js';
import { decode, prefill, prefillBatch, Sequence, subKey } from '../src/runtime/sequence.js';
import { MoekitError } from '../src/util/errors.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const model = MoeModel.load(path.join(ROOT, 'qwen3_moe'));
const K = model.desc.moe.topK;
const nMoe = model.moeLayerIndex.filter((m) => m >= 0).length;

interface Run { ids: number[]; tokens: TokenMsg[]; done: DoneMsg | null; error: string | null }

async function collect(events: AsyncIterable<GenEvent>, stopAfter = Infinity): Promise<Run> {
  const r: Run = { ids: [], tokens: [], done: null, error: null };
  for await (const ev of events) {
    if (ev.type === 'token') {
      expect(ev.index).toBe(r.ids.length);
      r.ids.push(ev.id);
      r.tokens.push(ev);
      if (r.ids.length >= stopAfter) break;
    } else if (ev.type === 'done') r.done = ev;
    else r.error = ev.message;
  }
  return r;
}

const prompt = (n: number, seed: number) => Array.from({ length: n }, (_, j) => (j * 41 + seed * 13 + 3) % 512);

describe('the scheduler in-process', () => {
  it('six sessions over four slots: each the ids it gives alone; prefill batched by prompt length; the counts', async () => {
    const s = new Scheduler(model, { maxBatch: 4 });
    expect(s.maxBatch).toBe(4);
    // lengths 3, 3, 5, 3 admitted first (3-token prompts prefill together), then 5 and 2 as slots free
    const reqs: { p: number[]; o: SessionOptions }[] = [
      { p: prompt(3, 1), o: { maxNewTokens: 4, greedy: true, stopAtEos: false } },
      { p: prompt(3, 2), o: { maxNewTokens: 6, temperature: 1.1, topK: 20, seed: 5 } },
      { p: prompt(5, 3), o: { maxNewTokens: 3, greedy: true, stopAtEos: false } },
      { p: prompt(3, 4), o: { maxNewTokens: 5, temperature: 0.8, topP: 0.9, seed: 9 } },
      { p: prompt(5, 5), o: { maxNewTokens: 2, greedy: true, stopAtEos: false } },
      { p: prompt(2, 6), o: { maxNewTokens: 3, greedy: true, stopAtEos: false } },
    ];
    const alone = reqs.map(({ p, o }) => generate(model, p, o));
    const runs = await Promise.all(reqs.map(({ p, o }) => collect(s.submit(p, o))));
    let tokens = 0;
    runs.forEach((r, i) => {
      expect([...reqs[i].p, ...r.ids], `request ${i}`).toEqual(alone[i].ids);
      expect(r.error).toBeNull();
      expect(r.done!.finish_reason).toBe(alone[i].finishReason === 'eos' ? 'stop' : 'length');
      expect(r.done!.usage).toEqual({ prompt_tokens: reqs[i].p.length, completion_tokens: r.ids.length, total_tokens: reqs[i].p.length + r.ids.length });
      expect(r.done!.timings.prompt_n).toBe(reqs[i].p.length);
      expect(r.done!.timings.predicted_n).toBe(r.ids.length);
      expect(r.done!.batch.decode_steps).toBe(r.ids.length - 1);
      expect(r.done!.batch.max_batch).toBeLessThanOrEqual(4);
      expect(r.done!.text).toBeUndefined();
      tokens += r.ids.length;
    });
    const st = s.stats();
    expect(st).toMatchObject({ slots: 4, running: 0, queued: 0, tokens, maxBatch: 4 });
    // the first four arrive together: one prefill for the three 3-token prompts, one for the 5-token one
    expect(st.prefills).toBeLessThan(reqs.length);
    // every decoded token but each session's first took part in a decode forward
    expect(st.steps).toBeGreaterThanOrEqual(Math.max(...runs.map((r) => r.ids.length)) - 1);
    // expert loads: K assignments for every position fed, per MoE layer (prompts plus all tokens but the last)
    const fed = reqs.reduce((a, { p }, i) => a + p.length + runs[i].ids.length - 1, 0);
    expect(st.expertLoad.length).toBe(nMoe);
    for (const l of st.expertLoad) {
      expect(l.length).toBe(model.desc.moe.experts);
      expect(l.reduce((a, b) => a + b, 0)).toBe(fed * K);
    }
  });

  it('one slot: the sessions run one after the other, in order of arrival, never batched', async () => {
    const s = new Scheduler(model, { maxBatch: 1 });
    const o: SessionOptions = { maxNewTokens: 3, greedy: true, stopAtEos: false };
    const order: number[] = [];
    const runs = await Promise.all([0, 1, 2].map(async (i) => {
      const r = await collect(s.submit(prompt(4, i), o));
      order.push(i);
      return r;
    }));
    expect(order).toEqual([0, 1, 2]);
    for (const r of runs) expect(r.done!.batch.max_batch).toBe(1);
    expect(s.stats()).toMatchObject({ prefills: 3, steps: 6, maxBatch: 1, tokens: 9 });
  });

  it('an eos id ends a session with stop; max new tokens 0 ends it at once with length', async () => {
    const s = new Scheduler(model, { maxBatch: 2 });
    const p = prompt(6, 7);
    const free = generate(model, p, { maxNewTokens: 6, greedy: true, stopAtEos: false }).ids.slice(p.length);
    const eos = free[2];
    const [a, z] = await Promise.all([
      collect(s.submit(p, { maxNewTokens: 6, greedy: true, eosTokenIds: [eos] })),
      collect(s.submit(p, { maxNewTokens: 0, greedy: true })),
    ]);
    expect(a.ids).toEqual(free.slice(0, free.indexOf(eos) + 1));
    expect(a.done!.finish_reason).toBe('stop');
    expect(z.ids).toEqual([]);
    expect(z.done!.finish_reason).toBe('length');
    expect(z.done!.usage.completion_tokens).toBe(0);
  });

  it('cancelling: an abort mid-stream, leaving the loop, an aborted signal, cancelAll; the slot is free at once', async () => {
    const s = new Scheduler(model, { maxBatch: 1 });
    const o: SessionOptions = { maxNewTokens: 40, greedy: true, stopAtEos: false };
    const ac = new AbortController();
    const aborted = (async () => {
      const r: Run = { ids: [], tokens: [], done: null, error: null };
      for await (const ev of s.submit(prompt(3, 1), o, ac.signal)) {
        if (ev.type === 'token') { r.ids.push(ev.id); if (r.ids.length === 3) ac.abort(); }
        if (ev.type === 'done') r.done = ev;
      }
      return r;
    })();
    const next = collect(s.submit(prompt(3, 2), { ...o, maxNewTokens: 2 })); // waits for the slot
    const a = await aborted;
    expect(a.done!.finish_reason).toBe('cancelled');
    expect(a.ids.length).toBeGreaterThanOrEqual(3);
    expect(a.ids.length).toBeLessThan(40);
    const b = await next;
    expect(b.ids.length).toBe(2);
    // leaving the loop cancels the session: the next one runs
    const left = await collect(s.submit(prompt(3, 3), o), 2);
    expect(left.ids.length).toBe(2);
    expect((await collect(s.submit(prompt(3, 4), { ...o, maxNewTokens: 1 }))).ids.length).toBe(1);
    // an already aborted signal: done 'cancelled' with nothing generated
    const pre = new AbortController();
    pre.abort();
    const c = await collect(s.submit(prompt(3, 5), o, pre.signal));
    expect([c.ids.length, c.done!.finish_reason, c.done!.usage.completion_tokens]).toEqual([0, 'cancelled', 0]);
    // cancelAll ends the running and the queued
    const r1 = collect(s.submit(prompt(3, 6), o)), r2 = collect(s.submit(prompt(3, 7), o));
    await new Promise((r) => setImmediate(r));
    s.cancelAll();
    const [x, y] = await Promise.all([r1, r2]);
    expect([x.done!.finish_reason, y.done!.finish_reason]).toEqual(['cancelled', 'cancelled']);
    expect(y.ids).toEqual([]);
    expect(s.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  it('a bad request gets an error event and the others go on; a bad max batch is refused', async () => {
    const s = new Scheduler(model, { maxBatch: 3 });
    const o: SessionOptions = { maxNewTokens: 3, greedy: true, stopAtEos: false };
    const [bad, ok, badTemp] = await Promise.all([
      collect(s.submit([600], o)), collect(s.submit(prompt(2, 1), o)), collect(s.submit([1], { ...o, temperature: -1 })),
    ]);
    expect(bad.error).toBe(new MoekitError('token id 600 is outside the vocabulary [0, 512) (vocab_size)', `${model.dir}/config.json`).oneLine());
    expect(badTemp.error).toBe('temperature must be a number ≥ 0, got -1');
    expect(ok.ids.length).toBe(3);
    for (const m of [0, -1, 1.5]) expect(() => new Scheduler(model, { maxBatch: m })).toThrow(`max batch must be a positive integer, got ${m}`);
    expect(new Scheduler(model).maxBatch).toBe(8);
  });

  it('sessions of different sub-models never share a forward; each gives its alone ids', async () => {
    const s = new Scheduler(model, { maxBatch: 4 });
    const sub = { topK: 1 };
    const o: SessionOptions = { maxNewTokens: 4, greedy: true, stopAtEos: false };
    const [a, b] = await Promise.all([collect(s.submit(prompt(3, 1), o)), collect(s.submit(prompt(3, 2), { ...o, sub }))]);
    expect([...prompt(3, 1), ...a.ids]).toEqual(generate(model, prompt(3, 1), o).ids);
    expect([...prompt(3, 2), ...b.ids]).toEqual(generate(model, prompt(3, 2), { ...o, sub }).ids);
    expect(s.stats()).toMatchObject({ prefills: 2, steps: 6, maxBatch: 1 });
  });

  it('traceRoutes: each token event carries the routing of the positions its forward fed', async () => {
    const s = new Scheduler(model, { maxBatch: 2 });
    const p = prompt(4, 3);
    const o: SessionOptions = { maxNewTokens: 3, greedy: true, stopAtEos: false, traceRoutes: true };
    const events: MoeEvent[] = [];
    generate(model, p, { ...o, trace: { moe: (ev) => events.push({ ...ev, experts: ev.experts.slice(), weights: ev.weights.slice() }) } });
    const [r, plain] = await Promise.all([collect(s.submit(p, o)), collect(s.submit(p, { ...o, traceRoutes: false }))]);
    expect(plain.tokens.every((t) => t.routes === undefined)).toBe(true);
    // token 0: the prompt's positions; each later token: one position
    expect(r.tokens.map((t) => t.routes!.length)).toEqual([p.length, 1, 1]);
    const forwards = [p.length, 1, 1];
    let ev = 0;
    forwards.forEach((T, i) => {
      for (let l = 0; l < nMoe; l++, ev++) {
        const e = events[ev];
        expect(e.moeLayer).toBe(l);
        for (let t = 0; t < T; t++) {
          expect(r.tokens[i].routes![t].experts[l]).toEqual(Array.from(e.experts.subarray(t * K, (t + 1) * K)));
          const w = r.tokens[i].routes![t].weights[l]!;
          for (let j = 0; j < K; j++) expect(Math.abs(w[j] - e.weights[t * K + j])).toBeLessThanOrEqual(5e-5);
        }
      }
    });
    expect(ev).toBe(events.length);
  });

  it('with a tokenizer: token events carry their text, done the whole completion', async () => {
    const dir = path.resolve(__dirname, '../examples/demo-moe');
    const m = MoeModel.load(dir), tok = loadTokenizer(dir)!;
    const s = new Scheduler(m, { tokenizer: tok });
    const p = tok.encode('reverse anzzhp=');
    const r = await collect(s.submit(p, { maxNewTokens: 20, greedy: true }));
    expect(r.done!.finish_reason).toBe('stop');
    expect(r.done!.text).toBe(tok.decode(r.ids));
    expect(r.tokens.map((t) => t.text).join('')).toBe(tok.decode(r.ids));
    expect(tok.decode(r.ids)).toBe('phzzna');
  });

  it('listen: the events go to a callback as they happen', async () => {
    const s = new Scheduler(model, { maxBatch: 2 });
    const got: GenEvent[] = [];
    await new Promise<void>((resolve) => s.listen(prompt(3, 1), { maxNewTokens: 3, greedy: true, stopAtEos: false }, undefined, (ev) => { got.push(ev); if (ev.type === 'done') resolve(); }));
    expect(got.map((e) => e.type)).toEqual(['token', 'token', 'token', 'done']);
    expect(got.filter((e) => e.type === 'token').map((e) => (e as TokenMsg).id)).toEqual(generate(model, prompt(3, 1), { maxNewTokens: 3, greedy: true, stopAtEos: false }).ids.slice(3));
  });
});

describe('session event helpers', () => {
  it('usage and timings from the clock readings', () => {
    expect(usageOf(7, 5)).toEqual({ prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 });
    expect(timingsOf({ submitted: 100, prefillStart: 110, prefillEnd: 130, end: 180 }, 4, 5)).toEqual({
      queue_ms: 10, prompt_n: 4, prompt_ms: 20, prompt_per_token_ms: 5, prompt_per_second: 200,
      predicted_n: 5, predicted_ms: 50, predicted_per_token_ms: 10, predicted_per_second: 100,
    });
    // nothing measured: zeros, never NaN or Infinity
    expect(timingsOf({ submitted: 5, prefillStart: 5, prefillEnd: 5, end: 5 }, 0, 0)).toEqual({
      queue_ms: 0, prompt_n: 0, prompt_ms: 0, prompt_per_token_ms: 0, prompt_per_second: 0,
      predicted_n: 0, predicted_ms: 0, predicted_per_token_ms: 0, predicted_per_second: 0,
    });
    // clock readings out of order count as zero
    expect(timingsOf({ submitted: 10, prefillStart: 5, prefillEnd: 4, end: 3 }, 1, 1)).toMatchObject({ queue_ms: 0, prompt_ms: 0, predicted_ms: 0 });
  });

  it('errorMsg: a MoekitError as its one line, an Error as its message, anything else as a string', () => {
    expect(errorMsg(new MoekitError('bad thing', 'f.json'))).toEqual({ type: 'error', message: new MoekitError('bad thing', 'f.json').oneLine() });
    expect(errorMsg(new Error('plain'))).toEqual({ type: 'error', message: 'plain' });
    expect(errorMsg(42)).toEqual({ type: 'error', message: '42' });
  });

  it('the text stream holds back a token that ends inside a character', () => {
    // a byte-level decoder: ids are bytes, decoded as UTF-8
    const tok = { decode: (ids: number[]) => Buffer.from(ids).toString('utf8') };
    const ts = new TextStream(tok);
    const euro = [...Buffer.from('€')]; // 3 bytes
    expect(ts.push('a'.charCodeAt(0))).toBe('a');
    expect(ts.push(euro[0])).toBe('');
    expect(ts.push(euro[1])).toBe('');
    expect(ts.push(euro[2])).toBe('€');
    expect(ts.push('b'.charCodeAt(0))).toBe('b');
  });
});

describe('a sequence refuses a bad request, naming it', () => {
  it.each([
    [[], { maxNewTokens: 1 }, /^the prompt is empty: give at least one token id$/],
    [[1, 512], { maxNewTokens: 1 }, /^token id 512 is outside the vocabulary \[0, 512\) \(vocab_size\)$/],
    [[1.5], { maxNewTokens: 1 }, /^token id 1\.5 is outside the vocabulary/],
    [[-1], { maxNewTokens: 1 }, /^token id -1 is outside the vocabulary/],
    [[1], { maxNewTokens: -1 }, /^max new tokens must be a non-negative integer, got -1$/],
    [[1], { maxNewTokens: 2.5 }, /^max new tokens must be a non-negative integer, got 2\.5$/],
    [[1], { maxNewTokens: 1, temperature: NaN }, /^temperature must be a number ≥ 0, got NaN$/],
    [[1], { maxNewTokens: 1, temperature: -0.1 }, /^temperature must be a number ≥ 0, got -0\.1$/],
    [[1], { maxNewTokens: 1, topK: -1 }, /^top-k must be an integer ≥ 0, got -1$/],
    [[1], { maxNewTokens: 1, topK: 2.5 }, /^top-k must be an integer ≥ 0, got 2\.5$/],
    [[1], { maxNewTokens: 1, topP: 1.5 }, /^top-p must be a number in \[0, 1\], got 1\.5$/],
    [[1], { maxNewTokens: 1, topP: -0.5 }, /^top-p must be a number in \[0, 1\], got -0\.5$/],
    [[1], { maxNewTokens: 1, topP: NaN }, /^top-p must be a number in \[0, 1\], got NaN$/],
    [[1], { maxNewTokens: 1, seed: 0.5 }, /^seed must be an integer, got 0\.5$/],
  ] as [number[], SessionOptions, RegExp][])('%j %j', (p, o, re) => {
    let e: unknown;
    try { generate(model, p, o); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(MoekitError);
    expect((e as Error).message).toMatch(re);
  });
  it('the edges of each range are accepted', () => {
    for (const o of [{ temperature: 0 }, { topK: 0 }, { topP: 0 }, { topP: 1 }, { seed: -3 }, { maxNewTokens: 0 }]) {
      expect(() => generate(model, [511], { maxNewTokens: 1, ...o })).not.toThrow();
    }
    expect(generate(model, [0], { maxNewTokens: 0 })).toMatchObject({ newTokens: 0, finishReason: 'length', ids: [0] });
  });
});

describe('generate', () => {
  it('the legacy timings: tokens per second of the prompt, and of the decode after the first token', () => {
    expect(legacyTimings(10, 5, 200, 400)).toEqual({ prefillMs: 200, decodeMs: 400, prefillTokensPerS: 50, decodeTokensPerS: 10 });
    expect(legacyTimings(3, 1, 100, 50).decodeTokensPerS).toBe(0);
    expect(legacyTimings(3, 0, 100, 50).decodeTokensPerS).toBe(0);
  });
  it('onToken sees every new token with its index; the result counts them', () => {
    const seen: [number, number][] = [];
    const r = generate(model, [5, 6, 7], { maxNewTokens: 4, greedy: true, stopAtEos: false, onToken: (id, i) => seen.push([id, i]) });
    expect(seen).toEqual(r.ids.slice(3).map((id, i) => [id, i]));
    expect([r.promptTokens, r.newTokens, r.finishReason]).toEqual([3, 4, 'length']);
    expect(r.timings.prefillMs).toBeGreaterThanOrEqual(0);
    expect(r.timings.prefillTokensPerS).toBeGreaterThan(0);
  });
  it('seeded sampling repeats; another seed gives another path', () => {
    const o = { maxNewTokens: 8, temperature: 1.5, stopAtEos: false };
    const a = generate(model, [1, 2], { ...o, seed: 1 }).ids, b = generate(model, [1, 2], { ...o, seed: 1 }).ids;
    expect(a).toEqual(b);
    expect(generate(model, [1, 2], { ...o, seed: 2 }).ids).not.toEqual(a);
    expect(generate(model, [1, 2], o).ids).toEqual(generate(model, [1, 2], { ...o, seed: 0 }).ids); // seed 0 by default
  });
});

describe('the channel between the scheduler and a session', () => {
  it('buffers pushes, hands one to a waiting reader, ends on close; nothing after close', async () => {
    const ch = new Channel<number>();
    ch.push(1);
    ch.push(2);
    const it = ch[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ value: 1, done: false });
    expect(await it.next()).toEqual({ value: 2, done: false });
    const waiting = it.next();
    ch.push(3); // straight to the waiting reader
    expect(await waiting).toEqual({ value: 3, done: false });
    const ending = it.next();
    ch.close(); // a waiting reader is told the end
    expect(await ending).toEqual({ value: undefined, done: true });
    ch.push(4);
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });
  it('a reader that stops early: the buffer is dropped and onReturn is called once', async () => {
    const ch = new Channel<number>();
    let calls = 0;
    ch.onReturn = () => { calls++; };
    ch.push(1);
    ch.push(2);
    const it = ch[Symbol.asyncIterator]();
    expect(await it.return!()).toEqual({ value: undefined, done: true });
    expect(calls).toBe(1);
    expect(await it.next()).toEqual({ value: undefined, done: true });
    await it.return!();
    expect(calls).toBe(1);
    // after a normal close, returning calls nothing
    const c2 = new Channel<number>();
    let n2 = 0;
    c2.onReturn = () => { n2++; };
    c2.close();
    await c2[Symbol.asyncIterator]().return!();
    expect(n2).toBe(0);
  });
});

describe('the forward steps refuse batches they cannot run', () => {
  it('prefill: prompts of different lengths or sub-models; decode: finished sequences or different sub-models', () => {
    const o: SessionOptions = { maxNewTokens: 2, greedy: true, stopAtEos: false };
    const a = new Sequence(model, [1, 2], o), b = new Sequence(model, [3], o), c = new Sequence(model, [4, 5], { ...o, sub: { topK: 1 } });
    expect(() => prefillBatch(model, [a, b])).toThrow('prefillBatch: prompts of different lengths or sub-models in one batch');
    expect(() => prefillBatch(model, [a, c])).toThrow('prefillBatch: prompts of different lengths or sub-models in one batch');
    const d = new Sequence(model, [6, 7], o);
    prefillBatch(model, [a, d]);
    prefill(model, c);
    expect([a.out.length, d.out.length, c.out.length]).toEqual([1, 1, 1]);
    expect(() => decode(model, [a, c])).toThrow('decode: finished sequences or different sub-models in one batch');
    decode(model, [a, d]);
    expect(a.done && d.done).toBe(true);
    expect([a.decodeSteps, a.maxBatch]).toEqual([1, 2]);
    expect(() => decode(model, [a])).toThrow('decode: finished sequences or different sub-models in one batch');
    expect(a.t.end).toBeGreaterThanOrEqual(a.t.prefillEnd);
  });
  it('the sub-model key: by value, empty without a sub-model', () => {
    expect(subKey(undefined)).toBe('');
    expect(subKey({ layers: [0, 2], experts: [Uint8Array.from([1, 0]), null], topK: 1 })).toBe(JSON.stringify({ layers: [0, 2], experts: ['10', null], topK: 1 }));
    expect(subKey({})).toBe(JSON.stringify({ layers: null, experts: null, topK: null }));
    expect(subKey({ experts: [Uint8Array.from([1, 1])] })).toBe(subKey({ experts: [Uint8Array.from([1, 1])] }));
    expect(subKey({ topK: 1 })).not.toBe(subKey({ topK: 2 }));
  });
  it('the cache starts with room for the prompt and up to 256 new tokens, and grows past it', () => {
    const s = new Sequence(model, [1, 2, 3], { maxNewTokens: 400, greedy: true, stopAtEos: false });
    expect(s.eos.size).toBe(0);
    expect(new Sequence(model, [1], { maxNewTokens: 1, eosTokenIds: [5, 6] }).eos).toEqual(new Set([5, 6]));
    expect(new Sequence(model, [1], { maxNewTokens: 1 }).eos).toEqual(new Set(model.desc.eosTokenIds));
    const r = generate(model, [1, 2, 3], { maxNewTokens: 270, greedy: true, stopAtEos: false });
    expect(r.newTokens).toBe(270);
  });
});
