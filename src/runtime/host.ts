/**
 * The model's side of the thread protocol: serveModel loads a model directory (its progress events go to the port),
 * then runs a Scheduler over it, one session per `generate` message, their events back over the port (one message
 * per step). src/runtime/worker.ts runs it on a worker thread's parentPort; tests run it on one end of a
 * MessageChannel in the same thread (test/remote.test.ts). A failed load is a `load-error` message carrying the
 * error's one line, never an uncaught crash.
 */
import type { MessagePort } from 'node:worker_threads';
import { loadTokenizer } from '../io/tokenizer.js';
import { MoeModel, type LoadDtype } from '../models/model.js';
import type { ModelDesc } from '../models/desc.js';
import type { ProgressEvent } from '../util/progress.js';
import type { GenEvent, SessionOptions } from './events.js';
import { errorMsg, Scheduler, type SchedulerStats } from './scheduler.js';

export interface WorkerInit {
  dir: string;
  dtype?: LoadDtype;
  /** slots of the scheduler (default 8) */
  maxBatch?: number;
  /** load the directory's tokenizer.json, when it has one, for the events' text (default true) */
  tokenizer?: boolean;
  /** the kernels' threads on the model's thread (MOEKIT_THREADS there; default: as the process has it) */
  threads?: number;
}

/** what the loaded model is, for a server's /v1/models and /health */
export interface ModelInfo {
  dir: string;
  arch: string;
  hfClass: string;
  vocab: number;
  maxPositions: number;
  eosTokenIds: number[];
  maxBatch: number;
  /** events carry text */
  tokenizer: boolean;
  loadSeconds: number;
  /** the whole description (plain data): what a server checks sub-models against */
  desc: ModelDesc;
}

/** main thread → worker */
export type ToWorker =
  | { type: 'generate'; id: number; prompt: number[]; opts: SessionOptions }
  | { type: 'cancel'; id: number }
  | { type: 'stats'; id: number }
  | { type: 'close' };

/** worker → main thread */
export type FromWorker =
  | { type: 'progress'; event: ProgressEvent }
  | { type: 'ready'; info: ModelInfo }
  | { type: 'load-error'; message: string }
  /**
   * one step's events: plain tokens (no text, no routes: what a server's sessions get) packed as Int32 triples
   * (session, token id, index) — a structured clone of one typed array instead of an object per token — and the
   * others in order; a session's plain tokens all come before its other events of the step
   */
  | { type: 'events'; tokens: Int32Array; list: { id: number; event: GenEvent }[] }
  | { type: 'stats'; id: number; stats: SchedulerStats | null }
  | { type: 'closed' };

/** the port's side a model needs: a worker's parentPort or one end of a MessageChannel */
export type HostPort = Pick<MessagePort, 'postMessage' | 'on' | 'close'>;

/**
 * Serve the model of `init.dir` on `port` (loading synchronously: messages queue until it is over). Returns a stop
 * that cancels every session, for a host in the same thread (a worker thread simply ends instead).
 */
export function serveModel(port: HostPort, init: WorkerInit): () => void {
  const post = (m: FromWorker) => port.postMessage(m);
  let scheduler: Scheduler | null = null;
  const sessions = new Map<number, AbortController>();

  // a step's events, one message: the scheduler hands them over synchronously inside the step, and the
  // flush runs right after it (a microtask), so nothing waits for the next step
  let outbox: { id: number; event: GenEvent }[] = [];
  let packed: number[] = [];
  const flush = () => {
    const list = outbox, tokens = packed;
    outbox = []; packed = [];
    if (list.length || tokens.length) post({ type: 'events', tokens: Int32Array.from(tokens), list });
  };
  function run(id: number, prompt: number[], opts: SessionOptions): void {
    const ac = new AbortController();
    sessions.set(id, ac);
    const onEvent = (event: GenEvent) => {
      if (outbox.length === 0 && packed.length === 0) queueMicrotask(flush);
      if (event.type === 'token' && event.text === undefined && event.routes === undefined) { packed.push(id, event.id, event.index); return; }
      outbox.push({ id, event });
      if (event.type === 'done' || event.type === 'error') sessions.delete(id);
    };
    try {
      if (!scheduler) throw new Error('the model is not loaded');
      scheduler.listen(prompt, opts, ac.signal, onEvent);
    } catch (e) {
      onEvent(errorMsg(e));
    }
  }

  // messages queue until the (synchronous) load below is over
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'generate': run(m.id, m.prompt, m.opts); break;
      case 'cancel': sessions.get(m.id)?.abort(); break;
      case 'stats': post({ type: 'stats', id: m.id, stats: scheduler?.stats() ?? null }); break;
      case 'close':
        scheduler?.cancelAll();
        // the cancelled sessions' done events are posted from their loops: let those run, then go
        setImmediate(() => { post({ type: 'closed' }); port.close(); });
        break;
    }
  });

  try {
    const t0 = performance.now();
    const model = MoeModel.load(init.dir, { dtype: init.dtype, onProgress: (event) => post({ type: 'progress', event }) });
    const tokenizer = init.tokenizer === false ? null : loadTokenizer(model.dir || init.dir);
    scheduler = new Scheduler(model, { maxBatch: init.maxBatch, tokenizer });
    const d = model.desc;
    post({
      type: 'ready',
      info: {
        dir: init.dir, arch: d.arch, hfClass: d.hfClass, vocab: d.vocab, maxPositions: d.maxPositions, eosTokenIds: d.eosTokenIds,
        maxBatch: scheduler.maxBatch, tokenizer: tokenizer !== null, loadSeconds: (performance.now() - t0) / 1000,
        desc: d,
      },
    });
  } catch (e) {
    post({ type: 'load-error', message: errorMsg(e).message });
  }
  return () => scheduler?.cancelAll();
}
