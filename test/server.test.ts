/**
 * `moekit serve` on the bundled demo model, driven by the official `openai` npm client and by plain fetch:
 * chat and completions, streamed and not, give the text the engine's own greedy generation gives for the
 * same prompt; a request with moekit.submodel or moekit.experts gives what the extracted checkpoint gives;
 * moekit.trace returns the routing the model's tracer sees; concurrent streams decode in shared batched
 * steps and each gets its own greedy text; stop strings end the text; and every bad request gets its
 * status (400 naming the field, 401, 404, 413, 429; a disconnect cancels) while the server keeps serving.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, type TextTokenizer } from '../src/io/tokenizer.js';
import { extractSubModel, firstExperts } from '../src/models/extract.js';
import { MoeModel, type MoeEvent } from '../src/models/model.js';
import { generate } from '../src/runtime/generate.js';
import { createServer, type MoeServer } from '../src/server/app.js';

const DEMO = path.resolve(__dirname, '../examples/demo-moe');
const PROMPTS = ['add 62+0=', 'sort 05992=', 'reverse anzzhp=', 'count f in adffbdec=', 'balanced ([)]=', 'hex2bin 08=', 'caesar 6 hello=', 'lookup a:6 n:7 n='];

/** the worker runs dist/: it must not be older than the sources (npm test builds it) */
beforeAll(() => {
  const worker = path.resolve(__dirname, '../dist/runtime/worker.js');
  const newest = (dir: string): number => Math.max(...fs.readdirSync(dir, { withFileTypes: true }).map((e) =>
    e.isDirectory() ? newest(path.join(dir, e.name)) : e.name.endsWith('.ts') ? fs.statSync(path.join(dir, e.name)).mtimeMs : 0));
  expect(fs.existsSync(worker) && fs.statSync(worker).mtimeMs >= newest(path.resolve(__dirname, '../src/runtime')), 'dist/ is older than src/: run npm run build:ts (npm test does)').toBe(true);
});

let model: MoeModel;
let tok: TextTokenizer;
/** the engine's greedy text for prompt ids (to eos or max new tokens) */
const greedy = (ids: number[], max: number, m = model, stopAtEos = true) => {
  const r = generate(m, ids, { maxNewTokens: max, greedy: true, stopAtEos });
  const out = r.ids.slice(ids.length);
  return { text: tok.decode(out), n: out.length, finish: r.finishReason === 'eos' ? 'stop' : 'length', ids: out };
};
const chatIds = (content: string) => tok.applyChatTemplate([{ role: 'user', content }], true);

async function start(o: Partial<Parameters<typeof createServer>[0]> = {}): Promise<{ s: MoeServer; url: string }> {
  const s = createServer({ dir: DEMO, webRoot: null, ...o });
  const url = await s.listen('127.0.0.1', 0);
  await s.ready;
  return { s, url };
}

const post = (url: string, route: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body), signal });

/** the text and chunks of an SSE response */
async function sse(res: Response): Promise<{ chunks: Record<string, any>[]; done: boolean }> {
  const text = await res.text();
  const events = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  const done = events[events.length - 1] === '[DONE]';
  return { chunks: events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e)), done };
}

beforeAll(() => {
  model = MoeModel.load(DEMO);
  tok = loadTokenizer(DEMO)!;
});

describe('the openai client against moekit serve', () => {
  let s: MoeServer, url: string, client: OpenAI;
  beforeAll(async () => {
    ({ s, url } = await start());
    client = new OpenAI({ baseURL: url + '/v1', apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => s.close());

  it('lists the model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['demo-moe']);
    expect((await client.models.retrieve('demo-moe')).id).toBe('demo-moe');
  });

  it('chat: the message is the engine\'s greedy text for the chat template\'s prompt, with usage and timings', async () => {
    for (const p of PROMPTS.slice(0, 3)) {
      const want = greedy(chatIds(p), 40);
      const r = await client.chat.completions.create({ model: 'demo-moe', messages: [{ role: 'user', content: p }], max_tokens: 40, temperature: 0 });
      expect(r.object).toBe('chat.completion');
      expect(r.choices[0].message).toMatchObject({ role: 'assistant', content: want.text });
      expect(r.choices[0].finish_reason).toBe(want.finish);
      expect(r.usage).toEqual({ prompt_tokens: chatIds(p).length, completion_tokens: want.n, total_tokens: chatIds(p).length + want.n });
      const t = (r as unknown as { timings: Record<string, number> }).timings;
      expect(t).toMatchObject({ prompt_n: chatIds(p).length, predicted_n: want.n });
      expect(t.prompt_ms).toBeGreaterThan(0);
      expect(t.predicted_per_second).toBeGreaterThanOrEqual(0);
    }
  });

  it('chat, streamed: the deltas add up to the same text; the last chunk has the finish reason; usage on request', async () => {
    const p = PROMPTS[3];
    const want = greedy(chatIds(p), 40);
    const stream = await client.chat.completions.create({ model: 'demo-moe', messages: [{ role: 'user', content: p }], max_tokens: 40, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '', finish: string | null = null, usage = null, chunks = 0;
    for await (const c of stream) {
      chunks++;
      expect(c.object).toBe('chat.completion.chunk');
      if (c.choices.length) { text += c.choices[0].delta.content ?? ''; finish = c.choices[0].finish_reason ?? finish; }
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(want.text);
    expect(finish).toBe(want.finish);
    expect(usage).toEqual({ prompt_tokens: chatIds(p).length, completion_tokens: want.n, total_tokens: chatIds(p).length + want.n });
    expect(chunks).toBeGreaterThan(2);
  });

  it('completions, plain and streamed: the engine\'s greedy text for the tokenized prompt', async () => {
    const p = PROMPTS[4];
    const ids = tok.encode(p);
    const want = greedy(ids, 12);
    const r = await client.completions.create({ model: 'demo-moe', prompt: p, max_tokens: 12, temperature: 0 });
    expect(r.choices[0].text).toBe(want.text);
    expect(r.choices[0].finish_reason).toBe(want.finish);
    expect(r.usage?.completion_tokens).toBe(want.n);
    const stream = await client.completions.create({ model: 'demo-moe', prompt: p, max_tokens: 12, temperature: 0, stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.text ?? '';
    expect(text).toBe(want.text);
    // token ids as the prompt, and the default of 16 new tokens
    const r2 = await client.completions.create({ model: 'demo-moe', prompt: ids, temperature: 0 });
    expect(r2.choices[0].text).toBe(greedy(ids, 16).text);
  });

  it('seeded sampling repeats; a stop string ends the text before it with finish_reason stop', async () => {
    const body = { model: 'demo-moe', messages: [{ role: 'user' as const, content: PROMPTS[5] }], max_tokens: 30, temperature: 1.2, top_p: 0.9, seed: 42 };
    const a = await client.chat.completions.create(body), b = await client.chat.completions.create(body);
    expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
    const full = greedy(tok.encode('draw 42='), 80).text;
    expect(full.length).toBeGreaterThan(6);
    const stop = full.slice(3, 5);
    const cut = full.slice(0, full.indexOf(stop));
    const r = await client.completions.create({ model: 'demo-moe', prompt: 'draw 42=', max_tokens: 80, temperature: 0, stop: [stop, '\u0001never'] });
    expect(r.choices[0].text).toBe(cut);
    expect(r.choices[0].finish_reason).toBe('stop');
    const st = await client.completions.create({ model: 'demo-moe', prompt: 'draw 42=', max_tokens: 80, temperature: 0, stop, stream: true });
    let text = '', finish = null;
    for await (const c of st) { text += c.choices[0]?.text ?? ''; finish = c.choices[0]?.finish_reason ?? finish; }
    expect(text).toBe(cut);
    expect(finish).toBe('stop');
  });

  it('tokenize and detokenize round-trip', async () => {
    const t = await (await post(url, '/tokenize', { content: 'add 1+2=' })).json();
    expect(t.tokens).toEqual(tok.encode('add 1+2=', false));
    const d = await (await post(url, '/detokenize', { tokens: t.tokens })).json();
    expect(d.content).toBe('add 1+2=');
  });

  it('16 concurrent streams decode in shared steps, each giving its own greedy text', async () => {
    const before = await (await fetch(url + '/moekit/stats')).json();
    // four long streams (llama-server's ignore_eos: 400 tokens each) already decoding when the 16 arrive, so
    // the 16 share steps with them and with each other however fast one step is (the demo model answers in
    // ~10 tokens: without them the first answers can end before the last request is in)
    const stop = new AbortController();
    const long = await Promise.all(Array.from({ length: 4 }, async (_, i) => {
      const res = await post(url, '/v1/completions', { prompt: PROMPTS[i], max_tokens: 400, temperature: 0, ignore_eos: true, stream: true }, {}, stop.signal);
      const reader = res.body!.getReader();
      await reader.read(); // its first chunk: it is running
      return reader;
    }));
    const reqs = Array.from({ length: 16 }, (_, i) => PROMPTS[i % PROMPTS.length] + (i >= 8 ? ' ' : ''));
    const want = reqs.map((p) => greedy(chatIds(p), 30).text);
    const got = await Promise.all(reqs.map(async (p) => {
      const st = await client.chat.completions.create({ model: 'demo-moe', messages: [{ role: 'user', content: p }], max_tokens: 30, temperature: 0, stream: true });
      let text = '';
      for await (const c of st) text += c.choices[0]?.delta.content ?? '';
      return text;
    }));
    const mid = await (await fetch(url + '/moekit/stats')).json();
    stop.abort();
    await Promise.all(long.map((r) => r.cancel().catch(() => undefined)));
    expect(got).toEqual(want);
    expect(mid.running).toBeGreaterThanOrEqual(1); // the long streams outlived the 16
    expect(mid.maxBatch).toBeGreaterThan(4);
    const tokens = mid.tokens - before.tokens;
    expect(mid.steps - before.steps).toBeLessThan(tokens / 2); // far fewer forwards than tokens
    for (let t = 0; t < 100; t++) { // the cancelled streams free their slots
      const now = await (await fetch(url + '/moekit/stats')).json();
      if (now.running === 0 && now.queued === 0 && now.in_flight === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await (await fetch(url + '/moekit/stats')).json()).toMatchObject({ running: 0, queued: 0, in_flight: 0 });
  });

  it('/metrics is Prometheus text with requests, tokens, latencies and expert loads', async () => {
    const res = await fetch(url + '/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    const m = await res.text();
    expect(m).toMatch(/^moekit_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+$/m);
    expect(m).toMatch(/^# TYPE moekit_request_duration_seconds histogram$/m);
    expect(Number(/^moekit_generated_tokens_total (\d+)$/m.exec(m)![1])).toBeGreaterThan(100);
    expect(m).toMatch(/^moekit_time_to_first_token_seconds_count \d+$/m);
    // a streamed request counts once
    const count = (t: string) => Number(/^moekit_requests_total\{route="\/v1\/completions",status="200"\} (\d+)$/m.exec(t)?.[1] ?? 0);
    const before = count(m);
    await sse(await post(url, '/v1/completions', { prompt: 'add 1+1=', max_tokens: 3, stream: true }));
    expect(count(await (await fetch(url + '/metrics')).text())).toBe(before + 1);
    const loads = [...m.matchAll(/^moekit_expert_load_total\{moe_layer="(\d+)",expert="(\d+)"\} (\d+)$/gm)];
    expect(loads.length).toBe(4 * 16);
    // every token is routed to top-2 experts in each layer: each layer's loads sum to 2 × the positions run
    const perLayer = [0, 1, 2, 3].map((l) => loads.filter((x) => x[1] === String(l)).reduce((a, x) => a + Number(x[3]), 0));
    expect(perLayer[0]).toBeGreaterThan(0);
    expect(perLayer[0] % 2).toBe(0);
  });
});

describe('the MoE extensions', () => {
  let s: MoeServer, url: string, client: OpenAI;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-serve-'));
  beforeAll(async () => {
    ({ s, url } = await start({
      // a pattern store stand-in through the resolver seam: one named pattern
      patterns: (name) => {
        if (name !== 'evens') throw Object.assign(new Error(`no pattern '${name}'`), { statusCode: 400 });
        return { name: 'evens', keep: Object.fromEntries([0, 1, 2, 3].map((l) => [l, [0, 2, 4, 6, 8, 10, 12, 14]])) };
      },
    }));
    client = new OpenAI({ baseURL: url + '/v1', apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => { await s.close(); fs.rmSync(tmp, { recursive: true, force: true }); });

  const chat = (content: string, moekit: unknown, max = 30) =>
    client.chat.completions.create({ model: 'demo-moe', messages: [{ role: 'user', content }], max_tokens: max, temperature: 0, moekit } as never) as unknown as Promise<OpenAI.ChatCompletion & { moekit: any }>;

  it('moekit.submodel runs the sub-model: its text is the extracted checkpoint\'s', async () => {
    const layers = [0, 3];
    const experts = Object.fromEntries(Object.entries(firstExperts(model.desc, 4)).filter(([l]) => layers.includes(Number(l))));
    const out = path.join(tmp, 'sub');
    extractSubModel(DEMO, out, { layers, experts, topK: 1 });
    const sub = MoeModel.load(out);
    let differs = false;
    for (const p of PROMPTS) {
      const want = greedy(chatIds(p), 30, sub);
      const r = await chat(p, { submodel: { layers, experts: 4, top_k: 1 } });
      expect(r.choices[0].message.content).toBe(want.text);
      expect(r.moekit.submodel).toEqual({ layers, experts: [[0, 1, 2, 3], null, null, [0, 1, 2, 3]], top_k: [1, 1, 1, 1] });
      if (want.text !== greedy(chatIds(p), 30).text) differs = true;
    }
    expect(differs).toBe(true); // a different model from the full one
    // depth 2 = layers 0 and 3, the elastic grid's nesting
    const d2 = await chat(PROMPTS[0], { submodel: { depth: 2 } });
    expect(d2.moekit.submodel.layers).toEqual([0, 3]);
  });

  it('moekit.experts with a keep set runs that pattern: the text of the checkpoint extracted with it', async () => {
    const keep = Object.fromEntries([0, 1, 2, 3].map((l) => [l, [1, 3, 4, 7, 9, 12].map((e) => (e + 3 * l) % 16).sort((a, b) => a - b)]));
    const out = path.join(tmp, 'keep');
    extractSubModel(DEMO, out, { experts: keep });
    const pruned = MoeModel.load(out);
    let differs = false;
    for (const p of PROMPTS.slice(3, 6)) {
      const want = greedy(chatIds(p), 30, pruned);
      const r = await chat(p, { experts: { layers: keep } });
      expect(r.choices[0].message.content).toBe(want.text);
      expect(r.moekit.pattern).toBe('keep set');
      if (want.text !== greedy(chatIds(p), 30).text) differs = true;
    }
    expect(differs).toBe(true); // a different model from the full one
    // the same as flat "moekit.experts" (streamed too)
    const st = await post(url, '/v1/chat/completions', { messages: [{ role: 'user', content: PROMPTS[3] }], max_tokens: 30, temperature: 0, stream: true, 'moekit.experts': { layers: keep } });
    const { chunks, done } = await sse(st);
    expect(done).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(greedy(chatIds(PROMPTS[3]), 30, pruned).text);
  });

  it('a pattern name goes through the resolver; without a store it is a 400 saying so', async () => {
    const keep = Object.fromEntries([0, 1, 2, 3].map((l) => [l, [0, 2, 4, 6, 8, 10, 12, 14]]));
    const out = path.join(tmp, 'evens');
    extractSubModel(DEMO, out, { experts: keep });
    const r = await chat(PROMPTS[6], { experts: 'evens' });
    expect(r.choices[0].message.content).toBe(greedy(chatIds(PROMPTS[6]), 30, MoeModel.load(out)).text);
    expect(r.moekit.pattern).toBe('evens');
    const plain = await start();
    try {
      const res = await post(plain.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], moekit: { experts: 'auto' } });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({ param: 'moekit.experts', code: 'no_pattern_store', message: expect.stringMatching(/no pattern store loaded/) });
    } finally {
      await plain.s.close();
    }
  });

  it('moekit.trace returns every position\'s routing, as the model\'s tracer sees it', async () => {
    const p = PROMPTS[0];
    const ids = chatIds(p);
    const r = await chat(p, { trace: true }, 10);
    const n = r.usage!.completion_tokens;
    const routes = r.moekit.routes as { experts: number[][]; weights: number[][] }[];
    expect(routes.length).toBe(ids.length + n - 1);
    // the prompt's routing from one traced forward of the prompt alone
    const seen: number[][][] = [];
    model.forward(Int32Array.from(ids), 1, ids.length, { trace: { moe: (ev: MoeEvent) => { seen[ev.moeLayer] = Array.from({ length: ev.N }, (_, i) => Array.from(ev.experts.subarray(i * ev.K, (i + 1) * ev.K))); } } });
    for (let t = 0; t < ids.length; t++) {
      for (let m = 0; m < 4; m++) expect(routes[t].experts[m]).toEqual(seen[m][t]);
      expect(routes[t].weights[0].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3); // norm_topk_prob
    }
    // streamed: the chunks' routes, in order, are the same
    const { chunks } = await sse(await post(url, '/v1/chat/completions', { messages: [{ role: 'user', content: p }], max_tokens: 10, temperature: 0, stream: true, moekit: { trace: true } }));
    expect(chunks.flatMap((c) => c.moekit?.routes ?? [])).toEqual(routes);
  });

  it('bad MoE fields get a 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ submodel: { top_k: 99 } }, 'moekit.submodel.top_k'],
      [{ submodel: { layers: [3, 1] } }, 'moekit.submodel.layers'],
      [{ submodel: { experts: 17 } }, 'moekit.submodel.experts'],
      [{ experts: { layers: { 9: [1] } } }, 'moekit.experts.layers.9'],
      [{ experts: { layers: { 0: [1, 1] } } }, 'moekit.experts.layers.0'],
      [{ experts: { layers: { 0: [16] } } }, 'moekit.experts.layers.0'],
      [{ experts: { layers: { 0: [1] } }, submodel: { experts: 4 } }, 'moekit.submodel.experts'],
      [{ experts: { layers: { 0: [1] } }, submodel: { top_k: 2 } }, 'moekit.submodel.top_k'],
      [{ trace: 'yes' }, 'moekit.trace'],
      [{ bogus: 1 }, 'moekit.bogus'],
      ['experts', 'moekit'],
    ];
    for (const [moekit, param] of cases) {
      const res = await post(url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'add 1+1=' }], max_tokens: 4, moekit });
      expect(res.status, JSON.stringify(moekit)).toBe(400);
      expect((await res.json()).error.param, JSON.stringify(moekit)).toBe(param);
    }
  });
});

describe('bad input, capacity and disconnects: the right status, and the server keeps serving', () => {
  let s: MoeServer, url: string;
  const KEY = 'sk-test-1234';
  const auth = { authorization: `Bearer ${KEY}` };
  beforeAll(async () => { ({ s, url } = await start({ apiKey: KEY, slots: 2, maxQueue: 1, bodyLimit: 64 * 1024 })); });
  afterAll(() => s.close());

  const good = async () => {
    const want = greedy(chatIds(PROMPTS[0]), 8).text;
    const res = await post(url, '/v1/chat/completions', { messages: [{ role: 'user', content: PROMPTS[0] }], max_tokens: 8, temperature: 0 }, auth);
    expect(res.status).toBe(200);
    expect((await res.json()).choices[0].message.content).toBe(want);
  };

  it('the API key guards every route but /health', async () => {
    expect((await fetch(url + '/health')).status).toBe(200);
    for (const [route, init] of [['/v1/models', {}], ['/metrics', {}], ['/moekit/stats', {}], ['/v1/chat/completions', { method: 'POST', body: '{}' }]] as const) {
      const res = await fetch(url + route, { ...init, headers: { 'content-type': 'application/json' } });
      expect(res.status, route).toBe(401);
      expect((await res.json()).error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
      const wrong = await fetch(url + route, { ...init, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-wrong' } });
      expect(wrong.status, route).toBe(401);
    }
    const client = new OpenAI({ baseURL: url + '/v1', apiKey: 'sk-wrong', maxRetries: 0 });
    await expect(client.models.list()).rejects.toMatchObject({ status: 401 });
    const ok = new OpenAI({ baseURL: url + '/v1', apiKey: KEY, maxRetries: 0 });
    expect((await ok.models.list()).data[0].id).toBe('demo-moe');
    await good();
  });

  it('malformed JSON, wrong types and unknown models: 400 naming the field, 404', async () => {
    const bad = async (body: unknown, status: number, param: string | null, route = '/v1/chat/completions') => {
      const res = await post(url, route, body, auth);
      const e = (await res.json()).error;
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(e.param, JSON.stringify(body)).toBe(param);
      expect(typeof e.message).toBe('string');
      expect(e.type).toBeTypeOf('string');
      return e;
    };
    expect((await bad('{"messages": [', 400, null)).code).toBe('invalid_json');
    const xml = await fetch(url + '/v1/chat/completions', { method: 'POST', headers: { ...auth, 'content-type': 'application/xml' }, body: '<a/>' });
    expect(xml.status).toBe(415);
    expect((await xml.json()).error.code).toBe('unsupported_media_type');
    const plain = await fetch(url + '/v1/chat/completions', { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'hello' });
    expect(plain.status).toBe(400);
    expect((await plain.json()).error.param).toBe('body');
    await bad('[1, 2]', 400, 'body');
    const msg = (extra: object) => ({ messages: [{ role: 'user', content: 'add 1+1=' }], ...extra });
    expect((await bad(msg({ temperature: 'hot' }), 400, 'temperature')).message).toMatch(/'temperature' must be a number/);
    await bad(msg({ max_tokens: -1 }), 400, 'max_tokens');
    await bad(msg({ max_tokens: 1.5 }), 400, 'max_tokens');
    await bad(msg({ max_tokens: 100000 }), 400, 'max_tokens');
    await bad(msg({ top_p: 2 }), 400, 'top_p');
    await bad(msg({ seed: 'x' }), 400, 'seed');
    await bad(msg({ stream: 'yes' }), 400, 'stream');
    await bad(msg({ stop: 5 }), 400, 'stop');
    await bad(msg({ n: 2 }), 400, 'n');
    await bad({ messages: 'hi' }, 400, 'messages');
    await bad({ messages: [] }, 400, 'messages');
    await bad({ messages: [{ role: 'wizard', content: 'x' }] }, 400, 'messages[0].role');
    await bad({ messages: [{ role: 'user', content: 7 }] }, 400, 'messages[0].content');
    await bad({ prompt: { text: 'x' } }, 400, 'prompt', '/v1/completions');
    await bad({ prompt: [1, 2, 999] }, 400, 'prompt', '/v1/completions');
    await bad({ content: 3 }, 400, 'content', '/tokenize');
    await bad({ tokens: [-1] }, 400, 'tokens', '/detokenize');
    expect((await bad(msg({ model: 'gpt-4o' }), 404, 'model')).code).toBe('model_not_found');
    const res = await fetch(url + '/v1/models/gpt-4o', { headers: auth });
    expect(res.status).toBe(404);
    expect((await fetch(url + '/no/such/route', { headers: auth })).status).toBe(404);
    await good();
  });

  it('a huge body gets 413', async () => {
    const res = await post(url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x'.repeat(200 * 1024) }] }, auth);
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe('request_too_large');
    await good();
  });

  it('past slots + queue the next request gets 429; the others finish', async () => {
    const long = () => post(url, '/v1/completions', { prompt: 'draw 11=', max_tokens: 400, temperature: 1, seed: 1, ignore_eos: true }, auth).then((r) => ({ r }));
    const first = [long(), long(), long()]; // 2 running + 1 queued
    await new Promise((w) => setTimeout(w, 100));
    const stats = await (await fetch(url + '/moekit/stats', { headers: auth })).json();
    expect(stats.in_flight).toBe(3);
    const res = await post(url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }, auth);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect((await res.json()).error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
    for (const f of await Promise.all(first)) {
      expect(f.r.status).toBe(200);
      expect((await f.r.json()).usage.completion_tokens).toBe(400);
    }
    await good();
  });

  it('a client that disconnects mid-stream cancels its sequence and frees its slot', async () => {
    const res = await post(url, '/v1/completions', { prompt: 'draw 12=', max_tokens: 490, temperature: 1, seed: 3, stream: true, ignore_eos: true }, auth);
    const reader = res.body!.getReader();
    let got = '';
    while (!got.includes('"text"')) got += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel(); // the client goes away
    let stats: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      stats = await (await fetch(url + '/moekit/stats', { headers: auth })).json();
      if (stats.running === 0 && stats.in_flight === 0) break;
      await new Promise((w) => setTimeout(w, 20));
    }
    expect(stats).toMatchObject({ running: 0, queued: 0, in_flight: 0 });
    const m = await (await fetch(url + '/metrics', { headers: auth })).text();
    expect(Number(/^moekit_requests_cancelled_total (\d+)$/m.exec(m)![1])).toBeGreaterThanOrEqual(1);
    // it stopped early: fewer tokens than asked (the three 429-test requests made 1,200, the good ones 8 each)
    expect(Number(/^moekit_scheduler_tokens_total (\d+)$/m.exec(m)![1])).toBeLessThan(1200 + 5 * 8 + 490);
    await good();
  });
});

describe('loading', () => {
  it('/health is 503 while the model loads, then ok; a bad model directory gives 500 load_failed', async () => {
    const s = createServer({ dir: DEMO, webRoot: null });
    try {
      const early = await s.app.inject({ method: 'GET', url: '/health' });
      expect(early.statusCode).toBe(503);
      expect(early.json().error).toMatchObject({ type: 'unavailable_error', code: 'loading' });
      const chat = await s.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { messages: [{ role: 'user', content: 'x' }] } });
      expect(chat.statusCode).toBe(503);
      await s.ready;
      expect((await s.app.inject({ method: 'GET', url: '/health' })).json()).toEqual({ status: 'ok' });
    } finally {
      await s.close();
    }
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-bad-'));
    fs.writeFileSync(path.join(tmp, 'config.json'), '{"model_type": "nope"}');
    const b = createServer({ dir: tmp, webRoot: null });
    try {
      await b.ready.catch(() => {});
      const h = await b.app.inject({ method: 'GET', url: '/health' });
      expect(h.statusCode).toBe(500);
      expect(h.json().error.code).toBe('load_failed');
    } finally {
      await b.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('the moekit serve command', () => {
  const bin = path.resolve(__dirname, '../bin/moekit.js');
  const run = async (args: string[]) => {
    const { spawnSync } = await import('node:child_process');
    return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000 });
  };

  it('--help exits 0; bad flags and directories fail on one line', async () => {
    const h = await run(['serve', '--help']);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^usage: moekit serve \[MODEL_DIR\]/);
    for (const [args, msg] of [
      [['serve', '--port', 'http'], /--port must be an integer ≥ 0 and ≤ 65535, got 'http'/],
      [['serve', '--slots', '0'], /--slots must be an integer ≥ 1/],
      [['serve', '--bogus'], /Unknown option '--bogus'/],
      [['serve', '/no/such/dir'], /\/no\/such\/dir: no config.json: not a model directory/],
    ] as const) {
      const r = await run([...args]);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
  });

  it('serves the demo model by default and stops on SIGTERM', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d) => { err += d; const m = /moekit serve: (http:\/\/\S+) \(/.exec(err); if (m) resolve(m[1]); });
      child.on('exit', (c) => reject(new Error(`exited ${c}: ${err}`)));
    });
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) { ok = (await fetch(url + '/health')).status === 200; if (!ok) await new Promise((w) => setTimeout(w, 50)); }
    expect(ok).toBe(true);
    expect((await (await fetch(url + '/v1/models')).json()).data[0].id).toBe('demo-moe');
    expect((await fetch(url + '/')).headers.get('content-type')).toMatch(/text\/html/);
    const code = await new Promise<number | null>((resolve) => { child.on('exit', resolve); child.kill('SIGTERM'); });
    expect(code).toBe(0);
    expect(err).toMatch(/moekit serve: stopping/);
  });
});
