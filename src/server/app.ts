/**
 * `moekit serve`'s HTTP server (fastify): OpenAI's routes over one model on its worker thread, the MoE
 * extensions, and the dashboard's page and data.
 *
 *   POST /v1/chat/completions, /v1/completions   (SSE with `stream`, ending in `data: [DONE]`)
 *   GET  /v1/models, /v1/models/:id
 *   POST /tokenize {content} → {tokens};  /detokenize {tokens} → {content}          (as llama-server)
 *   GET  /health   503 while loading, then {"status": "ok"}                           (never needs the key)
 *   GET  /metrics  Prometheus text
 *   GET  /moekit/info, /moekit/stats, /moekit/progress (SSE of the load's progress events), POST /moekit/plan
 *   GET  /         the dashboard (src/server/web, built into dist/web by vite)
 *
 * Every completion goes through the model's continuous-batching scheduler: all running sequences decode
 * together, one forward per step. The server admits at most slots + queue completions at once (the rest
 * get 429), cancels a completion whose client goes away, and answers every bad request with an
 * OpenAI-shaped error body naming what is wrong; nothing a client sends ends the process.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import { loadTokenizer, type TextTokenizer } from '../io/tokenizer.js';
import type { LoadDtype } from '../models/model.js';
import { paramCounts } from '../models/params.js';
import type { SessionOptions } from '../runtime/events.js';
import { openModel, type ModelHandle, type ModelInfo } from '../runtime/remote.js';
import { complete, type Piece } from './complete.js';
import { ApiError, badField, toApiError } from './errors.js';
import { Metrics } from './metrics.js';
import { moeRequest, noPatternStore, type MoeRequest, type PatternResolver } from './moe.js';
import { bodyObject, completionPrompt, describe, messages, optBool, optString, sampling } from './request.js';
import { dashboardRoutes, type PatternInfo } from './dashboard.js';
import { planRoute } from './plan.js';
import { jobRoutes, Jobs } from './jobs.js';
import { storeResolver } from './patterns.js';

export interface ServeOptions {
  /** the model directory */
  dir: string;
  /** the name clients give as `model` (default: the directory's name) */
  modelId?: string;
  /** when set, every route but /health and the page's static files needs `Authorization: Bearer KEY` */
  apiKey?: string | null;
  /** sequences decoded together (the scheduler's slots; default 64) */
  slots?: number;
  /** completions waiting for a slot beyond those (default 256); past slots + queue: 429 */
  maxQueue?: number;
  /** the largest request body in bytes (default 1 MiB); larger: 413 */
  bodyLimit?: number;
  /** how `moekit.experts` names ("auto", a task) become keep sets: the PreMoe store's seam */
  patterns?: PatternResolver;
  /** what the dashboard's PreMoe view shows of the store behind `patterns` */
  patternInfo?: PatternInfo;
  /** the built dashboard (default: the package's dist/web; null: none) */
  webRoot?: string | null;
  dtype?: LoadDtype;
  /** the kernels' threads on the model's thread (default: MOEKIT_THREADS, else all cores but one for HTTP) */
  threads?: number;
  /** where the dashboard's jobs (profile, train) write (default: a fresh directory in the temp directory) */
  jobsDir?: string;
}

export interface MoeServer {
  readonly app: FastifyInstance;
  readonly handle: ModelHandle;
  readonly modelId: string;
  /** resolves when the model is loaded */
  readonly ready: Promise<ModelInfo>;
  /** listen; resolves with the address (http://host:port) */
  listen(host: string, port: number): Promise<string>;
  close(): Promise<void>;
}

/** the built page: dist/web of this package (from dist/server or, under the tests, src/server) */
const DEFAULT_WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/web');

export function createServer(o: ServeOptions): MoeServer {
  const modelId = o.modelId ?? path.basename(path.resolve(o.dir));
  const slots = o.slots ?? 64, maxQueue = o.maxQueue ?? 256;
  // the pattern store: the one given, or the one a profile job just wrote (jobs.ts)
  let resolver = o.patterns ?? noPatternStore;
  let patternInfo: PatternInfo | null = o.patternInfo ?? null;
  let jobs: Jobs | null = null;
  const jobsDir = () => (o.jobsDir ? (fs.mkdirSync(o.jobsDir, { recursive: true }), o.jobsDir) : fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-jobs-')));
  const threads = o.threads ?? (process.env.MOEKIT_THREADS ? undefined : Math.max(1, os.availableParallelism() - 1));
  // the text is decoded on this thread (complete.ts): the model's thread only computes
  const handle = openModel(o.dir, { maxBatch: slots, dtype: o.dtype, threads, tokenizer: false });
  const tokenizer: TextTokenizer | null = loadTokenizer(o.dir);
  const metrics = new Metrics();
  const created = Math.floor(Date.now() / 1000);
  let info: ModelInfo | null = null;
  let loadError: string | null = null;
  const ready = handle.ready.then((i) => (info = i), (e: Error) => { loadError = e.message; throw e; });
  ready.catch(() => {});
  let inFlight = 0;
  const key = o.apiKey ? Buffer.from(o.apiKey) : null;

  const app = Fastify({ bodyLimit: o.bodyLimit ?? 1 << 20, forceCloseConnections: true, logger: false, return503OnClosing: true });

  // ---- errors, auth, metrics -------------------------------------------------------------------
  app.setErrorHandler((e, _req, reply) => {
    const err = toApiError(e);
    void reply.code(err.status).send(err.body());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(new ApiError(404, `no route ${req.method} ${req.url.split('?')[0]}`, 'not_found_error', null, 'not_found').body());
  });
  const isPublic = (req: FastifyRequest) => {
    const p = req.url.split('?')[0];
    if (p === '/health') return true;
    // the page's static files hold no data; every data route needs the key
    return req.method === 'GET' && !/^\/(v1|metrics|moekit|tokenize|detokenize)(\/|$)/.test(p);
  };
  app.addHook('onRequest', async (req) => {
    (req as { t0?: number }).t0 = performance.now();
    if (!key || isPublic(req)) return;
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h) : null;
    const given = m ? Buffer.from(m[1].trim()) : null;
    if (!given) throw new ApiError(401, 'missing API key: send Authorization: Bearer KEY', 'authentication_error', null, 'invalid_api_key');
    if (given.length !== key.length || !timingSafeEqual(given, key)) throw new ApiError(401, 'incorrect API key', 'authentication_error', null, 'invalid_api_key');
  });
  const observe = (req: FastifyRequest, status: number) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.request(route, status, (performance.now() - ((req as { t0?: number }).t0 ?? performance.now())) / 1000);
  };
  app.addHook('onResponse', async (req, reply) => observe(req, reply.statusCode));

  const loaded = (): ModelInfo => {
    if (info) return info;
    if (loadError) throw new ApiError(500, `the model failed to load: ${loadError}`, 'server_error', null, 'load_failed');
    throw new ApiError(503, 'the model is loading', 'unavailable_error', null, 'loading');
  };

  // ---- health, models, metrics ------------------------------------------------------------------
  app.get('/health', async (_req, reply) => {
    if (info) return { status: 'ok' };
    if (loadError) return reply.code(500).send(new ApiError(500, `the model failed to load: ${loadError}`, 'server_error', null, 'load_failed').body());
    return reply.code(503).send(new ApiError(503, 'Loading model', 'unavailable_error', null, 'loading').body());
  });
  const modelCard = () => ({ id: modelId, object: 'model', created, owned_by: 'moekit', ...(info ? { meta: { arch: info.arch, hf_class: info.hfClass, vocab: info.vocab, n_ctx: info.maxPositions, slots: info.maxBatch } } : {}) });
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard()] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    if (req.params.id !== modelId) throw unknownModel(req.params.id);
    return modelCard();
  });
  app.get('/metrics', async (_req, reply) => {
    const stats = info ? await handle.stats().catch(() => null) : null;
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render(stats, inFlight));
  });

  // ---- tokenize -------------------------------------------------------------------------------
  const needTokenizer = (): TextTokenizer => {
    if (!tokenizer) throw new ApiError(400, `the model has no tokenizer.json: send token ids`, 'invalid_request_error', null, 'no_tokenizer');
    return tokenizer;
  };
  app.post('/tokenize', async (req) => {
    const b = bodyObject(req.body);
    const content = optString(b, 'content');
    if (content === undefined) throw badField('content', `'content' must be a string, got ${describe(b['content'])}`);
    return { tokens: needTokenizer().encode(content, optBool(b, 'add_special') ?? false) };
  });
  app.post('/detokenize', async (req) => {
    const b = bodyObject(req.body);
    const t = b['tokens'];
    const V = loaded().vocab;
    if (!Array.isArray(t) || !t.every((x) => Number.isInteger(x) && x >= 0 && x < V)) throw badField('tokens', `'tokens' must be an array of token ids in [0, ${V}), got ${describe(t)}`);
    return { content: needTokenizer().decode(t as number[], false) };
  });

  // ---- completions ----------------------------------------------------------------------------
  function unknownModel(m: string): ApiError {
    return new ApiError(404, `the model '${m}' does not exist (this server serves '${modelId}')`, 'invalid_request_error', 'model', 'model_not_found');
  }

  /** what a completion request runs: its prompt ids, session options, stop strings, MoE extensions */
  async function parse(kind: 'chat' | 'text', body: unknown) {
    const inf = loaded();
    const b = bodyObject(body);
    const model = optString(b, 'model');
    if (model !== undefined && model !== modelId) throw unknownModel(model);
    let prompt: number[];
    if (kind === 'chat') {
      const msgs = messages(b);
      const tok = needTokenizer();
      if (!tok.chatTemplate) throw new ApiError(400, 'the model has no chat_template: use /v1/completions', 'invalid_request_error', 'messages', 'no_chat_template');
      prompt = tok.applyChatTemplate(msgs, true);
    } else {
      const p = completionPrompt(b);
      prompt = typeof p === 'string' ? needTokenizer().encode(p) : p;
    }
    const param = kind === 'chat' ? 'messages' : 'prompt';
    if (prompt.length === 0) throw badField(param, `'${param}' gives no tokens`);
    const bad = prompt.find((id) => id >= inf.vocab);
    if (bad !== undefined) throw badField(param, `'${param}': token id ${bad} is outside the vocabulary [0, ${inf.vocab})`);
    const ctx = inf.maxPositions;
    if (prompt.length >= ctx) throw badField(param, `'${param}' is ${prompt.length} tokens; the model's context is ${ctx}`);
    const s = sampling(b, ctx);
    const maxNew = s.maxTokens ?? (kind === 'text' ? Math.min(16, ctx - prompt.length) : ctx - prompt.length);
    if (prompt.length + maxNew > ctx) throw badField(s.maxTokens !== undefined && b['max_completion_tokens'] !== undefined ? 'max_completion_tokens' : 'max_tokens', `${prompt.length} prompt tokens + max_tokens ${maxNew} exceed the model's context of ${ctx}`);
    const moe = await moeRequest(inf.desc, b, prompt, resolver);
    const opts: SessionOptions = {
      maxNewTokens: maxNew, temperature: s.temperature, topP: s.topP, topK: s.topK,
      seed: s.seed ?? randomBytes(4).readUInt32LE(0) >>> 1, sub: moe.sub, traceRoutes: moe.trace, stopAtEos: !s.ignoreEos,
    };
    return { prompt, opts, s, moe };
  }

  /** the moekit block of a response: what ran, and the routing when traced */
  const moeBlock = (moe: MoeRequest, end: Extract<Piece, { type: 'end' }>, routes: boolean, prompt: number[]) => ({
    pattern: moe.report.pattern, submodel: moe.report.submodel, batch: end.batch,
    ...(routes && moe.trace ? { routes: end.routes } : {}),
    // with trace: the text of each routed position (the prompt's tokens, then the answer's but the last)
    ...(moe.trace && tokenizer ? { tokens: [...prompt, ...end.ids].slice(0, end.routes.length).map((id) => tokenizer.decode([id], false)) } : {}),
  });

  async function completion(kind: 'chat' | 'text', req: FastifyRequest, reply: FastifyReply) {
    const { prompt, opts, s, moe } = await parse(kind, req.body);
    if (inFlight >= slots + maxQueue) {
      metrics.rejected++;
      void reply.header('retry-after', '1');
      throw new ApiError(429, `the server is at capacity (${slots} running + ${maxQueue} queued): retry later`, 'rate_limit_error', null, 'queue_full');
    }
    inFlight++;
    const ac = new AbortController();
    const onClose = () => { if (!reply.raw.writableFinished) ac.abort(); };
    reply.raw.on('close', onClose);
    const t0 = (req as { t0?: number }).t0 ?? performance.now();
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
    const now = Math.floor(Date.now() / 1000);
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
    let first = true;
    const sawFirst = () => { if (first) { first = false; metrics.ttft.observe((performance.now() - t0) / 1000); } };
    const finish = (end: Extract<Piece, { type: 'end' }>) => {
      metrics.promptTokens += end.usage.prompt_tokens;
      metrics.generatedTokens += end.usage.completion_tokens;
      if (end.finish === 'cancelled') metrics.cancelled++;
    };
    const pieces = complete(handle, prompt, opts, s.stop, ac.signal, tokenizer);
    try {
      if (!s.stream) {
        let end: Extract<Piece, { type: 'end' }> | null = null;
        for await (const p of pieces) { sawFirst(); if (p.type === 'end') end = p; }
        finish(end!);
        const choice = kind === 'chat'
          ? { index: 0, message: { role: 'assistant', content: end!.text }, logprobs: null, finish_reason: end!.finish }
          : { index: 0, text: end!.text, logprobs: null, finish_reason: end!.finish };
        return { id, object, created: now, model: modelId, choices: [choice], usage: end!.usage, timings: end!.timings, moekit: moeBlock(moe, end!, true, prompt) };
      }
      // streaming: the status and headers go out with the first piece, so a request the model refuses still gets its 4xx
      const it = pieces[Symbol.asyncIterator]();
      let r = await it.next();
      sawFirst();
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      const send = async (data: unknown) => {
        if (res.destroyed) return;
        if (res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)) return;
        // a slow client: wait for its socket to drain (or close) before the next piece
        await new Promise<void>((w) => {
          const done = () => { res.off('drain', done); res.off('close', done); w(); };
          res.on('drain', done);
          res.on('close', done);
        });
      };
      const chunk = (delta: object, finishReason: string | null, extra: object = {}) => (kind === 'chat'
        ? { id, object: 'chat.completion.chunk', created: now, model: modelId, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], ...extra }
        : { id, object: 'text_completion', created: now, model: modelId, choices: [{ index: 0, text: (delta as { content?: string }).content ?? '', logprobs: null, finish_reason: finishReason }], ...extra });
      try {
        if (kind === 'chat') await send(chunk({ role: 'assistant', content: '' }, null));
        for (; !r.done; r = await it.next()) {
          const p = r.value;
          if (p.type === 'text') {
            if (p.text || p.routes) await send(chunk({ content: p.text }, null, p.routes ? { moekit: { routes: p.routes } } : {}));
          } else {
            finish(p);
            await send(chunk({}, p.finish, { timings: p.timings, moekit: moeBlock(moe, p, false, prompt) })); // the routes went out with the pieces
            if (s.includeUsage) await send({ id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: now, model: modelId, choices: [], usage: p.usage });
          }
        }
      } catch (e) {
        await send(toApiError(e).body()); // the status went out with the first piece: the error is an event
      }
      await send('[DONE]');
      res.end(); // fastify's onResponse counts it
    } finally {
      inFlight--;
      reply.raw.off('close', onClose);
      void pieces.return(undefined);
    }
  }
  app.post('/v1/chat/completions', (req, reply) => completion('chat', req, reply));
  app.post('/v1/completions', (req, reply) => completion('text', req, reply));

  // ---- the dashboard's data --------------------------------------------------------------------
  app.get('/moekit/info', async () => {
    const inf = loaded();
    const p = paramCounts(inf.desc);
    return {
      model: modelId, dir: o.dir, info: inf, params: { total: p.total, active: p.activePerToken, routed: p.routedExperts },
      tokenizer: tokenizer !== null, chat_template: tokenizer?.chatTemplate ?? null, slots, max_queue: maxQueue,
      patterns: o.patterns ? 'loaded' : null,
    };
  });
  app.get('/moekit/stats', async () => {
    loaded();
    return { ...(await handle.stats()), in_flight: inFlight };
  });
  app.get('/moekit/progress', async (_req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    for await (const ev of handle.events) { if (res.destroyed) return; res.write(`data: ${JSON.stringify(ev)}\n\n`); }
    const i = await ready.catch(() => null);
    res.end(`data: ${JSON.stringify(i ? { type: 'ready', loadSeconds: i.loadSeconds } : { type: 'error', message: loadError })}\n\n`);
  });
  planRoute(app);
  dashboardRoutes(app, o.dir, () => loaded().desc, () => patternInfo);
  jobs = new Jobs({
    dir: o.dir, jobsDir,
    onStore: (store) => { const r = storeResolver(o.dir, store); resolver = r.resolve; patternInfo = r.info; },
  });
  jobRoutes(app, jobs);

  // ---- the page --------------------------------------------------------------------------------
  const web = o.webRoot === undefined ? DEFAULT_WEB : o.webRoot;
  if (web && fs.existsSync(path.join(web, 'index.html'))) {
    void app.register(fastifyStatic, { root: web, prefix: '/', wildcard: false });
  } else {
    app.get('/', async (_req, reply) => reply.type('text/html').send('<!doctype html><p>moekit: the dashboard is not built (npm run build:web). The API is up: /v1/models.</p>'));
  }

  return {
    app, handle, modelId, ready,
    async listen(host, port) {
      return app.listen({ host, port });
    },
    async close() {
      jobs?.close();
      await app.close();
      await handle.close();
    },
  };
}
