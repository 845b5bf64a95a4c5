#!/usr/bin/env node
// Batched decode on the demo model (examples/demo-moe, bf16), in-process through the scheduler: B sessions decoding
// together (one forward [B, 1] a step) against one, for this build and, with --before=DIR, an earlier one loaded in the
// same process and run alternately (the same prompts; medians over --runs). CPU-ms per decode step (the process's CPU
// time over the run / steps; the steadier figure on a shared machine) and wall-ms per step; the ratio
// B × (one-sequence step) / (B-sequence step) is what batching gives per token.
//   npm run build && node bench/decode-batch.mjs [--before=DIR] [--runs=5] [--batch=64] [--decode=64] [--threads=1]
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const RUNS = Number(arg('runs', '5')), B = Number(arg('batch', '64')), D = Number(arg('decode', '64'));
process.env.MOEKIT_THREADS ??= arg('threads', '1');
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;
const DEMO = path.resolve('examples/demo-moe');

const load = async (root) => {
  const u = (f) => pathToFileURL(path.join(root, 'dist', f)).href;
  const { MoeModel } = await import(u('models/model.js'));
  const { Scheduler } = await import(u('runtime/scheduler.js'));
  return { model: MoeModel.load(DEMO), Scheduler };
};
const builds = { this: await load(process.cwd()) };
const beforeDir = arg('before', null);
if (beforeDir) builds.before = await load(path.resolve(beforeDir));

async function run({ model, Scheduler }, n) {
  const s = new Scheduler(model, { maxBatch: n });
  const o = { maxNewTokens: D, greedy: true, stopAtEos: false };
  const c0 = process.cpuUsage(), t0 = performance.now();
  await Promise.all(Array.from({ length: n }, async (_, b) => {
    const prompt = [1, ...Array.from({ length: 12 }, (_, i) => 4 + ((i * 7 + b * 13) % 90))];
    for await (const ev of s.submit(prompt, o)) { if (ev.type === 'error') throw new Error(ev.message); if (ev.type === 'done') return; }
  }));
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000 / D, wall: (performance.now() - t0) / D };
}
const res = {};
for (const b of Object.values(builds)) { await run(b, 1); await run(b, B); } // warm-up
for (let r = 0; r < RUNS; r++) {
  for (const [name, b] of Object.entries(builds)) for (const n of [1, B]) (res[`${name} ${n}`] ??= []).push(await run(b, n));
}
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
console.log(`demo model, bf16, ${D} decode steps per run (prompts of 13 tokens), MOEKIT_THREADS=${process.env.MOEKIT_THREADS}, median of ${RUNS}`);
console.log('');
console.log(`| build | CPU-ms / step, 1 seq | CPU-ms / step, ${B} seqs | wall-ms / step, 1 / ${B} | per token, ${B} seqs vs 1 (CPU) |`);
console.log('|---|---:|---:|---:|---:|');
for (const name of Object.keys(builds)) {
  const one = res[`${name} 1`], many = res[`${name} ${B}`];
  const c1 = med(one.map((x) => x.cpu)), cB = med(many.map((x) => x.cpu));
  console.log(`| ${name} | ${c1.toFixed(3)} | ${cB.toFixed(3)} | ${med(one.map((x) => x.wall)).toFixed(3)} / ${med(many.map((x) => x.wall)).toFixed(3)} | ×${((B * c1) / cB).toFixed(2)} |`);
}
if (builds.before) {
  const cb = med(res[`before ${B}`].map((x) => x.cpu)), ct = med(res[`this ${B}`].map((x) => x.cpu));
  console.log(`\n${B}-sequence step: ×${(cb / ct).toFixed(2)} less CPU than the earlier build`);
}
console.log(`load average ${(await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
