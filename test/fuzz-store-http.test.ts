/**
 * Property-based fuzzing (fast-check) of the inputs that arrived with PreMoe and the server: pattern stores (a real
 * store of the demo model with values replaced, keys deleted, or its text cut short) and HTTP request bodies (the
 * OpenAI routes with fields of every type). A store is read and used (every task's pattern at a budget, retrieval
 * from a vector) or refused with one MoekitError line naming the file; a request gets 200 or an OpenAI-shaped 4xx
 * whose message is one line, and the server keeps answering. Seeded; MOEKIT_FUZZ_RUNS multiplies the cases.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinSource, profileTasks } from '../src/experts/profile.js';
import { patternBudget, taskPattern } from '../src/experts/pattern.js';
import { nearestTask } from '../src/experts/retrieval.js';
import { newStore, readStore } from '../src/experts/store.js';
import { MoeModel } from '../src/models/model.js';
import { createServer, type MoeServer } from '../src/server/app.js';
import { taskByName } from '../src/tasks/index.js';
import { MoekitError } from '../src/util/errors.js';
import { scratchDir } from './helpers.js';

const SEED = Number(process.env.MOEKIT_FUZZ_SEED ?? 20261202);
const SCALE = Number(process.env.MOEKIT_FUZZ_RUNS ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const DEMO = path.resolve(__dirname, '../examples/demo-moe');
const tmp = scratchDir('moekit-fuzz2-');

const badValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -4, max: 20 }),
  fc.constantFrom(0, -1, 2 ** 31, 2 ** 53 + 1, 1e308, -1e308, 1e-300, 0.5, 1.5),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 6 }),
  fc.constantFrom(null, true, false, '', 'tcess', 'general', 'auto'),
  fc.array(fc.integer({ min: -2, max: 20 }), { maxLength: 4 }),
  fc.dictionary(fc.constantFrom('0', '1', '3', 'x', 'layers'), fc.array(fc.integer({ min: -1, max: 17 }), { maxLength: 3 }), { maxKeys: 3 }),
);

describe('pattern stores', () => {
  let storeText: string;
  let model: MoeModel;
  beforeAll(async () => {
    model = MoeModel.load(DEMO);
    const file = path.join(tmp(), 'store.json');
    await profileTasks(model, model.desc, file, newStore(DEMO), ['sort', 'draw'].map((t) => builtinSource(taskByName(t))), { n: 4 });
    storeText = fs.readFileSync(file, 'utf8');
  }, 60_000);

  /** every [path] into a JSON value (objects and arrays), to pick one to change */
  const paths = (v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] => {
    if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) { const p = [...at, Array.isArray(v) ? Number(k) : k]; out.push(p); paths(x, p, out); }
    }
    return out;
  };

  it('read and used, or one line naming the store', () => {
    let ok = 0, refused = 0;
    const file = path.join(tmp(), 'fuzzed.json');
    const all = paths(JSON.parse(storeText));
    fc.assert(fc.property(fc.nat({ max: all.length - 1 }), fc.oneof(badValue, fc.constant(undefined)), fc.option(fc.nat({ max: storeText.length })), fc.nat({ max: 15 }), (pi, value, cut, M) => {
      const doc = JSON.parse(storeText);
      const p = all[pi];
      let o = doc;
      for (const k of p.slice(0, -1)) o = o[k];
      if (value === undefined) delete o[p[p.length - 1]]; else o[p[p.length - 1]] = value;
      let text = JSON.stringify(doc);
      if (cut !== null) text = storeText.slice(0, cut);
      fs.writeFileSync(file, text);
      const t0 = Date.now();
      try {
        const s = readStore(file, DEMO);
        const b = patternBudget(model.desc, M + 1);
        for (const task of [...Object.keys(s.tasks), 'general']) {
          try { taskPattern(s, model.desc, task, 'tcess', b, file); } catch (e) { if (!(e instanceof MoekitError)) throw e; }
        }
        try { nearestTask(s, new Float64Array(64).fill(0.1)); } catch (e) { if (!(e instanceof MoekitError)) throw e; }
        ok++;
      } catch (e) {
        if (!(e instanceof MoekitError)) throw new Error(`not a MoekitError at ${JSON.stringify(p)} = ${JSON.stringify(value)} cut ${cut}: ${(e as Error)?.stack}`);
        expect(e.oneLine()).not.toContain('\n');
        refused++;
      }
      expect(Date.now() - t0).toBeLessThan(3000);
    }), { seed: SEED, numRuns: runs(200) });
    expect(ok + refused).toBeGreaterThan(0);
    if (process.env.MOEKIT_FUZZ_REPORT) console.log(`fuzz pattern stores: ${ok} read and used, ${refused} refused`);
  }, 120_000);
});

describe('HTTP bodies', () => {
  let s: MoeServer, url: string;
  beforeAll(async () => {
    s = createServer({ dir: DEMO, webRoot: null });
    url = await s.listen('127.0.0.1', 0);
    await s.ready;
  }, 60_000);
  afterAll(async () => { await s?.close(); });

  /** mostly a well-formed value, sometimes a hostile one */
  const mostly = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 6, arbitrary: good }, { weight: 1, arbitrary: badValue });
  const message = mostly(fc.record({ role: mostly(fc.constantFrom('user', 'system', 'assistant')), content: mostly(fc.constantFrom('sort 3142=', 'add 1+2=', 'draw 42=', '')) }));
  const body = fc.record({
    model: mostly(fc.constant('demo-moe')),
    messages: mostly(fc.array(message, { minLength: 1, maxLength: 3 })),
    prompt: mostly(fc.constantFrom('sort 3142=', 'add 1+2=')),
    max_tokens: mostly(fc.integer({ min: 0, max: 24 })),
    temperature: mostly(fc.double({ min: 0, max: 2, noNaN: true })),
    top_p: mostly(fc.double({ min: 0.05, max: 1, noNaN: true })),
    seed: mostly(fc.nat({ max: 1000 })),
    stop: mostly(fc.array(fc.string({ minLength: 1, maxLength: 3 }), { maxLength: 3 })),
    stream: mostly(fc.boolean()),
    moekit: mostly(fc.record({
      experts: mostly(fc.constant({ layers: { 0: [0, 1, 2, 3], 1: [0, 1, 2, 3], 2: [0, 1, 2, 3], 3: [0, 1, 2, 3] } })),
      submodel: mostly(fc.record({ depth: mostly(fc.constantFrom(2, 3, 4)), experts: mostly(fc.constantFrom(4, 8, 16)), top_k: mostly(fc.constantFrom(1, 2)) }, { requiredKeys: [] })),
      trace: mostly(fc.boolean()),
    }, { requiredKeys: [] })),
  }, { requiredKeys: ['max_tokens'] });

  it('200 or an OpenAI-shaped 4xx of one line, and the server keeps serving', async () => {
    const counts: Record<number, number> = {};
    await fc.assert(fc.asyncProperty(fc.constantFrom('/v1/chat/completions', '/v1/completions', '/tokenize', '/detokenize'), body, fc.boolean(), async (route, b, raw) => {
      const text = raw ? JSON.stringify(b).slice(0, Math.max(1, JSON.stringify(b).length - 3)) : JSON.stringify(b);
      const res = await fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text, signal: AbortSignal.timeout(20_000) });
      counts[res.status] = (counts[res.status] ?? 0) + 1;
      const out = await res.text();
      expect([200, 400, 404, 413, 415, 422, 429], `${route} ${text} → ${res.status} ${out.slice(0, 200)}`).toContain(res.status);
      if (res.status >= 400) {
        const err = JSON.parse(out).error;
        expect(typeof err.message).toBe('string');
        expect(err.message).not.toContain('\n');
      }
    }), { seed: SEED, numRuns: runs(150) });
    if (process.env.MOEKIT_FUZZ_REPORT) console.log(`fuzz HTTP bodies by status: ${JSON.stringify(counts)}`);
    expect((await fetch(url + '/health')).status).toBe(200);
    expect(counts[200] ?? 0).toBeGreaterThan(0);
    expect(Object.keys(counts).some((k) => Number(k) >= 400)).toBe(true);
  }, 240_000);
});
