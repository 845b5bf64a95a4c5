#!/usr/bin/env node
// Training throughput on the demo model's shape (src/train/recipes.ts DEMO_MODEL: qwen3_moe, 4 layers, hidden 128,
// 4 heads (2 KV, head_dim 32), 16 experts of width 128, top-2, vocab 104, seq 128), in tokens/s and achieved GFLOP/s
// against this machine's sgemm peak (1024³ fp32) measured in the same process, at 1 and at 2 BLAS threads.
//
// Two measurements:
// - trainer: `moekit train --recipe demo` end to end, Trainer.trainStep as the CLI runs it: 2 data-parallel threads
//   (this one and one worker, one BLAS thread each), batch 8 × 128 per micro-step, grad_accum 2, clipping, AdamW,
//   and (recipe as is) one elastic sub-model per micro-step distilled from the full model; `--elastic=0` drops it;
// - one thread: forward + backward + AdamW of the full model over one batch [--batch, 128] in this thread with
//   2 BLAS threads (the figure the earlier versions of this benchmark reported).
// FLOPs: per token 6 · the matrix parameters it passes through (attention q/k/v/o, router, its top-k experts' three
// matrices, lm head; forward + backward) + 6 · 2 · T · (nH · D) per layer for attention, halved for causality; an
// elastic sub-model adds its own (its layers, its top-k). Elementwise work (norms, softmax, loss) is not counted.
// `--before=DIR` (a built checkout of an earlier commit, as bench/before-after.mjs) runs that build's trainer in the
// same process, alternating steps with this one, and reports the ratio.
// Run after `npm run build`:  node bench/train.mjs [--steps=8] [--elastic=1] [--batch=16] [--before=DIR]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = (n, d) => { const a = process.argv.find((s) => s.startsWith(`--${n}=`)); return a ? a.slice(n.length + 3) : d; };
const steps = Number(argv('steps', '8')), B1 = Number(argv('batch', '16')), elastic = argv('elastic', '1') !== '0';
const beforeDir = argv('before', process.env.MOEKIT_BENCH_BEFORE);
process.env.MOEKIT_THREADS ??= '2';
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;

const load = async (root) => {
  const u = (f) => pathToFileURL(path.join(root, 'dist', f)).href;
  return {
    root,
    Trainer: (await import(u('train/loop.js'))).Trainer,
    WorkerPool: (await import(u('train/workers.js'))).WorkerPool,
    resolveConfig: (await import(u('train/config.js'))).resolveConfig,
    recipe: (await import(u('train/recipes.js'))).recipe,
    TrainableModel: (await import(u('train/model.js'))).TrainableModel,
    AdamW: (await import(u('train/adamw.js'))).AdamW,
    nativeAddon: (await import(u('tensor/native.js'))).nativeAddon,
  };
};
const after = await load(process.cwd());
const before = beforeDir ? await load(path.resolve(beforeDir)) : null;
const { getKernels } = await import('../dist/tensor/index.js');
const { DEMO_MODEL } = await import('../dist/train/recipes.js');
const { writeRandomCheckpoint } = await import('../dist/models/synth.js');

const cfg = DEMO_MODEL;
const L = cfg.num_hidden_layers, H = cfg.hidden_size, V = cfg.vocab_size, E = cfg.num_experts, I = cfg.moe_intermediate_size;
const nH = cfg.num_attention_heads, nKV = cfg.num_key_value_heads, D = cfg.head_dim, T = 128;
/** FLOPs per token, forward + backward, of a model running `layers` decoder layers with top-k experts */
const flopsPerTok = (layers, k) => 6 * (layers * (H * nH * D + 2 * H * nKV * D + nH * D * H + H * E + k * 3 * H * I) + H * V) + layers * 12 * T * nH * D / 2;

// the sgemm peak, 1024³, best of 5, at 2 and at 1 BLAS threads
const k = getKernels();
const peakAt = (threads) => {
  after.nativeAddon?.setThreads(threads);
  const n = 1024, A = new Float32Array(n * n).fill(0.5), Bm = new Float32Array(n * n).fill(0.25), C = new Float32Array(n * n);
  k.sgemm(false, false, n, n, n, 1, A, n, Bm, n, 0, C, n);
  let best = Infinity;
  for (let i = 0; i < 5; i++) { const t = performance.now(); k.sgemm(false, false, n, n, n, 1, A, n, Bm, n, 0, C, n); best = Math.min(best, performance.now() - t); }
  return (2 * n ** 3) / (best / 1000) / 1e9;
};
// measured at the start and again at the end (the best: on a shared machine, the least disturbed)
let peak2 = Math.max(peakAt(2), peakAt(2)), peak1 = peakAt(1);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-bench-train-'));
const f1 = (x, d = 1) => x.toFixed(d);
const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- trainer, end to end: alternating steps of each build (same seed: the same batches and sub-models)
const trainerOf = async (lib, name) => {
  const raw = lib.recipe('demo');
  raw.out = path.join(tmp, name);
  raw.train.steps = 100000;
  raw.log_every = 1000000;
  if (!elastic) delete raw.elastic;
  const tr = new lib.Trainer(lib.resolveConfig(raw));
  lib.nativeAddon?.setThreads(1); // one BLAS thread per training thread, as Trainer.run
  tr.workers = await lib.WorkerPool.open(raw.train.workers - 1, tr.source, tr.tm);
  return tr;
};
const sides = before ? { before: await trainerOf(before, 'before'), after: await trainerOf(after, 'after') } : { after: await trainerOf(after, 'after') };
const res = Object.fromEntries(Object.keys(sides).map((s) => [s, { t: [], flops: 0, tokens: 0, time: 0, loss: [], seen: 0 }]));
for (let s = 0; s < steps + 2; s++) {
  for (const side of s % 2 ? Object.keys(sides).reverse() : Object.keys(sides)) {
    const t0 = performance.now();
    const ev = await sides[side].trainStep();
    const dt = (performance.now() - t0) / 1000;
    res[side].loss.push(ev.loss);
    const tok = ev.tokens - (res[side].seen ?? 0);
    res[side].seen = ev.tokens;
    if (s < 2) continue; // warm-up
    let fl = tok * flopsPerTok(L, cfg.num_experts_per_tok);
    for (const sub of ev.subs) fl += tok * flopsPerTok(sub.depth, sub.top_k);
    res[side].t.push(dt); res[side].flops += fl; res[side].tokens += tok; res[side].time += dt;
    res[side].best = Math.max(res[side].best ?? 0, fl / dt / 1e9);
    res[side].bestTok = Math.max(res[side].bestTok ?? 0, tok / dt);
  }
}
for (const tr of Object.values(sides)) await tr.workers.close();
after.nativeAddon?.setThreads(Number(process.env.MOEKIT_THREADS));

// ---- one thread: forward + backward + AdamW of the full model over [B1, 128], 2 BLAS threads
const dir = path.join(tmp, 'one');
writeRandomCheckpoint(dir, cfg, 1, 'F32', { std: 0.02 });
const one = {};
for (const [side, lib] of Object.entries({ ...(before ? { before } : {}), after })) {
  lib.nativeAddon?.setThreads(Number(process.env.MOEKIT_THREADS));
  one[side] = { tm: lib.TrainableModel.load(dir), t: [] };
  one[side].opt = new lib.AdamW(one[side].tm.params, { lr: 1e-3 });
}
const ids = Int32Array.from({ length: B1 * T }, (_, i) => (i * 7919 + 13) % V);
for (let s = 0; s < steps + 1; s++) {
  for (const side of s % 2 ? Object.keys(one).reverse() : Object.keys(one)) {
    const o = one[side];
    const t0 = performance.now();
    const { grads } = o.tm.forwardBackward(ids, B1, T);
    o.opt.step(grads);
    if (s > 0) o.t.push((performance.now() - t0) / 1000);
  }
}
fs.rmSync(tmp, { recursive: true, force: true });
peak2 = Math.max(peak2, peakAt(2)); peak1 = Math.max(peak1, peakAt(1));
after.nativeAddon?.setThreads(Number(process.env.MOEKIT_THREADS));

const cpu = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`;
console.log(`sgemm 1024³ peak: ${f1(peak2)} GFLOP/s at 2 BLAS threads, ${f1(peak1)} at 1 (OpenBLAS ${after.nativeAddon?.info().blasCore} kernels); ${cpu}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at the end\n`);
console.log('| build | run | tokens/step | step s (median) | tokens/s | achieved GFLOP/s | of 2-thread peak | best step: tokens/s | GFLOP/s | of 2-thread peak |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
const rows = {};
for (const side of Object.keys(sides)) {
  const r = res[side], gf = r.flops / r.time / 1e9, tps = r.tokens / r.time;
  rows[side] = { tr: tps };
  console.log(`| ${side} | trainer, demo recipe${elastic ? ' (+1 elastic sub-model, KL)' : ' (no elastic sub-model)'}, 2 threads | 2×8×${T} | ${f1(med(r.t), 3)} | ${f1(tps, 0)} | ${f1(gf)} | ${f1(100 * gf / peak2)} % | ${f1(r.bestTok, 0)} | ${f1(r.best)} | ${f1(100 * r.best / peak2)} % |`);
}
for (const side of Object.keys(one)) {
  const m = med(one[side].t), tps = (B1 * T) / m, gf = tps * flopsPerTok(L, cfg.num_experts_per_tok) / 1e9;
  const bt = (B1 * T) / Math.min(...one[side].t), bg = bt * flopsPerTok(L, cfg.num_experts_per_tok) / 1e9;
  rows[side].one = tps;
  console.log(`| ${side} | one thread, 2 BLAS threads, full model fwd + bwd + AdamW | ${B1}×${T} | ${f1(m, 3)} | ${f1(tps, 0)} | ${f1(gf)} | ${f1(100 * gf / peak2)} % | ${f1(bt, 0)} | ${f1(bg)} | ${f1(100 * bg / peak2)} % |`);
}
if (before) {
  console.log(`\nafter / before (same process, alternating steps): trainer ×${f1(rows.after.tr / rows.before.tr, 2)}, one thread ×${f1(rows.after.one / rows.before.one, 2)}`);
  const dl = res.after.loss.map((x, i) => Math.abs(x - res.before.loss[i]));
  console.log(`loss, after − before, over ${dl.length} steps: max |Δ| ${Math.max(...dl).toExponential(2)} (${res.after.loss.map((x) => x.toFixed(5)).join(' ')})`);
}
console.log(`\ntrainer: ${steps} steps after 2 warm-up (rate: tokens and FLOPs over the steps' total time; best step: the least disturbed one, its own FLOPs over its time); one thread: median and best of ${steps} steps`);
