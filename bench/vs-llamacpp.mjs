#!/usr/bin/env node
// moekit against llama.cpp (node-llama-cpp 3.22.1's prebuilt CPU build, through its API) on one random-weight
// qwen3_moe, at bf16, q8_0 and q4_0: prefill tokens/s on a P-token prompt, decode tokens/s over D tokens after it,
// peak RSS and load time, each measurement in a fresh child process, engines interleaved, median of --reps.
// The model (config below, or --config=FILE) is built once with random weights and cached under the OS temp dir
// (moekit-bench-cache/, never committed), then exported by moekit to GGUF at each type; both engines run the same
// GGUF file at q8_0 / q4_0, moekit the bf16 safetensors and llama.cpp its bf16 GGUF at bf16. Same threads (2).
// As llama-bench does, each child first runs --warmup untimed rounds of the same prompt and decode (default 1; each
// engine then starts the timed round from an empty cache), so first-touch costs (page faults of fresh buffers,
// thread start-up) stay out of the timings of both; --warmup=0 times the first round.
//   npm run build && node bench/vs-llamacpp.mjs [--prompt=512] [--decode=128] [--reps=3] [--types=bf16,q8_0,q4_0]
//     [--warmup=1]
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const P = Number(arg('prompt', '512')), D = Number(arg('decode', '128')), reps = Number(arg('reps', '3'));
const threads = Number(process.env.MOEKIT_THREADS ?? '2');
const llamaThreads = Number(arg('llama-threads', String(threads)));
const types = arg('types', 'bf16,q8_0,q4_0').split(',');
const warmup = Number(arg('warmup', '1'));
const here = fileURLToPath(import.meta.url);

async function child() {
  const engine = arg('child', ''), file = arg('file', '');
  const t0 = performance.now();
  const prompt = Array.from({ length: P }, (_, i) => (i * 7919 + 13) % 30000);
  let out;
  if (engine === 'moekit') {
    const { MoeModel } = await import('../dist/models/model.js');
    const { generate } = await import('../dist/runtime/generate.js');
    const m = MoeModel.load(file);
    const loadS = (performance.now() - t0) / 1000;
    generate(m, prompt.slice(0, 8), { maxNewTokens: 2, greedy: true, stopAtEos: false }); // warm-up
    for (let w = 0; w < warmup; w++) generate(m, prompt, { maxNewTokens: D, greedy: true, stopAtEos: false });
    const g = generate(m, prompt, { maxNewTokens: D, greedy: true, stopAtEos: false });
    out = { loadS, prefill: g.timings.prefillTokensPerS, decode: g.timings.decodeTokensPerS };
  } else {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.disabled, progressLogs: false });
    const model = await llama.loadModel({ modelPath: file });
    const ctx = await model.createContext({ contextSize: P + D + 16, batchSize: P, threads: llamaThreads });
    const loadS = (performance.now() - t0) / 1000;
    const seq = ctx.getSequence();
    for (let w = 0; w < warmup; w++) {
      let k = 0;
      for await (const _t of seq.evaluate(prompt, { temperature: 0 })) if (++k === D) break;
      await seq.clearHistory(); // the timed round evaluates the whole prompt again
    }
    let n = 0, t1 = performance.now(), tFirst = 0;
    for await (const _t of seq.evaluate(prompt, { temperature: 0 })) {
      if (n === 0) tFirst = performance.now();
      if (++n === D) break;
    }
    const t2 = performance.now();
    out = { loadS, prefill: P / ((tFirst - t1) / 1000), decode: (D - 1) / ((t2 - tFirst) / 1000) };
  }
  // VmHWM (peak resident set of this process image; getrusage's maxRSS survives exec, so it would be the parent's)
  out.rssGiB = Number(/VmHWM:\s*(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 2 ** 20;
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

if (arg('child', '')) await child();
else {
  const config = arg('config', '') ? JSON.parse(fs.readFileSync(arg('config', ''), 'utf8')) : {
    architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', vocab_size: 32000, hidden_size: 1024,
    intermediate_size: 3072, moe_intermediate_size: 512, num_hidden_layers: 6, num_attention_heads: 16,
    num_key_value_heads: 4, head_dim: 64, num_experts: 32, num_experts_per_tok: 8, norm_topk_prob: true,
    max_position_embeddings: 4096, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: false,
    decoder_sparse_step: 1, mlp_only_layers: [],
  };
  const key = crypto.createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
  const cache = path.join(os.tmpdir(), 'moekit-bench-cache', `qwen3moe-${key}`);
  const { writeRandomCheckpoint } = await import('../dist/models/synth.js');
  const { exportGguf } = await import('../dist/models/gguf-export.js');
  const { inspectModel } = await import('../dist/models/inspect.js');
  if (!fs.existsSync(path.join(cache, 'model.safetensors'))) {
    console.error(`building ${cache} (random bf16 weights)…`);
    writeRandomCheckpoint(cache, config, 1, 'BF16');
  }
  for (const t of types) {
    const f = path.join(cache, `model-${t}.gguf`);
    if (!fs.existsSync(f)) { console.error(`exporting ${f}…`); exportGguf(cache, f, t); }
  }
  const r = inspectModel(cache);
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? os.cpus()[0]?.model;
  console.log(`qwen3_moe, random weights: ${(r.parameters.total / 1e6).toFixed(0)}M parameters, ${(r.parameters.activePerToken / 1e6).toFixed(0)}M active; ` +
    `prompt ${P}, decode ${D}, ${threads} threads (llama.cpp ${llamaThreads}), median of ${reps}, ${warmup} warm-up round(s); ${cpu}; load average ${os.loadavg()[0].toFixed(1)}\n`);
  console.log('| type | engine | load s | prefill tok/s | decode tok/s | peak RSS GiB |');
  console.log('|---|---|---:|---:|---:|---:|');
  const runs = {};
  for (const t of types) {
    for (let i = 0; i < reps; i++) {
      for (const engine of ['moekit', 'llama.cpp']) {
        const file = engine === 'moekit' && t === 'bf16' ? cache : path.join(cache, `model-${t}.gguf`);
        const c = spawnSync(process.execPath, [here, `--child=${engine}`, `--file=${file}`, `--prompt=${P}`, `--decode=${D}`, `--llama-threads=${llamaThreads}`, `--warmup=${warmup}`],
          { encoding: 'utf8', env: { ...process.env, MOEKIT_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) }, maxBuffer: 1 << 24 });
        if (c.status !== 0) { console.error(`${engine} ${t} failed: ${c.stderr.slice(-2000)}`); continue; }
        (runs[`${t} ${engine}`] ??= []).push(JSON.parse(c.stdout.trim().split('\n').pop()));
      }
    }
  }
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
  // decode's weight traffic: the bytes a token reads from each GGUF file (attention, router, shared and lm_head whole;
  // the routed experts' stacked tensors at top-k / experts of their bytes; one row of the embedding)
  const topk = config.num_experts_per_tok, E = config.num_experts;
  const tokenBytes = {};
  const { GgufFile } = await import('../dist/io/gguf.js');
  for (const t of types) {
    const g = GgufFile.open(path.join(cache, `model-${t}.gguf`));
    let b = 0;
    for (const ti of g.tensors.values()) {
      if (ti.name.includes('_exps.')) b += ti.bytes * topk / E;
      else if (ti.name === 'token_embd.weight') b += ti.bytes / ti.shape[0];
      else b += ti.bytes;
    }
    g.close();
    tokenBytes[t] = b;
  }
  // the machine's read bandwidth, same threads: sgemvBf16 streaming 1 GiB of weights it has not just read (one FMA
  // per 2 bytes, far below the cores' rate: a read loop)
  const bandwidth = (() => {
    process.env.MOEKIT_THREADS = String(threads);
    const addon = createRequire(import.meta.url)('../build/Release/moekit_native.node');
    addon.setThreads(threads);
    const N = 32000, K = 1024, copies = Math.ceil(2 ** 30 / (2 * N * K));
    const Ws = Array.from({ length: copies }, (_, c) => new Uint16Array(N * K).fill(0x3c00 + c));
    const x = new Float32Array(K).fill(1), y = new Float32Array(N);
    const rates = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      for (const W of Ws) addon.sgemvBf16(N, K, 1, W, x, 0, y);
      rates.push((copies * 2 * N * K) / ((performance.now() - t0) / 1000) / 1e9);
    }
    return med(rates);
  })();
  const m = {};
  for (const [k, v] of Object.entries(runs)) {
    m[k] = Object.fromEntries(['loadS', 'prefill', 'decode', 'rssGiB'].map((f) => [f, med(v.map((x) => x[f]))]));
    const [t, e] = k.split(' ');
    console.log(`| ${t} | ${e} | ${m[k].loadS.toFixed(1)} | ${m[k].prefill.toFixed(1)} | ${m[k].decode.toFixed(1)} | ${m[k].rssGiB.toFixed(2)} |`);
  }
  console.log('\n| type | prefill moekit / llama.cpp | decode moekit / llama.cpp | peak RSS moekit / llama.cpp | moekit decode weights GB/s (of bandwidth) |');
  console.log('|---|---:|---:|---:|---:|');
  for (const t of types) {
    const a = m[`${t} moekit`], b = m[`${t} llama.cpp`];
    const gbs = a ? (a.decode * tokenBytes[t]) / 1e9 : NaN;
    if (a && b) console.log(`| ${t} | ×${(a.prefill / b.prefill).toFixed(2)} | ×${(a.decode / b.decode).toFixed(2)} | ×${(a.rssGiB / b.rssGiB).toFixed(2)} | ${gbs.toFixed(1)} (${((100 * gbs) / bandwidth).toFixed(0)} %) |`);
  }
  console.log(`\nread bandwidth (sgemvBf16 streaming 1 GiB, ${threads} threads): ${bandwidth.toFixed(1)} GB/s; weight bytes per decoded ` +
    `token: ${types.map((t) => `${t} ${(tokenBytes[t] / 1e6).toFixed(1)} MB`).join(', ')}`);
}
