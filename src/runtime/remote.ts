/**
 * A model on its own thread, seen from the main thread: openModel starts src/runtime/worker.ts (which
 * loads the model and runs the scheduler) and returns a handle whose sessions stream the scheduler's
 * events over the worker's port. An AbortSignal crosses the thread as a cancel message. Whatever goes
 * wrong in the worker (a bad model directory, a crash, an exit) rejects `ready` and ends open sessions
 * with an error event: nothing hangs and nothing is left unhandled.
 *
 * The handle keeps the process alive only while it has work (loading, sessions, a stats call): a
 * script that forgets close() still exits. A server keeps itself alive by its listening socket.
 * connectModel holds the handle's logic over any peer of the protocol (src/runtime/host.ts): openModel gives it a
 * Worker; test/remote.test.ts an in-process one.
 */
import { Worker } from 'node:worker_threads';
import { MoekitError } from '../util/errors.js';
import { compiledWorker } from '../util/worker-file.js';
import { Channel } from './channel.js';
import type { GenEvent, LoadEvent, SessionOptions } from './events.js';
import type { SchedulerStats } from './scheduler.js';
import type { FromWorker, ModelInfo, ToWorker, WorkerInit } from './host.js';

export type { ModelInfo } from './host.js';
export type OpenOptions = Omit<WorkerInit, 'dir'>;

export interface ModelHandle {
  /** resolves when the model is loaded; rejects with the loading error's message */
  readonly ready: Promise<ModelInfo>;
  /** loading progress (replayed from the start for every iteration), then an error event if it failed */
  readonly events: AsyncIterable<LoadEvent>;
  /** one session: token* → done | error. Abort `signal` (or leave the loop) to cancel it */
  generate(prompt: number[], opts: SessionOptions, signal?: AbortSignal): AsyncIterable<GenEvent>;
  /** the scheduler's counters (slots, running, queued, steps, largest batch) */
  stats(): Promise<SchedulerStats>;
  /** cancel the open sessions (done 'cancelled') and end the thread */
  close(): Promise<void>;
}

/**
 * The model's thread as the handle sees it: a node:worker_threads Worker running src/runtime/worker.ts, or, in
 * tests, the same protocol's peer (src/runtime/host.ts's serveModel) on a MessageChannel in this thread.
 */
export interface ModelThread {
  postMessage(m: ToWorker): void;
  on(ev: 'message', f: (m: FromWorker) => void): unknown;
  on(ev: 'error' | 'messageerror', f: (e: Error) => void): unknown;
  on(ev: 'exit', f: (code: number) => void): unknown;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
}

export function openModel(dir: string, opts: OpenOptions = {}): ModelHandle {
  const env = opts.threads !== undefined ? { env: { ...process.env, MOEKIT_THREADS: String(opts.threads) } } : {};
  return connectModel(new Worker(compiledWorker(import.meta.url, 'runtime/worker.js'), { workerData: { dir, ...opts } satisfies WorkerInit, ...env }));
}

/** the handle over a model's thread (openModel's, or a test's in-process peer) */
export function connectModel(worker: ModelThread): ModelHandle {
  const send = (m: ToWorker) => worker.postMessage(m);

  // loading: ready, and the progress log every `events` iteration replays
  let loaded: (info: ModelInfo) => void = () => {};
  let failed: (e: Error) => void = () => {};
  const ready = new Promise<ModelInfo>((res, rej) => { loaded = res; failed = rej; });
  ready.catch(() => {}); // a caller that never awaits ready must not see an unhandled rejection
  let loading = true;
  const loadLog: LoadEvent[] = [];
  const loadWake = new Set<() => void>();
  const logLoad = (ev: LoadEvent | null) => {
    if (ev) loadLog.push(ev); else loading = false;
    for (const w of loadWake) w();
    loadWake.clear();
  };

  // sessions and stats calls in flight, by id
  let nextId = 1;
  const sessions = new Map<number, { ch: Channel<GenEvent>; unlisten: () => void }>();
  const statsCalls = new Map<number, { res: (s: SchedulerStats) => void; rej: (e: Error) => void }>();
  let dead: string | null = null; // why the worker is gone
  let closing: Promise<void> | null = null;
  let closedMsg: () => void = () => {};
  const closedSeen = new Promise<void>((res) => { closedMsg = res; });

  /** hold the process open only while there is work */
  const holdIfBusy = () => {
    if (dead === null && (loading || sessions.size > 0 || statsCalls.size > 0)) worker.ref(); else worker.unref();
  };

  const endSession = (id: number, last?: GenEvent) => {
    const s = sessions.get(id);
    if (!s) return;
    sessions.delete(id);
    s.unlisten();
    if (last) s.ch.push(last);
    s.ch.close();
    holdIfBusy();
  };

  /** the worker is gone: everything waiting on it learns why */
  const die = (why: string) => {
    if (dead !== null) return;
    dead = why;
    if (loading) { logLoad({ type: 'error', message: why }); logLoad(null); failed(new MoekitError(why)); }
    for (const id of [...sessions.keys()]) endSession(id, { type: 'error', message: why });
    for (const c of statsCalls.values()) c.rej(new MoekitError(why));
    statsCalls.clear();
    holdIfBusy();
  };

  worker.on('message', (m: FromWorker) => {
    switch (m.type) {
      case 'progress': logLoad({ type: 'progress', event: m.event }); break;
      case 'ready': logLoad(null); loaded(m.info); holdIfBusy(); break;
      case 'load-error': die(m.message); void worker.terminate(); break;
      case 'events':
        for (let i = 0; i < m.tokens.length; i += 3) sessions.get(m.tokens[i])?.ch.push({ type: 'token', id: m.tokens[i + 1], index: m.tokens[i + 2] });
        for (const { id, event } of m.list) {
          if (event.type === 'done' || event.type === 'error') endSession(id, event);
          else sessions.get(id)?.ch.push(event);
        }
        break;
      case 'stats': {
        const c = statsCalls.get(m.id);
        statsCalls.delete(m.id);
        if (m.stats) c?.res(m.stats); else c?.rej(new MoekitError('the model is not loaded'));
        holdIfBusy();
        break;
      }
      case 'closed': closedMsg(); break;
    }
  });
  worker.on('error', (e) => die(`the model worker failed: ${e.message}`));
  worker.on('messageerror', (e) => die(`the model worker sent an unreadable message: ${e.message}`));
  worker.on('exit', (code) => { closedMsg(); die(closing ? 'the model was closed' : `the model worker exited (code ${code})`); });

  return {
    ready,
    events: {
      [Symbol.asyncIterator](): AsyncIterator<LoadEvent, undefined> {
        let i = 0;
        return {
          async next() {
            while (i >= loadLog.length && loading) await new Promise<void>((w) => loadWake.add(w));
            return i < loadLog.length ? { value: loadLog[i++], done: false } : { value: undefined, done: true };
          },
        };
      },
    },

    generate(prompt, opts, signal) {
      const ch = new Channel<GenEvent>();
      if (dead !== null || closing) {
        ch.push({ type: 'error', message: dead ?? 'the model was closed' });
        ch.close();
        return ch;
      }
      const id = nextId++;
      const cancel = () => { if (sessions.has(id)) send({ type: 'cancel', id }); };
      signal?.addEventListener('abort', cancel, { once: true });
      sessions.set(id, { ch, unlisten: () => signal?.removeEventListener('abort', cancel) });
      ch.onReturn = cancel; // the consumer left: cancel; what the worker still sends is dropped
      try {
        send({ type: 'generate', id, prompt, opts });
      } catch (e) { // options that cannot cross a thread (a function, say)
        endSession(id, { type: 'error', message: `the request cannot be sent to the model's thread: ${(e as Error).message}` });
        return ch;
      }
      if (signal?.aborted) cancel();
      holdIfBusy();
      return ch;
    },

    stats() {
      if (dead !== null) return Promise.reject(new MoekitError(dead));
      const id = nextId++;
      const p = new Promise<SchedulerStats>((res, rej) => statsCalls.set(id, { res, rej }));
      send({ type: 'stats', id });
      holdIfBusy();
      return p;
    },

    close() {
      closing ??= (async () => {
        if (dead === null && !loading) {
          send({ type: 'close' });
          const timer = setTimeout(() => closedMsg(), 5000); // a forward that will not end: terminate anyway
          await closedSeen;
          clearTimeout(timer);
        }
        await worker.terminate();
        die('the model was closed');
      })();
      return closing;
    },
  };
}
