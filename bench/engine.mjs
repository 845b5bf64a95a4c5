#!/usr/bin/env node
// End-to-end engine benchmark: a Mixtral-shaped model that moekit builds itself (random weights,
// f32: hidden 512, 8 layers, 8 experts of width 1024, top-2, GQA 8/2 heads, vocab 8192, ≈ 110M
// parameters, ≈ 33M active per token), prefill of P tokens and greedy decode of D tokens, with the
// native kernel core vs the TypeScript reference kernels as the peer (same engine, same process).
// Run after `npm run build`:  node bench/engine.mjs [--prompt=64] [--decode=32]
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const P = Number(arg('prompt', '64')), D = Number(arg('decode', '32'));
process.env.MOEKIT_THREADS ??= '2';
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;

const { writeRandomCheckpoint } = await import('../dist/models/synth.js');
const { MoeModel } = await import('../dist/models/model.js');
const { generate } = await import('../dist/runtime/generate.js');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-bench-'));
const config = {
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: 8192, hidden_size: 512,
  intermediate_size: 1024, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 2,
  num_local_experts: 8, num_experts_per_tok: 2, max_position_embeddings: 4096, rms_norm_eps: 1e-5,
  rope_theta: 1e6, tie_word_embeddings: false,
};
writeRandomCheckpoint(dir, config, 1);
// the same weights as a BF16 checkpoint: kept bf16 in memory (half the bytes per decode step)
const { Checkpoint } = await import('../dist/io/checkpoint.js');
const { writeSafetensors } = await import('../dist/io/safetensors-write.js');
const { f32ToBf16Array } = await import('../dist/io/dtypes.js');
const dirBf16 = `${dir}-bf16`;
fs.mkdirSync(dirBf16);
fs.copyFileSync(path.join(dir, 'config.json'), path.join(dirBf16, 'config.json'));
const ck = Checkpoint.open(dir);
writeSafetensors(path.join(dirBf16, 'model.safetensors'), ck.names().map((n) => ({ name: n, dtype: 'BF16', shape: ck.info(n).shape, data: () => f32ToBf16Array(ck.readF32(n)) })));
ck.close();
let model = MoeModel.load(dir);
const prompt = Array.from({ length: P }, (_, i) => (i * 7919) % 8192);

function run(kernels, p, d) {
  process.env.MOEKIT_KERNELS = kernels;
  generate(model, prompt.slice(0, 4), { maxNewTokens: 2, greedy: true, stopAtEos: false }); // warm-up
  const r = generate(model, prompt.slice(0, p), { maxNewTokens: d, greedy: true, stopAtEos: false });
  return r;
}
const nat = run('native', P, D);
// the reference is ~1000x slower on GEMM: a shorter run, compared per token
const ref = run('reference', Math.min(P, 16), Math.min(D, 4));
model = MoeModel.load(dirBf16); // weights kept bf16
const bf = run('native', P, D);
fs.rmSync(dir, { recursive: true, force: true });
fs.rmSync(dirBf16, { recursive: true, force: true });

const row = (name, r) => `| ${name} | ${r.promptTokens} | ${r.timings.prefillTokensPerS.toFixed(1)} | ${r.newTokens} | ${r.timings.decodeTokensPerS.toFixed(2)} |`;
console.log('| kernels | prompt tokens | prefill tok/s | new tokens | decode tok/s |');
console.log('|---|---:|---:|---:|---:|');
console.log(row('native (OpenBLAS + AVX2)', nat));
console.log(row('reference (TypeScript)', ref));
console.log(row('native, BF16 checkpoint kept bf16', bf));
console.log(`\nbf16 weights vs f32: prefill ×${(bf.timings.prefillTokensPerS / nat.timings.prefillTokensPerS).toFixed(2)}, decode ×${(bf.timings.decodeTokensPerS / nat.timings.decodeTokensPerS).toFixed(2)}`);
console.log(`speed-up native/reference: prefill ×${(nat.timings.prefillTokensPerS / ref.timings.prefillTokensPerS).toFixed(0)}, decode ×${(nat.timings.decodeTokensPerS / ref.timings.decodeTokensPerS).toFixed(0)}; threads ${process.env.MOEKIT_THREADS}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`);
