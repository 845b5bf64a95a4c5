/**
 * Long jobs the dashboard starts and follows: PreMoe profiling of the served model (`moekit experts profile`) and
 * training (`moekit train`), each the real CLI in a child process (the server keeps serving; a job that crashes
 * takes nothing down), reporting the same typed events the terminal bar draws:
 *   profile: ProgressEvents (src/util/progress.ts), which the CLI writes as JSON lines on stderr under
 *            MOEKIT_PROGRESS=jsonl (src/cli/bar.ts);
 *   train:   TrainEvents (src/train/loop.ts), from `moekit train --json` on stdout.
 * Routes:
 *   POST   /moekit/jobs            {"kind": "profile", "tasks"?: "all" | "text" | "image" | [names], "n"?: 1..4096}
 *                                  {"kind": "train", "recipe"?: "demo", "steps"?: N, "set"?: {"train.lr": 0.001, ...}}
 *                                  → 202 the job; 409 job_running while another runs; 400 naming a bad field
 *   GET    /moekit/jobs            every job of this server, newest first
 *   GET    /moekit/jobs/:id        one job
 *   GET    /moekit/jobs/:id/events server-sent events: every event so far, then live ones; the last is {"type": "end"}
 *   DELETE /moekit/jobs/:id        cancel (SIGTERM: training checkpoints are kept, `moekit train --resume` continues)
 * Each job writes under the jobs directory (`moekit serve --jobs-dir`, default a fresh one in the temp directory):
 * JOBS/<id>/store (profile) or JOBS/<id>/run (train, with its config.yaml beside). A finished profile becomes the
 * server's pattern store at once (`onStore`), so `moekit.experts: "auto"` runs its patterns.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { TASKS } from '../tasks/registry.js';
import { resolveConfig } from '../train/config.js';
import type { TrainEvent } from '../train/loop.js';
import { recipe, RECIPES } from '../train/recipes.js';
import { MoekitError } from '../util/errors.js';
import type { ProgressEvent } from '../util/progress.js';
import { ApiError, badField } from './errors.js';

export type JobKind = 'profile' | 'train';
export type JobStatus = 'running' | 'done' | 'failed' | 'cancelled';
export type JobEvent =
  | { type: 'progress'; event: ProgressEvent }
  | { type: 'train'; event: TrainEvent }
  | { type: 'end'; status: Exclude<JobStatus, 'running'>; error: string | null; out: string };

export interface JobView {
  id: string; kind: JobKind; status: JobStatus; created: number; ended: number | null;
  /** the job's output: the pattern store (profile) or the run directory (train) */
  out: string;
  args: string[];
  error: string | null;
  /** the last progress: loaded of total (profile: examples, train: steps) */
  progress: { loaded: number; total: number } | null;
}

interface Job extends JobView { child: ChildProcess | null; events: JobEvent[]; listeners: Set<(e: JobEvent) => void>; stderrTail: string }

/** the CLI this package runs (bin/moekit.js), from dist/server or src/server */
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/moekit.js');
/** events a job keeps for late subscribers (a long training run's steps beyond this: the last ones) */
const MAX_EVENTS = 20_000;

export interface JobsOptions {
  /** the served model */
  dir: string;
  /** where jobs write (called when the first job starts) */
  jobsDir: () => string;
  /** called with a profile job's finished store */
  onStore?: (store: string) => void;
}

export class Jobs {
  private readonly jobs = new Map<string, Job>();
  private seq = 0;
  private root: string | null = null;
  constructor(private readonly o: JobsOptions) {}

  list(): JobView[] {
    return [...this.jobs.values()].reverse().map(view);
  }
  get(id: string): Job {
    const j = this.jobs.get(id);
    if (!j) throw new ApiError(404, `no job '${id}'`, 'invalid_request_error', 'id', 'not_found');
    return j;
  }

  /** validate a POST body and start the job it asks for */
  start(body: unknown): JobView {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badField('body', 'must be a JSON object');
    const b = body as Record<string, unknown>;
    const running = [...this.jobs.values()].find((j) => j.status === 'running');
    if (running) throw new ApiError(409, `job ${running.id} (${running.kind}) is running: wait for it or DELETE /moekit/jobs/${running.id}`, 'invalid_request_error', null, 'job_running');
    const id = `job-${++this.seq}-${Date.now().toString(36)}`;
    const dir = path.join((this.root ??= this.o.jobsDir()), id);
    let args: string[], out: string;
    if (b.kind === 'profile') {
      for (const k of Object.keys(b)) if (!['kind', 'tasks', 'n'].includes(k)) throw badField(k, 'is not a field of a profile job (kind, tasks, n)');
      const tasks = profileTasks(b.tasks);
      const n = b.n === undefined ? 32 : b.n;
      if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 4096) throw badField('n', 'must be an integer in [1, 4096] (examples per task)');
      out = path.join(dir, 'store');
      args = ['experts', 'profile', this.o.dir, '--store', out, '--tasks', tasks, '--n', String(n)];
    } else if (b.kind === 'train') {
      for (const k of Object.keys(b)) if (!['kind', 'recipe', 'steps', 'set'].includes(k)) throw badField(k, 'is not a field of a train job (kind, recipe, steps, set)');
      const name = b.recipe === undefined ? 'demo' : b.recipe;
      if (typeof name !== 'string' || !RECIPES[name]) throw badField('recipe', `must be one of ${Object.keys(RECIPES).join(', ')}`);
      const raw = recipe(name);
      out = path.join(dir, 'run');
      raw.out = out;
      if (b.steps !== undefined) {
        if (!Number.isInteger(b.steps) || (b.steps as number) < 1 || (b.steps as number) > 1e7) throw badField('steps', 'must be an integer in [1, 10^7]');
        setPath(raw, 'train.steps', b.steps);
      }
      if (b.set !== undefined) {
        if (typeof b.set !== 'object' || b.set === null || Array.isArray(b.set)) throw badField('set', 'must be an object of {"key.sub": value}');
        for (const [k, v] of Object.entries(b.set)) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(k) || k === 'out' || k.startsWith('out.')) throw badField(`set.${k}`, 'must be a dotted config key other than out');
          setPath(raw, k, v);
        }
      }
      try {
        resolveConfig(structuredClone(raw), dir); // the CLI would refuse it: say why now, naming the key
      } catch (e) {
        if (e instanceof MoekitError) throw new ApiError(400, `train config: ${e.message}`, 'invalid_request_error', 'set', 'invalid_value');
        throw e;
      }
      fs.mkdirSync(dir, { recursive: true });
      const cfg = path.join(dir, 'config.yaml');
      fs.writeFileSync(`${cfg}.tmp`, JSON.stringify(raw, null, 1) + '\n'); // JSON is YAML
      fs.renameSync(`${cfg}.tmp`, cfg);
      args = ['train', cfg, '--json'];
    } else {
      throw badField('kind', `must be "profile" or "train", got ${JSON.stringify(b.kind)}`);
    }
    fs.mkdirSync(dir, { recursive: true });
    const job: Job = {
      id, kind: b.kind as JobKind, status: 'running', created: Date.now(), ended: null, out, args, error: null, progress: null,
      child: null, events: [], listeners: new Set(), stderrTail: '',
    };
    this.jobs.set(id, job);
    this.run(job);
    return view(job);
  }

  cancel(id: string): JobView {
    const j = this.get(id);
    if (j.status === 'running' && j.child) { j.status = 'cancelled'; j.child.kill('SIGTERM'); }
    return view(j);
  }

  /** every event so far, then live ones, until the end event; returns the unsubscribe */
  subscribe(id: string, fn: (e: JobEvent) => void): () => void {
    const j = this.get(id);
    for (const e of j.events) fn(e);
    if (j.status !== 'running' && j.events.at(-1)?.type === 'end') return () => {};
    j.listeners.add(fn);
    return () => j.listeners.delete(fn);
  }

  /** stop every running job (the server is closing) */
  close(): void {
    for (const j of this.jobs.values()) if (j.status === 'running' && j.child) { j.status = 'cancelled'; j.child.kill('SIGTERM'); }
  }

  private emit(j: Job, e: JobEvent): void {
    j.events.push(e);
    if (j.events.length > MAX_EVENTS) j.events.splice(1, j.events.length - MAX_EVENTS); // keep the first (the start)
    if (e.type === 'progress' && e.event.status === 'progress') j.progress = { loaded: e.event.loaded, total: e.event.total };
    if (e.type === 'progress' && e.event.status === 'initiate') j.progress = { loaded: 0, total: e.event.total };
    if (e.type === 'train' && (e.event.type === 'step' || e.event.type === 'start')) j.progress = { loaded: e.event.step, total: e.event.steps };
    for (const fn of j.listeners) fn(e);
  }

  private run(j: Job): void {
    const child = spawn(process.execPath, [BIN, ...j.args], {
      env: { ...process.env, MOEKIT_PROGRESS: 'jsonl' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    j.child = child;
    lines(child.stdout!, (l) => {
      if (j.kind !== 'train' || !l.startsWith('{')) return;
      try { this.emit(j, { type: 'train', event: JSON.parse(l) as TrainEvent }); } catch { /* not an event */ }
    });
    lines(child.stderr!, (l) => {
      if (l.startsWith('{')) {
        try {
          const ev = JSON.parse(l) as ProgressEvent;
          if (typeof ev === 'object' && ev !== null && typeof ev.status === 'string') { this.emit(j, { type: 'progress', event: ev }); return; }
        } catch { /* a plain line */ }
      }
      j.stderrTail = (j.stderrTail + l + '\n').slice(-4000);
    });
    child.on('error', (e) => this.finish(j, 'failed', `could not start the job: ${e.message}`));
    child.on('close', (code, signal) => {
      if (j.status === 'cancelled') return this.finish(j, 'cancelled', null);
      if (code === 0) return this.finish(j, 'done', null);
      const tail = j.stderrTail.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
      this.finish(j, 'failed', `exited with ${code !== null ? `code ${code}` : `signal ${signal}`}${tail ? `: ${tail}` : ''}`);
    });
  }

  private finish(j: Job, status: Exclude<JobStatus, 'running'>, error: string | null): void {
    if (j.ended !== null) return;
    if (status === 'done' && j.kind === 'profile' && this.o.onStore) {
      try { this.o.onStore(j.out); } catch (e) { status = 'failed'; error = `profiled, but the store could not be loaded: ${(e as Error).message}`; }
    }
    j.status = status; j.error = error; j.ended = Date.now(); j.child = null;
    this.emit(j, { type: 'end', status, error, out: j.out });
    j.listeners.clear();
  }
}

function view(j: Job): JobView {
  const { id, kind, status, created, ended, out, args, error, progress } = j;
  return { id, kind, status, created, ended, out, args, error, progress };
}

/** a profile job's `tasks`: "all" | "text" | "image" | known task names → the CLI's --tasks value */
function profileTasks(t: unknown): string {
  if (t === undefined) return 'all';
  if (t === 'all' || t === 'text' || t === 'image') return t;
  const known = TASKS.map((x) => x.name);
  if (Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === 'string')) {
    const bad = t.find((x) => !known.includes(x));
    if (bad !== undefined) throw badField('tasks', `unknown task '${bad}' (known: ${known.join(', ')})`);
    return t.join(',');
  }
  throw badField('tasks', `must be "all", "text", "image" or a non-empty list of task names (${known.join(', ')})`);
}

function setPath(raw: Record<string, unknown>, key: string, v: unknown): void {
  const keys = key.split('.');
  let o = raw;
  for (const k of keys.slice(0, -1)) {
    if (o[k] === undefined) o[k] = {};
    if (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k])) throw badField(`set.${key}`, `'${k}' is not a mapping`);
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = v;
}

function lines(s: NodeJS.ReadableStream, fn: (l: string) => void): void {
  let buf = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) { fn(buf.slice(0, i)); buf = buf.slice(i + 1); }
    if (buf.length > 1 << 20) buf = buf.slice(-(1 << 16)); // a runaway line: keep its end
  });
  s.on('end', () => { if (buf) fn(buf); });
}

export function jobRoutes(app: FastifyInstance, jobs: Jobs): void {
  app.post('/moekit/jobs', async (req, reply) => reply.code(202).send(jobs.start(req.body)));
  app.get('/moekit/jobs', async () => ({ jobs: jobs.list() }));
  app.get<{ Params: { id: string } }>('/moekit/jobs/:id', async (req) => view(jobs.get(req.params.id)));
  app.delete<{ Params: { id: string } }>('/moekit/jobs/:id', async (req) => jobs.cancel(req.params.id));
  app.get<{ Params: { id: string } }>('/moekit/jobs/:id/events', (req, reply) => {
    jobs.get(req.params.id); // 404 before the stream starts
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    let off = () => {};
    const send = (e: JobEvent) => {
      res.write(`data: ${JSON.stringify(e)}\n\n`);
      if (e.type === 'end') { off(); res.end(); }
    };
    off = jobs.subscribe(req.params.id, send);
    if (res.writableEnded) off();
    req.raw.on('close', () => off());
    reply.hijack();
  });
}
