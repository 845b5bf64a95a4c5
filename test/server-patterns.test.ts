/**
 * `moekit serve --store STORE`: moekit.experts names a stored task ("sort"), "general", or "auto" (retrieved from the
 * prompt); the text is what the checkpoint pruned to that pattern's kept set gives; unknown names and a store of
 * another model are refused.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinSource, profileTasks } from '../src/experts/profile.js';
import { keepOf, newStore, patternOf, readStore } from '../src/experts/store.js';
import { loadTokenizer, type TextTokenizer } from '../src/io/tokenizer.js';
import { extractSubModel } from '../src/models/extract.js';
import { MoeModel } from '../src/models/model.js';
import { generate } from '../src/runtime/generate.js';
import { createServer, type MoeServer } from '../src/server/app.js';
import { storeResolver } from '../src/server/patterns.js';
import { taskByName } from '../src/tasks/index.js';

const DEMO = path.resolve(__dirname, '../examples/demo-moe');
const FIXTURE = path.resolve(__dirname, '../fixtures/hf-tiny-moe/qwen3_moe');
let tmp: string, file: string, model: MoeModel, tok: TextTokenizer, s: MoeServer, url: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-serve-store-'));
  file = path.join(tmp, 'store.json');
  model = MoeModel.load(DEMO);
  tok = loadTokenizer(DEMO)!;
  await profileTasks(model, model.desc, file, newStore(DEMO), ['sort', 'draw'].map((t) => builtinSource(taskByName(t))), { n: 24 });
  const r = storeResolver(DEMO, file, { keepExperts: 2 });
  expect(r.info).toMatchObject({ tasks: ['sort', 'draw'], keepExperts: 2, score: 'tcess' });
  s = createServer({ dir: DEMO, webRoot: null, patterns: r.resolve });
  url = await s.listen('127.0.0.1', 0);
  await s.ready;
}, 120_000);
afterAll(async () => { await s?.close(); fs.rmSync(tmp, { recursive: true, force: true }); });

const chat = async (content: string, experts: unknown, trace = false) => {
  const res = await fetch(url + '/v1/chat/completions', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: 80, temperature: 0, moekit: { experts, trace } }),
  });
  return { status: res.status, body: await res.json() as any };
};
/** greedy text of the checkpoint pruned to `task`'s 4 kept experts per layer (tcess) */
function prunedText(task: string, prompt: string): string {
  const st = readStore(file, DEMO);
  const keep = keepOf(st, model.desc, patternOf(st, task), 'tcess', 2);
  const out = path.join(tmp, `pruned-${task}`);
  if (!fs.existsSync(out)) extractSubModel(DEMO, out, { experts: keep });
  const ids = tok.applyChatTemplate([{ role: 'user', content: prompt }], true);
  const r = generate(MoeModel.load(out), ids, { maxNewTokens: 80, greedy: true });
  return tok.decode(r.ids.slice(ids.length));
}

describe('moekit serve with a pattern store', () => {
  it('a stored task\'s name runs its pattern: the text of the checkpoint pruned to it', async () => {
    const st = readStore(file, DEMO);
    for (const [task, prompt] of [['sort', 'sort 3142='], ['draw', 'draw 42='], ['sort', 'draw 42=']] as const) {
      const r = await chat(prompt, task, true);
      expect(r.status).toBe(200);
      expect(r.body.moekit.pattern).toBe(task);
      expect(r.body.choices[0].message.content).toBe(prunedText(task, prompt));
      // every token was routed within the pattern's kept experts (2 of 16 per layer)
      const keep = keepOf(st, model.desc, patternOf(st, task), 'tcess', 2);
      const routes = r.body.moekit.routes as { experts: number[][] }[];
      expect(routes.length).toBeGreaterThan(4);
      for (const pos of routes) pos.experts.forEach((ex, l) => { for (const e of ex) expect(keep[l], `layer ${l}`).toContain(e); });
    }
  });

  it('"auto" retrieves the task from the prompt', async () => {
    for (const [task, prompt] of [['sort', 'sort 90817='], ['draw', 'draw 05=']] as const) {
      const r = await chat(prompt, 'auto');
      expect(r.status).toBe(200);
      expect(r.body.moekit.pattern).toBe(task);
      expect(r.body.choices[0].message.content).toBe(prunedText(task, prompt));
    }
  });

  it('an unknown pattern is a 400 naming moekit.experts and listing the store\'s patterns', async () => {
    const r = await chat('sort 12=', 'caesar');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: 'moekit.experts', code: 'unknown_pattern', message: expect.stringMatching(/sort, draw/) });
    expect((await chat('sort 21=', 'sort')).status).toBe(200); // still serving
  });

  it('a store of another model is refused when the server starts', () => {
    expect(() => storeResolver(FIXTURE, file)).toThrow(/model|identity/i);
    expect(() => storeResolver(DEMO, file, { score: 'loudest' })).toThrow(/--score must be one of/);
  });
});
