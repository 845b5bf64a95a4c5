/**
 * The dashboard's jobs (src/server/jobs.ts): `POST /moekit/jobs` runs the real CLI in a child process and streams its
 * typed events. A profile job's store holds what an in-process profile of the same tasks and examples holds, and
 * becomes the server's pattern store (moekit.experts: "auto" then runs its patterns); a train job streams the
 * trainer's events (start, one step per step with the loss the run's metrics.jsonl records, done) and writes its
 * checkpoint; DELETE cancels; bad bodies are 400s naming the field, a second job while one runs is a 409.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinSource, profileTasks } from '../src/experts/profile.js';
import { newStore, readStore } from '../src/experts/store.js';
import { MoeModel } from '../src/models/model.js';
import { createServer, type MoeServer } from '../src/server/app.js';
import { taskByName } from '../src/tasks/index.js';

const DEMO = path.resolve(__dirname, '../examples/demo-moe');
let tmp: string, s: MoeServer, url: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-jobs-test-'));
  s = createServer({ dir: DEMO, webRoot: null, jobsDir: path.join(tmp, 'jobs') });
  url = await s.listen('127.0.0.1', 0);
  await s.ready;
}, 60_000);
afterAll(async () => { await s?.close(); fs.rmSync(tmp, { recursive: true, force: true }); });

const post = async (body: unknown) => {
  const res = await fetch(url + '/moekit/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() as any };
};
/** every event of a job's stream, to its end */
async function events(id: string): Promise<any[]> {
  const res = await fetch(`${url}/moekit/jobs/${id}/events`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)));
}

describe('jobs', () => {
  it('a profile job: progress events, the store an in-process profile makes, then served as the pattern store', async () => {
    const before = await (await fetch(url + '/moekit/premoe')).json() as any;
    expect(before.store).toBeNull();
    const r = await post({ kind: 'profile', tasks: ['sort', 'draw'], n: 6 });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ kind: 'profile', status: 'running' });
    const evs = await events(r.body.id);
    const end = evs.at(-1);
    expect(end, JSON.stringify(end)).toMatchObject({ type: 'end', status: 'done', error: null });
    const all = evs.filter((e) => e.type === 'progress').map((e) => e.event);
    // the model's load (the events the terminal bar draws), then the profile's
    expect(all[0]).toMatchObject({ status: 'initiate', task: 'load demo-moe' });
    expect(all.some((p) => p.status === 'ready' && p.task === 'load demo-moe')).toBe(true);
    const prog = all.filter((p) => p.task === 'profile');
    expect(prog[0]).toMatchObject({ status: 'initiate', total: 12 });
    expect(prog.filter((p) => p.status === 'progress').map((p) => p.loaded)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(prog.at(-1)).toMatchObject({ status: 'done' });
    // the same profile in-process
    const mine = path.join(tmp, 'mine.json');
    const model = MoeModel.load(DEMO);
    await profileTasks(model, model.desc, mine, newStore(DEMO), ['sort', 'draw'].map((t) => builtinSource(taskByName(t))), { n: 6 });
    // equal to float32 rounding: the job runs in the worker thread, whose kernels may split the GEMMs over another
    // number of threads than this process's (seen on an AVX2-only EPYC: REAP scores 1e-7 apart); counts stay exact
    const numbers: number[][] = [[], []];
    const shape = (v: unknown, out: number[]): unknown => (typeof v === 'number' && !Number.isInteger(v) ? (out.push(v), 'x')
      : Array.isArray(v) ? v.map((x) => shape(x, out)) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x, out)])) : v);
    expect(shape(readStore(end.out, DEMO).tasks, numbers[0])).toEqual(shape(readStore(mine, DEMO).tasks, numbers[1]));
    expect(numbers[0].length).toBeGreaterThan(0);
    numbers[0].forEach((v, i) => expect(Math.abs(v - numbers[1][i]), `value ${i}: ${v} vs ${numbers[1][i]}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(numbers[1][i]))));
    // now the server's pattern store
    const after = await (await fetch(url + '/moekit/premoe')).json() as any;
    expect(after.store).toBe(end.out);
    expect(after.tasks).toEqual(['sort', 'draw']);
    const chat = await fetch(url + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'sort 3142=' }], max_tokens: 8, temperature: 0, moekit: { experts: 'auto' } }),
    });
    expect(chat.status).toBe(200);
    expect(((await chat.json()) as any).moekit.pattern).toBe('sort');
    const list = await (await fetch(url + '/moekit/jobs')).json() as any;
    expect(list.jobs[0]).toMatchObject({ id: r.body.id, status: 'done', progress: { loaded: 12, total: 12 } });
  }, 120_000);

  it('a train job: the trainer\'s events, the losses of its metrics log, its checkpoint', async () => {
    const r = await post({ kind: 'train', steps: 3, set: { 'train.workers': 1, 'train.batch_size': 2, 'train.grad_accum': 1, 'checkpoint.every': 3 } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const evs = await events(r.body.id);
    expect(evs.at(-1), JSON.stringify(evs.at(-1))).toMatchObject({ type: 'end', status: 'done' });
    const tr = evs.filter((e) => e.type === 'train').map((e) => e.event);
    expect(tr[0]).toMatchObject({ type: 'start', step: 0, steps: 3 });
    const steps = tr.filter((e) => e.type === 'step');
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3]);
    const logged = fs.readFileSync(path.join(r.body.out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(steps.map((e) => e.loss)).toEqual(logged.map((e) => e.loss));
    for (const e of steps) expect(Number.isFinite(e.loss) && e.loss > 0).toBe(true);
    expect(tr.at(-1)).toMatchObject({ type: 'done', step: 3 });
    expect(fs.existsSync(path.join(tr.at(-1).dir, 'model.safetensors'))).toBe(true);
  }, 180_000);

  it('one job at a time (409), cancel (DELETE), 404 for an unknown job', async () => {
    const r = await post({ kind: 'train', steps: 100000, set: { 'train.workers': 1 } });
    expect(r.status).toBe(202);
    const again = await post({ kind: 'profile' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('job_running');
    const del = await fetch(`${url}/moekit/jobs/${r.body.id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    const evs = await events(r.body.id);
    expect(evs.at(-1)).toMatchObject({ type: 'end', status: 'cancelled' });
    expect((await fetch(`${url}/moekit/jobs/nope`)).status).toBe(404);
    expect((await fetch(`${url}/moekit/jobs/nope/events`)).status).toBe(404);
  }, 120_000);

  it('bad bodies are 400s naming the field', async () => {
    const cases: [unknown, string][] = [
      [{}, 'kind'], [{ kind: 'sing' }, 'kind'], [[1], 'body'],
      [{ kind: 'profile', tasks: ['nope'] }, 'tasks'], [{ kind: 'profile', tasks: [] }, 'tasks'], [{ kind: 'profile', n: 0 }, 'n'],
      [{ kind: 'profile', extra: 1 }, 'extra'],
      [{ kind: 'train', steps: -1 }, 'steps'], [{ kind: 'train', recipe: 'huge' }, 'recipe'],
      [{ kind: 'train', set: { out: '/etc' } }, 'set.out'], [{ kind: 'train', set: { 'train.lr': 'fast' } }, 'set'],
      [{ kind: 'train', set: 3 }, 'set'],
    ];
    for (const [body, param] of cases) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.param, JSON.stringify(body)).toBe(param);
    }
    const r = await post({ kind: 'train', set: { 'train.lr': 'fast' } });
    expect(r.body.error.message).toMatch(/train\.lr/);
  });
});
