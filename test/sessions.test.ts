/**
 * Streaming sessions: eight concurrent generations through the worker API (src/runtime/remote.ts) give
 * each the ids it gives alone (runtime/generate.ts on an in-process model), in batched decode steps;
 * cancelling one frees its slot for the next request; done events carry usage and timings; bad requests
 * end only their own session; a bad model directory rejects `ready`; sub-models never share a forward.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { MoeModel } from '../src/models/model.js';
import type { DoneMsg, GenEvent, SessionOptions } from '../src/runtime/events.js';
import { generate } from '../src/runtime/generate.js';
import { openModel, type ModelHandle } from '../src/runtime/remote.js';
import { Scheduler } from '../src/runtime/scheduler.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const V = 512;

/** the worker runs dist/: it must not be older than the sources (npm test builds it) */
beforeAll(() => {
  const worker = path.resolve(__dirname, '../dist/runtime/worker.js');
  const newest = (dir: string): number => Math.max(...fs.readdirSync(dir, { withFileTypes: true }).map((e) =>
    e.isDirectory() ? newest(path.join(dir, e.name)) : e.name.endsWith('.ts') ? fs.statSync(path.join(dir, e.name)).mtimeMs : 0));
  expect(fs.existsSync(worker) && fs.statSync(worker).mtimeMs >= newest(path.resolve(__dirname, '../src')), 'dist/ is older than src/: run npm run build:ts (npm test does)').toBe(true);
});

interface Result { ids: number[]; texts: string[]; done: DoneMsg | null; error: string | null; firstAt: number; endAt: number }

/** event order across sessions: a shared counter */
let clock = 0;

async function collect(events: AsyncIterable<GenEvent>, onToken?: (n: number) => void): Promise<Result> {
  const r: Result = { ids: [], texts: [], done: null, error: null, firstAt: -1, endAt: -1 };
  for await (const ev of events) {
    if (ev.type === 'token') {
      expect(ev.index).toBe(r.ids.length);
      if (r.firstAt < 0) r.firstAt = ++clock;
      r.ids.push(ev.id);
      if (ev.text !== undefined) r.texts.push(ev.text);
      onToken?.(r.ids.length);
    } else if (ev.type === 'done') r.done = ev;
    else r.error = ev.message;
  }
  r.endAt = ++clock;
  return r;
}

/** eight requests: prompt lengths 1..22 (past gpt-oss's window of 8), greedy and seeded sampling, one stopping at an eos id */
function requests(): { prompt: number[]; o: SessionOptions }[] {
  return Array.from({ length: 8 }, (_, i) => ({
    prompt: Array.from({ length: 1 + 3 * i }, (_, j) => (j * 37 + i * 11 + 5) % V),
    o: i % 2 === 1
      ? { maxNewTokens: 12 + i, temperature: 1.3, topK: 50, topP: 0.95, seed: 100 + i }
      : { maxNewTokens: 10 + 2 * i, greedy: true, stopAtEos: false },
  }));
}

function expectDone(d: DoneMsg | null, prompt: number, completion: number, reason: DoneMsg['finish_reason']): void {
  expect(d).not.toBeNull();
  expect(d!.finish_reason).toBe(reason);
  expect(d!.usage).toEqual({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });
  const t = d!.timings;
  expect(t.prompt_n).toBe(prompt);
  expect(t.predicted_n).toBe(completion);
  expect(t.prompt_ms).toBeGreaterThan(0);
  expect(t.prompt_per_second).toBeCloseTo((prompt * 1000) / t.prompt_ms, 6);
  if (completion > 1) expect(t.predicted_per_second).toBeCloseTo((completion * 1000) / t.predicted_ms, 6);
  expect(t.queue_ms).toBeGreaterThanOrEqual(0);
}

describe.each(['gpt_oss', 'deepseek_v3', 'qwen3_moe'])('%s: eight concurrent sessions through the worker', (arch) => {
  const dir = path.join(ROOT, arch);
  let h: ModelHandle;
  let model: MoeModel;
  beforeAll(() => {
    model = MoeModel.load(dir);
    h = openModel(dir);
  });
  afterAll(() => h.close());

  it('each gives exactly the ids it gives alone, in batched decode steps', async () => {
    const info = await h.ready;
    expect(info).toMatchObject({ arch, vocab: V, maxBatch: 8 });
    const reqs = requests();
    // request 6 stops at an id it generates alone (eos → finish_reason 'stop')
    const alone0 = reqs.map((r) => generate(model, r.prompt, r.o));
    const stopAt = alone0[6].ids[reqs[6].prompt.length + 4];
    reqs[6].o = { ...reqs[6].o, stopAtEos: true, eosTokenIds: [stopAt] };
    const alone = reqs.map((r) => generate(model, r.prompt, r.o));
    expect(alone[6].finishReason).toBe('eos');

    const got = await Promise.all(reqs.map((r) => collect(h.generate(r.prompt, r.o))));
    got.forEach((g, i) => {
      expect(g.error, `request ${i}`).toBeNull();
      expect([...reqs[i].prompt, ...g.ids], `request ${i}`).toEqual(alone[i].ids);
      expectDone(g.done, reqs[i].prompt.length, alone[i].newTokens, alone[i].finishReason === 'eos' ? 'stop' : 'length');
    });
    const stats = await h.stats();
    expect(stats.maxBatch).toBeGreaterThan(1); // batched steps happened
    expect(Math.max(...got.map((g) => g.done!.batch.max_batch))).toBe(stats.maxBatch);
    expect(stats.prefills).toBe(8);
    // one decode step per token after the first, shared: far fewer forwards than tokens
    const tokens = got.reduce((s, g) => s + g.ids.length, 0);
    expect(stats.tokens).toBe(tokens);
    expect(stats.steps).toBeLessThan(tokens - 8);
    expect(stats).toMatchObject({ slots: 8, running: 0, queued: 0 });
  });

  it('prompts of one length prefill in one forward, each giving the ids it gives alone', async () => {
    // six prompts of 9 tokens and two of 4: three prefill forwards (the two lengths, and one arriving later)
    const reqs = Array.from({ length: 8 }, (_, i) => ({
      prompt: Array.from({ length: i < 6 ? 9 : 4 }, (_, j) => (j * 31 + i * 17 + 3) % V),
      o: (i % 2 ? { maxNewTokens: 9, temperature: 1.1, topK: 40, seed: 7 + i } : { maxNewTokens: 8 + i, greedy: true, stopAtEos: false }) as SessionOptions,
    }));
    const alone = reqs.map((r) => generate(model, r.prompt, r.o));
    const before = await h.stats();
    const got = await Promise.all(reqs.map((r) => collect(h.generate(r.prompt, r.o))));
    got.forEach((g, i) => {
      expect(g.error, `request ${i}`).toBeNull();
      expect([...reqs[i].prompt, ...g.ids], `request ${i}`).toEqual(alone[i].ids);
      expect(g.done!.timings.prompt_n).toBe(reqs[i].prompt.length);
    });
    const after = await h.stats();
    expect(after.prefills - before.prefills).toBeLessThan(8);
  });

  it('a bad request gives an error event; the other sessions go on', async () => {
    const good = { prompt: [3, 1, 4, 1, 5], o: { maxNewTokens: 20, greedy: true, stopAtEos: false } };
    const want = generate(model, good.prompt, good.o).ids;
    const [a, empty, vocab, b, badK] = await Promise.all([
      collect(h.generate(good.prompt, good.o)),
      collect(h.generate([], { maxNewTokens: 4 })),
      collect(h.generate([1, 2, V + 7], { maxNewTokens: 4 })),
      collect(h.generate(good.prompt, good.o)),
      collect(h.generate([1, 2], { maxNewTokens: 4, sub: { topK: 99 } })),
    ]);
    expect(empty.error).toMatch(/the prompt is empty/);
    expect(vocab.error).toMatch(new RegExp(`token id ${V + 7} is outside the vocabulary \\[0, ${V}\\)`));
    expect(badK.error).toMatch(/sub-model top-k 99/);
    for (const bad of [empty, vocab, badK]) { expect(bad.done).toBeNull(); expect(bad.ids).toEqual([]); }
    expect([...good.prompt, ...a.ids]).toEqual(want);
    expect([...good.prompt, ...b.ids]).toEqual(want);
    expect(a.done!.batch.max_batch).toBe(2);
  });
});

describe('sessions through the worker: slots, cancelling, sub-models, text, loading', () => {
  const dir = path.join(ROOT, 'qwen3_moe');
  const handles: ModelHandle[] = [];
  const open = (d: string, o?: Parameters<typeof openModel>[1]) => { const h = openModel(d, o); handles.push(h); return h; };
  afterAll(() => Promise.all(handles.map((h) => h.close())));

  it('cancelling one mid-stream frees its slot: with 2 slots the third request starts only then, and finishes', async () => {
    const h = open(dir, { maxBatch: 2 });
    const model = MoeModel.load(dir);
    const long: SessionOptions = { maxNewTokens: 200, greedy: true, stopAtEos: false };
    const short: SessionOptions = { maxNewTokens: 6, temperature: 1, seed: 7 };
    const ac = new AbortController();
    let cancelledAt = -1;
    const pa = collect(h.generate([1, 2, 3], long, ac.signal), (n) => { if (n === 3) { cancelledAt = ++clock; ac.abort(); } });
    const pb = collect(h.generate([4, 5, 6, 7], long));
    const pc = collect(h.generate([8, 9], short));
    const [a, b, c] = await Promise.all([pa, pb, pc]);
    expect(a.done!.finish_reason).toBe('cancelled');
    expect(a.ids.length).toBeGreaterThanOrEqual(3);
    expect(a.ids.length).toBeLessThan(200);
    expect(a.done!.usage.completion_tokens).toBe(a.ids.length);
    expect(c.firstAt).toBeGreaterThan(cancelledAt); // waited for a slot
    expect(c.endAt).toBeLessThan(b.endAt); // ... which the cancel freed, not the end of b
    expect(c.done!.timings.queue_ms).toBeGreaterThan(0);
    expect([8, 9, ...c.ids]).toEqual(generate(model, [8, 9], short).ids);
    expect([4, 5, 6, 7, ...b.ids]).toEqual(generate(model, [4, 5, 6, 7], long).ids);
    expectDone(b.done, 4, 200, 'length');
    const stats = await h.stats();
    expect(stats.maxBatch).toBe(2);
    expect(stats).toMatchObject({ running: 0, queued: 0 });
  });

  it('leaving the loop cancels too; an aborted signal cancels before the start', async () => {
    const h = open(dir, { maxBatch: 1 });
    for await (const ev of h.generate([1, 2, 3], { maxNewTokens: 200, greedy: true, stopAtEos: false })) if (ev.type === 'token' && ev.index === 1) break;
    const ac = new AbortController();
    ac.abort();
    const pre = await collect(h.generate([1, 2, 3], { maxNewTokens: 5 }, ac.signal));
    expect(pre.ids).toEqual([]);
    expect(pre.done).toMatchObject({ finish_reason: 'cancelled', usage: { prompt_tokens: 3, completion_tokens: 0, total_tokens: 3 }, timings: { prompt_ms: 0, predicted_n: 0 } });
    const next = await collect(h.generate([5, 6], { maxNewTokens: 5, greedy: true, stopAtEos: false }));
    expect(next.ids.length).toBe(5);
    expect(await h.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  it('sequences with different sub-models never share a forward, and each gives its alone ids', async () => {
    const h = open(dir);
    const model = MoeModel.load(dir);
    const mask = Uint8Array.from({ length: 8 }, (_, e) => (e < 4 ? 1 : 0));
    const subs = [undefined, { topK: 1 }, undefined, { topK: 1 }, { layers: [0], experts: [mask] }];
    const reqs = subs.map((sub, i) => ({ prompt: [7 + i, 3, 9 + 2 * i], o: { maxNewTokens: 10, greedy: true, stopAtEos: false, sub } }));
    const got = await Promise.all(reqs.map((r) => collect(h.generate(r.prompt, r.o))));
    got.forEach((g, i) => expect([...reqs[i].prompt, ...g.ids], `request ${i}`).toEqual(generate(model, reqs[i].prompt, reqs[i].o).ids));
    expect(got.map((g) => g.done!.batch.max_batch)).toEqual([2, 2, 2, 2, 1]);
  });

  it('token events carry text and done the whole completion, with a tokenizer', async () => {
    const ex = path.resolve(__dirname, '../examples/tiny-moe');
    const h = open(ex);
    expect((await h.ready).tokenizer).toBe(true);
    const tok = loadTokenizer(ex)!;
    const r = await collect(h.generate(tok.encode('The licenses'), { maxNewTokens: 12, greedy: true, stopAtEos: false }));
    expect(r.texts.length).toBe(r.ids.length);
    expect(r.done!.text).toBe(tok.decode(r.ids));
    expect(r.done!.text!.startsWith(r.texts.join(''))).toBe(true);
  });

  it('loading streams progress events, then ready', async () => {
    const h = open(dir);
    const seen: string[] = [];
    for await (const ev of h.events) if (ev.type === 'progress') seen.push(ev.event.status);
    expect(seen[0]).toBe('initiate');
    expect(seen.slice(-2)).toEqual(['done', 'ready']);
    const layers = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).num_hidden_layers;
    expect(seen.filter((s) => s === 'progress').length).toBe(layers + 1); // the embeddings, then every layer
    expect((await h.ready).loadSeconds).toBeGreaterThan(0);
  });

  it('a bad model directory rejects ready with the loading error; sessions get it as an error event', async () => {
    const h = open(path.join(ROOT, 'no-such-arch'));
    await expect(h.ready).rejects.toThrow(/no-such-arch: no such model directory or config file/);
    const evs: string[] = [];
    for await (const ev of h.events) evs.push(ev.type === 'error' ? `error: ${ev.message}` : ev.type);
    expect(evs).toEqual([expect.stringMatching(/^error: .*no such model directory/)]);
    const r = await collect(h.generate([1, 2], { maxNewTokens: 2 }));
    expect(r.error).toMatch(/no such model directory/);
    await expect(h.stats()).rejects.toThrow(/no such model directory/);
  });

  it('close cancels the sessions in flight; after it, sessions get an error event', async () => {
    const h = open(dir);
    await h.ready;
    let closing: Promise<void> | null = null;
    const inFlight = await collect(h.generate([1, 2], { maxNewTokens: 200, greedy: true, stopAtEos: false }), (n) => { if (n === 2) closing = h.close(); });
    await closing;
    expect(inFlight.done!.finish_reason).toBe('cancelled');
    expect(inFlight.ids.length).toBeLessThan(200);
    const r = await collect(h.generate([1, 2], { maxNewTokens: 2 }));
    expect(r.error).toMatch(/the model was closed/);
  });
});

describe('the scheduler in-process', () => {
  it('gives a bad request an error event at once and the sessions of one sub-model a shared forward', async () => {
    const model = MoeModel.load(path.join(ROOT, 'mixtral'));
    const s = new Scheduler(model, { maxBatch: 3 });
    const o: SessionOptions = { maxNewTokens: 8, greedy: true, stopAtEos: false };
    const [a, bad, b, c] = await Promise.all([collect(s.submit([1, 2], o)), collect(s.submit([-1], o)), collect(s.submit([3, 4, 5], o)), collect(s.submit([6], o))]);
    expect(bad.error).toMatch(/token id -1 is outside the vocabulary/);
    for (const [r, p] of [[a, [1, 2]], [b, [3, 4, 5]], [c, [6]]] as const) expect([...p, ...r.ids]).toEqual(generate(model, [...p], o).ids);
    expect(s.stats()).toMatchObject({ maxBatch: 3, steps: 7, prefills: 3, tokens: 24 });
    expect(() => new Scheduler(model, { maxBatch: 0 })).toThrow(/max batch must be a positive integer/);
  });
});
