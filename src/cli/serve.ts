/**
 * `moekit serve [MODEL_DIR] [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--slots N] [--queue N]
 *   [--body-limit SIZE] [--threads N] [--dtype auto|f32|q8_0|q4_0] [--store STORE [--keep-experts M] [--score S]]`: the OpenAI-compatible server and the dashboard
 * (src/server/app.ts) on MODEL_DIR, or on the bundled demo model. It listens at once (/health answers 503
 * while the model loads, the page shows the load's progress) and stops cleanly on SIGINT / SIGTERM.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from '../server/app.js';
import { storeResolver } from '../server/patterns.js';
import { isGgufPath } from '../io/gguf.js';
import { MoekitError } from '../util/errors.js';
import { dtypeFlag, numFlag, parse, sizeFlag } from './args.js';
import { terminalProgress } from './bar.js';

const USAGE = 'moekit serve [MODEL_DIR] [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--slots N] [--queue N] [--body-limit SIZE] [--threads N] [--dtype auto|f32|q8_0|q4_0] [--store STORE [--keep-experts M] [--score tcess|frequency|soft|reap]] [--jobs-dir DIR]';

/** examples/demo-moe of this package */
export const DEMO_MODEL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/demo-moe');

export async function runServe(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    host: { type: 'string' }, port: { type: 'string' }, 'api-key': { type: 'string' }, slots: { type: 'string' },
    queue: { type: 'string' }, 'body-limit': { type: 'string' }, threads: { type: 'string' }, dtype: { type: 'string' },
    store: { type: 'string' }, 'keep-experts': { type: 'string' }, score: { type: 'string' }, 'jobs-dir': { type: 'string' },
  }, USAGE);
  if (positionals.length > 1) throw new MoekitError(`expected at most one model directory, got ${positionals.length} (--help for usage)`);
  const dir = positionals[0] ?? DEMO_MODEL;
  if (!isGgufPath(dir) && !fs.existsSync(path.join(dir, 'config.json'))) throw new MoekitError('no config.json: not a model directory (nor a .gguf file)', dir);
  const host = values.host ?? '127.0.0.1';
  const port = numFlag(values.port, 'port', { int: true, min: 0, max: 65535 }) ?? 8080;
  const apiKey = values['api-key'] ?? process.env.MOEKIT_API_KEY ?? null;
  if (apiKey !== null && apiKey.trim() === '') throw new MoekitError('--api-key must not be empty');
  if (values.store === undefined && (values['keep-experts'] !== undefined || values.score !== undefined)) {
    throw new MoekitError('--keep-experts and --score choose a pattern of a store: give --store STORE (--help for usage)');
  }
  // the PreMoe pattern store behind moekit.experts: "auto" (retrieved per prompt), a stored task or "general"
  const patterns = values.store === undefined ? undefined
    : storeResolver(dir, values.store, { score: values.score, keepExperts: numFlag(values['keep-experts'], 'keep-experts', { int: true, min: 1 }) });
  const server = createServer({
    dir, apiKey, patterns: patterns?.resolve, patternInfo: patterns?.info,
    slots: numFlag(values.slots, 'slots', { int: true, min: 1, max: 1024 }),
    maxQueue: numFlag(values.queue, 'queue', { int: true, min: 0 }),
    bodyLimit: sizeFlag(values['body-limit'], 'body-limit'),
    threads: numFlag(values.threads, 'threads', { int: true, min: 1, max: 4096 }),
    dtype: dtypeFlag(values.dtype),
    jobsDir: values['jobs-dir'],
  });
  let url: string;
  try {
    url = await server.listen(host, port);
  } catch (e) {
    await server.handle.close();
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') throw new MoekitError(`port ${port} is in use (--port N)`, `${host}:${port}`);
    if (err.code === 'EACCES') throw new MoekitError(`permission denied to listen on port ${port}`, `${host}:${port}`);
    throw e;
  }
  if (patterns) process.stderr.write(`moekit serve: pattern store ${patterns.info.store}: ${patterns.info.tasks.length} tasks, ${patterns.info.keepExperts} experts per layer by ${patterns.info.score}\n`);
  process.stderr.write(`moekit serve: ${url} (dashboard at ${url}/, OpenAI API at ${url}/v1${apiKey ? ', API key required' : ''})\n`);
  const bar = terminalProgress();
  if (bar) void (async () => { for await (const ev of server.handle.events) if (ev.type === 'progress') bar(ev.event); })();
  server.ready.then((i) => process.stderr.write(`moekit serve: ${server.modelId} loaded (${i.arch}, ${i.loadSeconds.toFixed(1)} s), ${i.maxBatch} slots\n`),
    (e: Error) => process.stderr.write(`moekit serve: the model failed to load: ${e.message}\n`));
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stderr.write('moekit serve: stopping\n');
  await server.close();
  return 0;
}
