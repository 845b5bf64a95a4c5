#!/usr/bin/env node
// Continuous batching: B concurrent greedy sessions through the scheduler (in-process, and through the
// worker for the largest B) on the Mixtral-shaped model of bench/engine.mjs (random f32 weights, hidden
// 512, 8 layers, 8 experts of width 1024, top-2, vocab 8192), each with a prompt of P tokens and D new
// tokens. Aggregate decode tok/s = tokens after each session's first / wall time of the run after the
// prefills, and per CPU-second of the process over the same span (the steadier figure on a shared
// machine); the peer is B = 1 (what sequential generate gives).
// Run after `npm run build`:  node bench/sessions.mjs [--prompt=16] [--decode=64] [--batches=1,2,4,8]
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const P = Number(arg('prompt', '16')), D = Number(arg('decode', '64'));
const batches = arg('batches', '1,2,4,8').split(',').map(Number);
process.env.MOEKIT_THREADS ??= '2';
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;

const { writeRandomCheckpoint } = await import('../dist/models/synth.js');
const { MoeModel } = await import('../dist/models/model.js');
const { Scheduler } = await import('../dist/runtime/scheduler.js');
const { openModel } = await import('../dist/runtime/remote.js');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-bench-'));
writeRandomCheckpoint(dir, {
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: 8192, hidden_size: 512,
  intermediate_size: 1024, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 2,
  num_local_experts: 8, num_experts_per_tok: 2, max_position_embeddings: 4096, rms_norm_eps: 1e-5,
  rope_theta: 1e6, tie_word_embeddings: false,
}, 1);

/** B sessions at once; what their done events and the clock say */
async function run(generate, B) {
  const o = { maxNewTokens: D, greedy: true, stopAtEos: false };
  let firstTokens = 0, tFirst = 0, cpuFirst = null;
  const t0 = performance.now();
  const dones = await Promise.all(Array.from({ length: B }, async (_, b) => {
    const prompt = Array.from({ length: P }, (_, i) => (i * 7919 + b * 131) % 8192);
    for await (const ev of generate(prompt, o)) {
      if (ev.type === 'token' && ev.index === 0 && ++firstTokens === B) { tFirst = performance.now(); cpuFirst = process.cpuUsage(); }
      if (ev.type === 'error') throw new Error(ev.message);
      if (ev.type === 'done') return ev;
    }
  }));
  const t1 = performance.now(), cpu = process.cpuUsage(cpuFirst);
  const decoded = B * (D - 1);
  return { B, cpuTokS: decoded / ((cpu.user + cpu.system) / 1e6), wall: (t1 - t0) / 1000, decodeTokS: decoded / ((t1 - tFirst) / 1000), perSession: dones.reduce((s, d) => s + d.timings.predicted_per_second, 0) / B, maxBatch: Math.max(...dones.map((d) => d.batch.max_batch)) };
}

const model = MoeModel.load(dir);
const rows = [];
for (const B of batches) {
  const s = new Scheduler(model, { maxBatch: B });
  await run((p, o) => s.submit(p, o), 1); // warm-up
  rows.push({ where: 'in-process', ...(await run((p, o) => s.submit(p, o), B)) });
}
const h = openModel(dir, { maxBatch: Math.max(...batches) });
await h.ready;
await run(h.generate, 1);
rows.push({ where: 'worker', ...(await run(h.generate, Math.max(...batches))) });
await h.close();
fs.rmSync(dir, { recursive: true, force: true });

const base = rows[0];
console.log(`| scheduler | sessions | largest batch | wall s | aggregate decode tok/s | per-session tok/s | decode tok per CPU-s | vs 1 session (wall, CPU) |`);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.where} | ${r.B} | ${r.maxBatch} | ${r.wall.toFixed(2)} | ${r.decodeTokS.toFixed(1)} | ${r.perSession.toFixed(1)} | ${r.cpuTokS.toFixed(1)} | ×${(r.decodeTokS / base.decodeTokS).toFixed(2)}, ×${(r.cpuTokS / base.cpuTokS).toFixed(2)} |`);
console.log(`\nprompt ${P}, ${D} new tokens per session; threads ${process.env.MOEKIT_THREADS}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`);
