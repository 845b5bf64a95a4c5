/**
 * Continuous batching over one model: requests come in at any time, each gets a slot (maxBatch of them),
 * and every step decodes all running sequences together.
 *
 *   step:  admit queued requests into free slots and prefill them (their first tokens come out), those of
 *          one prompt length and sub-model in one forward [B, T]
 *          → one decode forward [B, 1] per sub-model over the running sequences (each at its own length)
 *          → sample per sequence (its own options and seeded generator) → token events; a sequence at
 *            eos / max tokens ends with `done`, and its slot is free for the next step
 *
 * Prompts of one length (a server's clients often send the same template) prefill in one forward: each row
 * computes what it computes alone (rounding aside, as in a batched decode), and a burst of requests costs a few
 * forwards instead of one each; prompts of other lengths prefill alone. The loop yields to
 * the event loop (setImmediate) after every forward, so events flow and aborts land between forwards;
 * an aborted (or abandoned) session ends with `done` 'cancelled' and its slot is free at once.
 *
 * Every forward goes through one tracer: it counts the assignments per expert of every MoE layer (the
 * expert loads of stats()) and, for the sessions that asked for `traceRoutes`, hands each its own rows' routing.
 */
import type { TextTokenizer } from '../io/tokenizer.js';
import type { MoeEvent, MoeModel, Tracer } from '../models/model.js';
import { MoekitError } from '../util/errors.js';
import { Channel } from './channel.js';
import { timingsOf, usageOf, type DoneMsg, type ErrorMsg, type FinishReason, type GenEvent, type SessionOptions, type TokenRoute } from './events.js';
import { decode, prefillBatch, Sequence } from './sequence.js';
import { TextStream } from './text-stream.js';

export interface SchedulerOptions {
  /** sequences decoded together (slots); default 8 */
  maxBatch?: number;
  /** with a tokenizer, token events carry their text and done the whole completion */
  tokenizer?: TextTokenizer | null;
}

export interface SchedulerStats {
  slots: number;
  running: number;
  queued: number;
  /** prefill forwards, decode forwards, and the largest decode batch so far */
  prefills: number;
  steps: number;
  maxBatch: number;
  /** tokens generated */
  tokens: number;
  /** assignments per expert so far, prompts and decode steps: [nMoE][E] */
  expertLoad: number[][];
}

/** where a session's events go: its channel, or a listener */
interface Sink {
  push(ev: GenEvent): void;
  close(): void;
}

interface Session {
  seq: Sequence;
  ch: Sink;
  text: TextStream | null;
  state: 'queued' | 'running' | 'ended';
  unlisten: () => void;
  /** with trace: the routing of the positions the last forward fed, until the token event takes them */
  routes: TokenRoute[] | null;
}

export class Scheduler {
  readonly maxBatch: number;
  private readonly tokenizer: TextTokenizer | null;
  private queue: Session[] = [];
  private running: Session[] = [];
  private loop: Generator<void, void> | null = null;
  private readonly counts = { prefills: 0, steps: 0, maxBatch: 0, tokens: 0 };
  private readonly load: Float64Array[]; // [nMoE][E]
  private readonly nMoe: number;

  constructor(readonly model: MoeModel, o: SchedulerOptions = {}) {
    this.maxBatch = o.maxBatch ?? 8;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new MoekitError(`max batch must be a positive integer, got ${o.maxBatch}`);
    this.tokenizer = o.tokenizer ?? null;
    this.nMoe = model.moeLayerIndex.filter((m) => m >= 0).length;
    this.load = Array.from({ length: this.nMoe }, () => new Float64Array(model.desc.moe.experts));
  }

  /**
   * Queue a request; its events stream from the returned iterable (one consumer). A bad request gives
   * one error event. Aborting `signal`, or leaving the iteration early, cancels it.
   */
  submit(prompt: number[], opts: SessionOptions, signal?: AbortSignal): AsyncIterable<GenEvent> {
    const ch = new Channel<GenEvent>();
    const s = this.enqueue(prompt, opts, signal, ch);
    if (s) ch.onReturn = () => this.cancel(s);
    return ch;
  }

  /**
   * Queue a request whose events go to `onEvent` as they happen, synchronously, inside the step that made
   * them (the worker collects a whole step's events into one message this way). Aborting `signal` cancels it.
   */
  listen(prompt: number[], opts: SessionOptions, signal: AbortSignal | undefined, onEvent: (ev: GenEvent) => void): void {
    this.enqueue(prompt, opts, signal, { push: onEvent, close: () => {} });
  }

  private enqueue(prompt: number[], opts: SessionOptions, signal: AbortSignal | undefined, ch: Sink): Session | null {
    let seq: Sequence;
    try {
      seq = new Sequence(this.model, prompt, opts);
    } catch (e) {
      ch.push(errorMsg(e));
      ch.close();
      return null;
    }
    const s: Session = { seq, ch, text: this.tokenizer && new TextStream(this.tokenizer), state: 'queued', unlisten: () => {}, routes: null };
    if (signal?.aborted) {
      this.cancel(s);
      return null;
    }
    const onAbort = () => this.cancel(s);
    signal?.addEventListener('abort', onAbort, { once: true });
    s.unlisten = () => signal?.removeEventListener('abort', onAbort);
    this.queue.push(s);
    this.kick();
    return s;
  }

  stats(): SchedulerStats {
    return { slots: this.maxBatch, running: this.running.length, queued: this.queue.length, ...this.counts, expertLoad: this.load.map((l) => Array.from(l)) };
  }

  /** cancel every session (their done events say 'cancelled') */
  cancelAll(): void {
    for (const s of [...this.running, ...this.queue]) this.cancel(s);
  }

  private cancel(s: Session): void {
    if (s.state === 'ended') return;
    const t = s.seq.t, now = performance.now();
    if (s.state === 'queued') t.prefillStart = t.prefillEnd = now;
    t.end = now;
    this.end(s, this.doneMsg(s, 'cancelled'));
  }

  /** the session's last event; its slot is free from here */
  private end(s: Session, last: DoneMsg | ErrorMsg): void {
    if (s.state === 'ended') return;
    if (s.state === 'running') this.running.splice(this.running.indexOf(s), 1);
    else this.queue.splice(this.queue.indexOf(s), 1);
    s.state = 'ended';
    s.unlisten();
    s.ch.push(last);
    s.ch.close();
  }

  private doneMsg(s: Session, reason: FinishReason): DoneMsg {
    const q = s.seq, n = q.out.length;
    return {
      type: 'done', finish_reason: reason, usage: usageOf(q.prompt.length, n), timings: timingsOf(q.t, q.prompt.length, n),
      batch: { decode_steps: q.decodeSteps, max_batch: q.maxBatch },
      ...(this.tokenizer ? { text: this.tokenizer.decode(q.out) } : {}),
    };
  }

  /** the token a step just took, and the end when it was the last */
  private emit(s: Session): void {
    const q = s.seq, id = q.last;
    this.counts.tokens++;
    const routes = s.routes;
    s.routes = null;
    s.ch.push({ type: 'token', id, index: q.out.length - 1, ...(s.text ? { text: s.text.push(id) } : {}), ...(routes ? { routes } : {}) });
    if (q.done) this.end(s, this.doneMsg(s, q.finish === 'eos' ? 'stop' : 'length'));
  }

  private kick(): void {
    if (this.loop) return;
    this.loop = this.steps();
    setImmediate(this.tick);
  }

  private tick = (): void => {
    let r: IteratorResult<void, void>;
    try {
      r = this.loop!.next();
    } catch (e) { // a bug in the loop itself: end everything rather than hang
      this.loop = null;
      for (const s of [...this.running, ...this.queue]) this.end(s, errorMsg(e));
      return;
    }
    if (r.done) this.loop = null;
    else setImmediate(this.tick);
  };

  /** the scheduling loop; yields after every forward, returns when there is nothing to do */
  private *steps(): Generator<void, void> {
    while (this.queue.length > 0 || this.running.length > 0) {
      // admit: as many queued requests as there are free slots; prompts of one length and sub-model prefill together
      const admitted: Session[] = [];
      while (this.running.length < this.maxBatch && this.queue.length > 0) {
        const s = this.queue.shift()!;
        s.state = 'running';
        this.running.push(s);
        admitted.push(s);
      }
      const prefills = new Map<string, Session[]>();
      for (const s of admitted) {
        const k = `${s.seq.prompt.length} ${s.seq.subKey}`;
        const g = prefills.get(k);
        if (g) g.push(s); else prefills.set(k, [s]);
      }
      for (const g of prefills.values()) {
        const live = g.filter((s) => s.state === 'running'); // aborts land between forwards
        if (live.length === 0) continue;
        this.prefillGroup(live);
        yield;
      }
      // decode: one forward per sub-model over its running sequences
      const groups = new Map<string, Session[]>();
      for (const s of this.running) {
        const g = groups.get(s.seq.subKey);
        if (g) g.push(s); else groups.set(s.seq.subKey, [s]);
      }
      for (const g of groups.values()) {
        const live = g.filter((s) => s.state === 'running'); // aborts land between forwards
        if (live.length === 0) continue;
        this.decodeGroup(live);
        yield;
      }
    }
  }

  /** one batched prefill; when it throws, each prompt alone, so an error ends only its own session */
  private prefillGroup(g: Session[]): void {
    const first = (s: Session) => {
      if (s.seq.out.length > 0) this.emit(s);
      else this.end(s, this.doneMsg(s, 'length')); // max new tokens 0
    };
    try {
      prefillBatch(this.model, g.map((s) => s.seq), this.tracer(g, g[0].seq.prompt.length));
      this.counts.prefills++;
      for (const s of g) first(s);
    } catch (e) {
      if (g.length === 1) { this.end(g[0], errorMsg(e)); return; }
      for (const s of g) {
        try {
          prefillBatch(this.model, [s.seq], this.tracer([s], s.seq.prompt.length));
          this.counts.prefills++;
          first(s);
        } catch (e1) {
          this.end(s, errorMsg(e1));
        }
      }
    }
  }

  /** one batched decode; when it throws, each sequence alone, so an error ends only its own session */
  private decodeGroup(g: Session[]): void {
    try {
      decode(this.model, g.map((s) => s.seq), this.tracer(g, 1));
      this.counted(g.length);
      for (const s of g) this.emit(s);
    } catch (e) {
      if (g.length === 1) { this.end(g[0], errorMsg(e)); return; }
      for (const s of g) {
        try {
          decode(this.model, [s.seq], this.tracer([s], 1));
          this.counted(1);
          this.emit(s);
        } catch (e1) {
          this.end(s, errorMsg(e1));
        }
      }
    }
  }

  /**
   * the tracer of one forward over `g` (T rows each, in order): counts every MoE layer's assignments and
   * collects the rows of the sessions that asked for their routing
   */
  private tracer(g: Session[], T: number): Tracer {
    const traced = g.some((s) => s.seq.o.traceRoutes);
    for (const s of g) {
      s.routes = s.seq.o.traceRoutes ? Array.from({ length: T }, () => ({ experts: new Array(this.nMoe).fill(null), weights: new Array(this.nMoe).fill(null) })) : null;
    }
    return {
      moe: (ev: MoeEvent) => {
        const load = this.load[ev.moeLayer];
        for (let e = 0; e < ev.E; e++) load[e] += ev.counts[e];
        if (!traced) return;
        const K = ev.K;
        g.forEach((s, b) => {
          if (!s.routes) return;
          for (let t = 0; t < T; t++) {
            const n = b * T + t;
            s.routes[t].experts[ev.moeLayer] = Array.from(ev.experts.subarray(n * K, (n + 1) * K));
            s.routes[t].weights[ev.moeLayer] = Array.from(ev.weights.subarray(n * K, (n + 1) * K), (w) => Math.round(w * 1e4) / 1e4);
          }
        });
      },
    };
  }

  private counted(B: number): void {
    this.counts.steps++;
    this.counts.maxBatch = Math.max(this.counts.maxBatch, B);
  }
}

/** a session's error event: a MoekitError's one line (file: message), or the message of anything else */
export function errorMsg(e: unknown): ErrorMsg {
  return { type: 'error', message: e instanceof MoekitError ? e.oneLine() : e instanceof Error ? e.message : String(e) };
}
