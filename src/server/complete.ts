/**
 * One completion through the model's scheduler, as the routes stream it: text pieces (with their
 * routing when traced), then one end carrying the finish reason, usage and timings. Stop strings are
 * matched here, on the text: a piece that could be the start of a stop string is held back until it is
 * not; when one appears, the text ends before it, the session is cancelled (its slot freed at once) and
 * the finish reason is 'stop'. Aborting `signal` (the client went away) cancels the session. The text is
 * decoded here, on the server's thread, with `tok` (the model's thread then only computes), or taken from
 * the events when the model's thread decodes it.
 */
import { usageOf, type BatchStats, type FinishReason, type SessionOptions, type Timings, type TokenRoute, type Usage } from '../runtime/events.js';
import type { TextTokenizer } from '../io/tokenizer.js';
import type { ModelHandle } from '../runtime/remote.js';
import { TextStream } from '../runtime/text-stream.js';
import { ApiError } from './errors.js';

export type Piece =
  | { type: 'text'; text: string; routes?: TokenRoute[]; ids: number[] }
  | { type: 'end'; finish: FinishReason; usage: Usage; timings: Timings; batch: BatchStats; text: string; ids: number[]; routes: TokenRoute[] };

/** the longest suffix of `text` that is a proper prefix of a stop string */
function heldBack(text: string, stop: string[]): number {
  let n = 0;
  for (const s of stop) for (let k = Math.min(s.length - 1, text.length); k > n; k--) if (text.endsWith(s.slice(0, k))) { n = k; break; }
  return n;
}

export async function* complete(h: ModelHandle, prompt: number[], opts: SessionOptions, stop: string[], signal: AbortSignal,
                                tok: Pick<TextTokenizer, 'decode'> | null = null): AsyncGenerator<Piece> {
  const ts = tok ? new TextStream(tok) : null;
  const own = new AbortController();
  const onAbort = () => own.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  let text = ''; // all the text so far
  let sent = 0; // how much of it went out
  let stopped = false;
  const ids: number[] = [];
  const routes: TokenRoute[] = [];
  let pendingIds: number[] = [];
  let pendingRoutes: TokenRoute[] = [];
  try {
    for await (const ev of h.generate(prompt, opts, own.signal)) {
      if (ev.type === 'error') throw new ApiError(ids.length === 0 ? 400 : 500, ev.message, ids.length === 0 ? 'invalid_request_error' : 'server_error');
      if (ev.type === 'token') {
        if (stopped) continue;
        ids.push(ev.id);
        pendingIds.push(ev.id);
        if (ev.routes) { routes.push(...ev.routes); pendingRoutes.push(...ev.routes); }
        text += ev.text ?? ts?.push(ev.id) ?? '';
        let end = text.length;
        const at = stop.length ? Math.min(...stop.map((s) => { const i = text.indexOf(s, Math.max(0, sent - s.length + 1)); return i < 0 ? Infinity : i; })) : Infinity;
        if (at !== Infinity) { end = at; stopped = true; } else end -= heldBack(text.slice(sent), stop);
        if (end > sent || stopped || (opts.traceRoutes && pendingRoutes.length)) {
          yield { type: 'text', text: text.slice(sent, end), ids: pendingIds, ...(opts.traceRoutes ? { routes: pendingRoutes } : {}) };
          sent = end;
          pendingIds = [];
          pendingRoutes = [];
        }
        if (stopped) { text = text.slice(0, end); own.abort(); }
        continue;
      }
      // done: the finish reason (ours when a stop string ended it), and the text held back at the end
      if (!stopped) {
        const whole = ev.text ?? (tok ? tok.decode(ids) : undefined);
        const full = whole !== undefined && whole.startsWith(text) ? whole : text;
        if (full.length > sent || pendingIds.length) yield { type: 'text', text: full.slice(sent), ids: pendingIds, ...(opts.traceRoutes ? { routes: pendingRoutes } : {}) };
        text = full;
      }
      yield { type: 'end', finish: stopped ? 'stop' : ev.finish_reason, usage: stopped ? usageOf(prompt.length, ids.length) : ev.usage, timings: ev.timings, batch: ev.batch, text, ids, routes };
      return;
    }
    throw new ApiError(500, 'the session ended without a done event', 'server_error');
  } finally {
    signal.removeEventListener('abort', onAbort);
    own.abort(); // a consumer that left early: cancel
  }
}
