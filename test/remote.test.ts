/**
 * The model handle (src/runtime/remote.ts's connectModel) over a real peer of its thread protocol in this thread:
 * src/runtime/host.ts's serveModel, the code the worker thread runs, on one end of a MessageChannel. Messages are
 * structured-cloned across the channel as across a thread (a function in the options cannot cross), arrive
 * asynchronously, and queue until the host listens. What comes through the handle is held to the model in-process
 * (generate(), the Scheduler's own events, MoeModel.load's progress); the thread's faults (an error, an exit, an
 * unreadable message) are raised on the stand-in as a Worker raises them. test/sessions.test.ts runs the same handle
 * over the compiled worker.
 */
import { EventEmitter, getEventListeners } from 'node:events';
import * as path from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { MoeModel } from '../src/models/model.js';
import type { GenEvent, LoadEvent, SessionOptions } from '../src/runtime/events.js';
import { generate } from '../src/runtime/generate.js';
import { serveModel, type FromWorker, type ToWorker, type WorkerInit } from '../src/runtime/host.js';
import { connectModel, openModel, type ModelHandle, type ModelThread } from '../src/runtime/remote.js';
import { Scheduler } from '../src/runtime/scheduler.js';
import type { ProgressEvent } from '../src/util/progress.js';

const DIR = path.resolve(__dirname, '../fixtures/hf-tiny-moe/qwen3_moe');
const TOK_DIR = path.resolve(__dirname, '../examples/tiny-moe');
const V = 512;

/**
 * A Worker's stand-in: the host serves on port1 (started on the next turn, as a thread starts), the handle talks to
 * port2. It records what the handle sent and whether it holds the process (ref), and exits as a worker does: when the
 * host closes its port (code 0) or on terminate (code 1).
 */
class InProcessThread extends EventEmitter implements ModelThread {
  readonly sent: ToWorker[] = [];
  refed = true; // a new Worker holds the process
  exitCode: number | null = null;
  terminations = 0;
  private readonly port: MessagePort;
  private stop: () => void = () => {};

  constructor(init: WorkerInit, opts: { hold?: (m: ToWorker) => boolean; keepOpen?: boolean } = {}) {
    super();
    const { port1, port2 } = new MessageChannel();
    this.port = port2;
    port2.on('message', (m: FromWorker) => this.emit('message', m));
    port2.on('close', () => void this.exit(0));
    // `hold`: messages the host does not get (a host busy in a forward that does not end)
    // `keepOpen`: a thread that answers close but does not end by itself
    const hold = opts.hold ?? (() => false);
    const host = { postMessage: port1.postMessage.bind(port1), close: opts.keepOpen ? () => {} : port1.close.bind(port1), on: (ev: 'message', f: (m: ToWorker) => void) => port1.on(ev, (m: ToWorker) => { if (!hold(m)) f(m); }) };
    setImmediate(() => { this.stop = serveModel(host as MessagePort, init); });
  }

  postMessage(m: ToWorker): void {
    this.port.postMessage(m); // throws as Worker.postMessage does for what cannot be cloned
    this.sent.push(m);
  }
  ref(): void { this.refed = true; }
  unref(): void { this.refed = false; }
  async terminate(): Promise<number> {
    this.terminations++;
    await this.exit(1);
    return this.exitCode!;
  }
  /** the thread's end: the host stops, the port closes, 'exit' once, on a later turn (as a Worker emits it) */
  exit(code: number): Promise<void> {
    if (this.exitCode !== null) return Promise.resolve();
    this.exitCode = code;
    this.stop();
    this.port.close();
    return new Promise((res) => setImmediate(() => { this.emit('exit', code); res(); }));
  }
}

interface Result { ids: number[]; texts: string[]; events: GenEvent[]; error: string | null }

async function collect(events: AsyncIterable<GenEvent>, onToken?: (n: number) => void): Promise<Result> {
  const r: Result = { ids: [], texts: [], events: [], error: null };
  for await (const ev of events) {
    r.events.push(ev);
    if (ev.type === 'token') {
      expect(ev.index).toBe(r.ids.length);
      r.ids.push(ev.id);
      if (ev.text !== undefined) r.texts.push(ev.text);
      onToken?.(r.ids.length);
    } else if (ev.type === 'error') r.error = ev.message;
  }
  // exactly one end, last
  expect(r.events.filter((e) => e.type !== 'token').length).toBe(1);
  expect(r.events.at(-1)!.type).not.toBe('token');
  return r;
}

const doneOf = (r: Result) => { const d = r.events.at(-1)!; expect(d.type).toBe('done'); return d as Extract<GenEvent, { type: 'done' }>; };
/** an event without its clock readings, to compare with the in-process scheduler's */
const untimed = (e: GenEvent) => (e.type === 'done' ? { ...e, timings: { prompt_n: e.timings.prompt_n, predicted_n: e.timings.predicted_n } } : e);
const tick = () => new Promise<void>((r) => setImmediate(r));

const model = MoeModel.load(DIR);
const opened: { h: ModelHandle; t: InProcessThread }[] = [];
function open(init: Partial<WorkerInit> = {}, opts?: { hold?: (m: ToWorker) => boolean; keepOpen?: boolean }) {
  const t = new InProcessThread({ dir: DIR, tokenizer: false, ...init }, opts);
  const h = connectModel(t);
  opened.push({ h, t });
  return { h, t };
}
afterAll(() => Promise.all(opened.map(({ h }) => h.close())));

describe('the model handle over an in-process host', () => {
  it('ready carries what the model is; the progress log is MoeModel.load\'s, replayed for every iteration', async () => {
    const t0 = performance.now();
    const { h, t } = open({ maxBatch: 3 });
    expect(t.refed).toBe(true); // loading holds the process
    let isReady = false, seenBeforeReady = 0;
    void h.ready.then(() => { isReady = true; });
    const early = (async () => { const l: LoadEvent[] = []; for await (const ev of h.events) { if (!isReady) seenBeforeReady++; l.push(ev); } return l; })();
    const info = await h.ready;
    const wall = (performance.now() - t0) / 1000;
    expect(t.refed).toBe(false); // loaded and idle: a script that forgets close() exits
    const d = model.desc;
    expect(info).toMatchObject({ dir: DIR, arch: d.arch, hfClass: d.hfClass, vocab: V, maxPositions: d.maxPositions, eosTokenIds: d.eosTokenIds, maxBatch: 3, tokenizer: false });
    expect(info.desc).toEqual(JSON.parse(JSON.stringify(d)));
    expect(info.loadSeconds).toBeGreaterThan(0);
    expect(info.loadSeconds).toBeLessThanOrEqual(wall);
    const want: ProgressEvent[] = [];
    MoeModel.load(DIR, { onProgress: (e) => want.push(e) });
    const strip = (e: ProgressEvent) => (e.status === 'ready' ? { ...e, seconds: 0 } : e);
    const log = await early;
    expect(seenBeforeReady).toBeGreaterThan(0); // the progress streams while the model loads
    expect(log.map((e) => (e.type === 'progress' ? strip(e.event) : e))).toEqual(want.map(strip));
    for (let k = 0; k < 2; k++) { // after the load, every iteration replays the whole log and ends
      const again: LoadEvent[] = [];
      for await (const ev of h.events) again.push(ev);
      expect(again).toEqual(log);
    }
  });

  it('sessions give the ids they give alone; plain tokens, text, routes and done cross unchanged', async () => {
    const { h, t } = open();
    const reqs: { prompt: number[]; o: SessionOptions }[] = [
      { prompt: [3, 1, 4, 1, 5], o: { maxNewTokens: 9, greedy: true, stopAtEos: false } },
      { prompt: [9, 2], o: { maxNewTokens: 7, temperature: 1.2, topK: 40, seed: 11 } },
      { prompt: [7, 7, 8], o: { maxNewTokens: 5, greedy: true, stopAtEos: false, traceRoutes: true } },
    ];
    const ps = reqs.map((r) => collect(h.generate(r.prompt, r.o)));
    expect(t.refed).toBe(true); // sessions hold the process
    const got = await Promise.all(ps);
    expect(t.refed).toBe(false);
    // the same requests on the Scheduler in this thread: the same events, but for the clock
    const s = new Scheduler(model, { maxBatch: 8 });
    const want = await Promise.all(reqs.map((r) => collect(s.submit(r.prompt, r.o))));
    got.forEach((g, i) => {
      expect([...reqs[i].prompt, ...g.ids], `request ${i}`).toEqual(generate(model, reqs[i].prompt, reqs[i].o).ids);
      expect(g.events.map(untimed), `request ${i}`).toEqual(want[i].events.map(untimed));
    });
    expect(got[2].events.filter((e) => e.type === 'token').every((e) => e.type === 'token' && e.routes!.length > 0)).toBe(true);
    expect(doneOf(got[0]).usage).toEqual({ prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 });
    expect(doneOf(got[0]).batch.max_batch).toBe(3); // the three shared decode steps
    const stats = await h.stats();
    expect(stats).toMatchObject({ slots: 8, running: 0, queued: 0, prefills: s.stats().prefills, tokens: 9 + 7 + 5 });
    expect(stats.expertLoad).toEqual(s.stats().expertLoad);
    expect(t.refed).toBe(false); // the stats call is over
  });

  it('text events with a tokenizer; a stats call holds the process until it is answered', async () => {
    const { h, t } = open({ dir: TOK_DIR, tokenizer: true });
    expect((await h.ready).tokenizer).toBe(true);
    const tok = loadTokenizer(TOK_DIR)!;
    const r = await collect(h.generate(tok.encode('The licenses'), { maxNewTokens: 10, greedy: true, stopAtEos: false }));
    expect(r.texts.length).toBe(r.ids.length);
    expect(doneOf(r).text).toBe(tok.decode(r.ids));
    const p = h.stats();
    expect(t.refed).toBe(true);
    expect((await p).tokens).toBe(10);
    expect(t.refed).toBe(false);
    expect(t.sent.filter((m) => m.type === 'stats').length).toBe(1);
  });

  it('the ids of concurrent sessions interleave in one message per step and still reach their own session', async () => {
    const { h, t } = open();
    const steps: number[] = [];
    t.on('message', (m: FromWorker) => { if (m.type === 'events') steps.push(m.tokens.length / 3); });
    const prompts = [[1], [2, 3], [4, 5, 6], [7, 8, 9, 10]];
    const o: SessionOptions = { maxNewTokens: 6, greedy: true, stopAtEos: false };
    const got = await Promise.all(prompts.map((p) => collect(h.generate(p, o))));
    got.forEach((g, i) => expect([...prompts[i], ...g.ids]).toEqual(generate(model, prompts[i], o).ids));
    expect(steps.reduce((a, b) => a + b, 0)).toBe(24);
    expect(Math.max(...steps)).toBe(4); // a decode step's four tokens, one message
    expect(t.sent.filter((m) => m.type === 'generate').map((m) => m.type === 'generate' && m.id)).toEqual([1, 2, 3, 4]);
  });

  it('an abort mid-stream, leaving the loop and an aborted signal cancel; the thread frees the slot', async () => {
    const { h, t } = open({ maxBatch: 1 });
    const long: SessionOptions = { maxNewTokens: 200, greedy: true, stopAtEos: false };
    const ac = new AbortController();
    const a = await collect(h.generate([1, 2, 3], long, ac.signal), (n) => { if (n === 3) ac.abort(); });
    expect(doneOf(a).finish_reason).toBe('cancelled');
    expect(a.ids.length).toBeGreaterThanOrEqual(3);
    expect(a.ids.length).toBeLessThan(200);
    expect(doneOf(a).usage.completion_tokens).toBe(a.ids.length);
    expect(t.sent.filter((m) => m.type === 'cancel')).toEqual([{ type: 'cancel', id: 1 }]);
    ac.abort(); // again, after the end: nothing more is sent
    for await (const ev of h.generate([4, 5], long)) if (ev.type === 'token' && ev.index === 1) break;
    expect(t.sent.filter((m) => m.type === 'cancel')).toEqual([{ type: 'cancel', id: 1 }, { type: 'cancel', id: 2 }]);
    expect(t.refed).toBe(true); // the session left still waits for the thread's done (dropped when it comes)
    const pre = new AbortController();
    pre.abort();
    const c = await collect(h.generate([1, 2, 3], { maxNewTokens: 5 }, pre.signal));
    expect(c.ids).toEqual([]);
    expect(doneOf(c)).toMatchObject({ finish_reason: 'cancelled', usage: { prompt_tokens: 3, completion_tokens: 0, total_tokens: 3 } });
    // with one slot, this one runs only once the thread has freed the cancelled ones
    const next = await collect(h.generate([5, 6], { maxNewTokens: 5, greedy: true, stopAtEos: false }));
    expect([5, 6, ...next.ids]).toEqual(generate(model, [5, 6], { maxNewTokens: 5, greedy: true, stopAtEos: false }).ids);
    expect(await h.stats()).toMatchObject({ running: 0, queued: 0 });
    expect(t.refed).toBe(false);
  });

  it('a request that cannot cross the thread, or that the scheduler refuses, ends only itself', async () => {
    const { h, t } = open();
    await h.ready;
    const bad = await collect(h.generate([1, 2], { maxNewTokens: 3, onToken: () => {} } as unknown as SessionOptions));
    expect(bad.error).toMatch(/^the request cannot be sent to the model's thread: .*could not be cloned/);
    expect(t.sent.filter((m) => m.type === 'generate')).toEqual([]);
    expect(t.refed).toBe(false);
    const [empty, vocab] = await Promise.all([collect(h.generate([], { maxNewTokens: 4 })), collect(h.generate([1, V + 3], { maxNewTokens: 4 }))]);
    expect(empty.error).toMatch(/the prompt is empty/);
    expect(vocab.error).toMatch(new RegExp(`token id ${V + 3} is outside the vocabulary`));
    const ok = await collect(h.generate([1, 2], { maxNewTokens: 3, greedy: true, stopAtEos: false }));
    expect([1, 2, ...ok.ids]).toEqual(generate(model, [1, 2], { maxNewTokens: 3, greedy: true, stopAtEos: false }).ids);
  });

  it('a cancelled text session ends at once; the listener on the signal goes when the abort fires or the session ends', async () => {
    const { h, t } = open({ dir: TOK_DIR, tokenizer: true });
    await h.ready;
    const ac = new AbortController();
    const long: SessionOptions = { maxNewTokens: 200, greedy: true, stopAtEos: false };
    let after = -1;
    const r = await collect(h.generate([5, 6, 7], long, ac.signal), (n) => { if (n === 3) { ac.abort(); after = getEventListeners(ac.signal, 'abort').length; } });
    expect(after).toBe(0); // once: the abort took it
    expect(doneOf(r).finish_reason).toBe('cancelled');
    expect(r.ids.length).toBeLessThan(200);
    expect(r.texts.length).toBe(r.ids.length);
    const ac2 = new AbortController();
    const ended = await collect(h.generate([5, 6], { maxNewTokens: 3, greedy: true, stopAtEos: false }, ac2.signal));
    expect(doneOf(ended).finish_reason).toBe('length');
    expect(getEventListeners(ac2.signal, 'abort').length).toBe(0); // the session's end removed it
    expect(t.sent.filter((m) => m.type === 'cancel').length).toBe(1);
  });

  it('tokenizer: false gives no text even where the directory has a tokenizer', async () => {
    const { h } = open({ dir: TOK_DIR, tokenizer: false });
    expect((await h.ready).tokenizer).toBe(false);
    const r = await collect(h.generate([5, 6, 7], { maxNewTokens: 4, greedy: true, stopAtEos: false }));
    expect(r.texts).toEqual([]);
    expect(doneOf(r).text).toBeUndefined();
  });

  it('replies for no session, or for a stats call the thread could not answer, are handled', async () => {
    const { h, t } = open({}, { hold: (m) => m.type === 'stats' });
    await h.ready;
    // a finished session's stray events, a stats reply nobody waits for: dropped, nothing thrown
    expect(() => t.emit('message', { type: 'events', tokens: Int32Array.from([99, 5, 0]), list: [{ id: 99, event: { type: 'token', id: 5, index: 0, text: 'x' } }, { id: 98, event: { type: 'error', message: 'late' } }] })).not.toThrow();
    expect(() => t.emit('message', { type: 'stats', id: 1234, stats: null })).not.toThrow();
    expect(() => t.emit('message', { type: 'stats', id: 1235, stats: { slots: 1 } })).not.toThrow();
    const p = h.stats();
    const id = (t.sent.at(-1) as { id: number }).id;
    t.emit('message', { type: 'stats', id, stats: null }); // a thread with no model
    await expect(p).rejects.toThrow(/^the model is not loaded$/);
    expect(t.refed).toBe(false);
  });

  it('openModel starts the compiled worker with the options', async () => {
    const h = openModel(DIR, { maxBatch: 2, tokenizer: false, threads: 1 });
    opened.push({ h, t: null as unknown as InProcessThread });
    const info = await h.ready;
    expect(info).toMatchObject({ dir: DIR, maxBatch: 2, tokenizer: false, vocab: V });
    const o: SessionOptions = { maxNewTokens: 4, greedy: true, stopAtEos: false };
    const r = await collect(h.generate([1, 2], o));
    expect([1, 2, ...r.ids]).toEqual(generate(model, [1, 2], o).ids);
    await h.close();
  }, 60_000);
});

describe('the thread going away', () => {
  it('a bad model directory: ready rejects, events end with the error, sessions and stats get it; the thread is ended', async () => {
    const { h, t } = open({ dir: path.join(DIR, '..', 'no-such-arch') });
    const stats = h.stats(); // asked while loading: answered by the failure
    await expect(h.ready).rejects.toThrow(/no-such-arch: no such model directory or config file/);
    await expect(stats).rejects.toThrow(/no such model directory/);
    const evs: LoadEvent[] = [];
    for await (const ev of h.events) evs.push(ev);
    expect(evs).toEqual([{ type: 'error', message: expect.stringMatching(/no such model directory/) }]);
    const r = await collect(h.generate([1, 2], { maxNewTokens: 2 }));
    expect(r.error).toMatch(/no such model directory/);
    await expect(h.stats()).rejects.toThrow(/no such model directory/);
    expect(t.terminations).toBe(1);
    expect(t.refed).toBe(false);
  });

  it.each([
    ['error', new Error('boom'), /^the model worker failed: boom$/],
    ['messageerror', new Error('bad clone'), /^the model worker sent an unreadable message: bad clone$/],
    ['exit', 3, /^the model worker exited \(code 3\)$/],
  ] as const)('the thread raising %s ends the open sessions and the stats calls with why', async (ev, arg, why) => {
    const { h, t } = open({}, { hold: (m) => m.type === 'stats' }); // a stats call the host never answers
    await h.ready;
    let stats: Promise<unknown> | null = null;
    const r = await collect(h.generate([1, 2], { maxNewTokens: 200, greedy: true, stopAtEos: false }), (n) => {
      if (n === 2) { stats = h.stats(); stats.catch(() => {}); t.emit(ev, arg); }
    });
    expect(r.error).toMatch(why);
    expect(r.ids.length).toBe(2);
    await expect(stats).rejects.toThrow(why);
    expect(t.refed).toBe(false);
    const after = await collect(h.generate([1], { maxNewTokens: 1 }));
    expect(after.error).toMatch(why);
    await expect(h.stats()).rejects.toThrow(why);
    t.emit('error', new Error('later')); // only the first fault counts
    expect((await collect(h.generate([1], { maxNewTokens: 1 }))).error).toMatch(why);
  });

  it('a fault while loading rejects ready and ends the load events with it', async () => {
    const { h, t } = open();
    const evs = (async () => { const l: LoadEvent[] = []; for await (const ev of h.events) l.push(ev); return l; })();
    t.emit('error', new Error('out of memory'));
    await expect(h.ready).rejects.toThrow(/^the model worker failed: out of memory$/);
    expect((await evs).at(-1)).toEqual({ type: 'error', message: 'the model worker failed: out of memory' });
    expect(t.refed).toBe(false);
  });

  it('close cancels the sessions in flight, waits for the thread to say closed, then ends it', async () => {
    const { h, t } = open();
    await h.ready;
    let closing: Promise<void> | null = null;
    const inFlight = await collect(h.generate([1, 2], { maxNewTokens: 200, greedy: true, stopAtEos: false }), (n) => { if (n === 2) closing = h.close(); });
    expect(h.close()).toBe(closing); // one close
    await closing;
    expect(doneOf(inFlight).finish_reason).toBe('cancelled'); // the thread's cancel, not the handle's
    expect(inFlight.ids.length).toBeLessThan(200);
    expect(t.sent.filter((m) => m.type === 'close').length).toBe(1);
    expect(t.terminations).toBe(1);
    const r = await collect(h.generate([1, 2], { maxNewTokens: 2 }));
    expect(r.error).toBe('the model was closed');
    await expect(h.stats()).rejects.toThrow(/^the model was closed$/);
  });

  it('a fault after the load leaves the load log as it was; close then sends nothing and ends the thread', async () => {
    const { h, t } = open();
    await h.ready;
    const before: LoadEvent[] = [];
    for await (const ev of h.events) before.push(ev);
    t.emit('error', new Error('boom'));
    const after: LoadEvent[] = [];
    for await (const ev of h.events) after.push(ev);
    expect(after).toEqual(before);
    expect(after.every((e) => e.type === 'progress')).toBe(true);
    await h.close();
    expect(t.sent.filter((m) => m.type === 'close')).toEqual([]);
    expect(t.terminations).toBe(1);
  });

  it('close ends as soon as the thread says closed, even if it lingers; a thread that never answers is ended after 5 s', async () => {
    const { h, t } = open({}, { keepOpen: true });
    await h.ready;
    const t0 = performance.now();
    await h.close();
    expect(performance.now() - t0).toBeLessThan(2000); // the closed message, not the timer
    expect(t.terminations).toBe(1);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const s = open({}, { hold: (m) => m.type === 'close' });
      await s.h.ready;
      let done = false;
      const closing = s.h.close().then(() => { done = true; });
      await tick(); await tick();
      expect(s.t.sent.map((m) => m.type)).toEqual(['close']);
      vi.advanceTimersByTime(4900);
      await tick();
      expect(done).toBe(false);
      expect(s.t.terminations).toBe(0);
      vi.advanceTimersByTime(200);
      await closing;
      expect(s.t.terminations).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('close while loading ends the thread without a close message; ready rejects', async () => {
    const { h, t } = open();
    const sessionDuring = h.generate([1, 2], { maxNewTokens: 2 });
    const closed = h.close();
    const r = await collect(h.generate([1], { maxNewTokens: 1 })); // closing: refused at once
    expect(r.error).toBe('the model was closed');
    await closed;
    await expect(h.ready).rejects.toThrow(/^the model was closed$/);
    expect((await collect(sessionDuring)).error).toBe('the model was closed');
    expect(t.sent.map((m) => m.type)).toEqual(['generate']);
    expect(t.terminations).toBe(1);
    expect(t.exitCode).toBe(1);
  });
});

describe('the host on its own port', () => {
  /** a raw MessageChannel to serveModel: what it posts, in order */
  function host(init: WorkerInit) {
    const { port1, port2 } = new MessageChannel();
    const got: FromWorker[] = [];
    const wake: (() => void)[] = [];
    port2.on('message', (m: FromWorker) => { got.push(m); wake.splice(0).forEach((w) => w()); });
    const stop = serveModel(port1, init);
    const until = async (f: (m: FromWorker) => boolean) => { while (!got.some(f)) await new Promise<void>((w) => wake.push(w)); return got.find(f)!; };
    return { send: (m: ToWorker) => port2.postMessage(m), got, until, stop, close: () => port2.close() };
  }

  it('a failed load answers stats with null and sessions with an error event, and closes when asked', async () => {
    const s = host({ dir: path.join(DIR, 'nope') });
    s.send({ type: 'stats', id: 4 });
    s.send({ type: 'generate', id: 5, prompt: [1], opts: { maxNewTokens: 1 } });
    s.send({ type: 'close' });
    await s.until((m) => m.type === 'closed');
    expect(s.got.map((m) => m.type)).toEqual(['load-error', 'stats', 'events', 'closed']);
    expect(s.got[0]).toEqual({ type: 'load-error', message: expect.stringMatching(/nope: no such model directory/) });
    expect(s.got[1]).toEqual({ type: 'stats', id: 4, stats: null });
    expect(s.got[2]).toEqual({ type: 'events', tokens: new Int32Array(0), list: [{ id: 5, event: { type: 'error', message: 'the model is not loaded' } }] });
  });

  it('a step\'s plain tokens go packed as (session, id, index); cancel and stop end the sessions', async () => {
    const s = host({ dir: DIR, tokenizer: false });
    const o: SessionOptions = { maxNewTokens: 300, greedy: true, stopAtEos: false };
    s.send({ type: 'generate', id: 7, prompt: [1, 2], opts: o });
    s.send({ type: 'generate', id: 9, prompt: [3], opts: o });
    s.send({ type: 'generate', id: 11, prompt: [4], opts: o });
    const first = await s.until((m) => m.type === 'events' && m.tokens.length > 0);
    const types = s.got.map((m) => m.type);
    expect(types.indexOf('ready')).toBeGreaterThan(0); // after the progress events
    expect(types.indexOf('ready')).toBeLessThan(s.got.indexOf(first));
    if (first.type !== 'events') throw new Error('unreachable');
    const ids = generate(model, [1, 2], o).ids;
    expect(Array.from(first.tokens.subarray(0, 3))).toEqual([7, ids[2], 0]);
    s.send({ type: 'cancel', id: 9 });
    s.send({ type: 'cancel', id: 9 }); // twice: nothing more
    s.send({ type: 'cancel', id: 123 }); // unknown: nothing
    const ends = (id: number) => (m: FromWorker) => m.type === 'events' && m.list.some((e) => e.id === id && e.event.type === 'done');
    await s.until(ends(9));
    s.stop();
    await s.until(ends(7));
    await s.until(ends(11));
    const evs = s.got.flatMap((m) => (m.type === 'events' ? m.list : []));
    expect(evs.map((e) => [e.id, e.event.type === 'done' && e.event.finish_reason])).toEqual([[9, 'cancelled'], [7, 'cancelled'], [11, 'cancelled']]);
    // session 7's tokens, in order, are its greedy ids
    const mine = s.got.flatMap((m) => (m.type === 'events' ? Array.from({ length: m.tokens.length / 3 }, (_, i) => Array.from(m.tokens.subarray(3 * i, 3 * i + 3))) : [])).filter(([id]) => id === 7);
    expect(mine.map(([, , index]) => index)).toEqual(mine.map((_, i) => i));
    expect(mine.map(([, tok]) => tok)).toEqual(ids.slice(2, 2 + mine.length));
    s.close();
  });
});
