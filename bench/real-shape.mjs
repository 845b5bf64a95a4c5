#!/usr/bin/env node
// A real MoE shape on this CPU: Granite 3.0 1B-A400M's config (fixtures/configs; 1.33B parameters,
// 32 experts, top-8, ≈ 430M active per token) with random BF16 weights that moekit writes itself
// (no hub downloads here), kept bf16 in memory. Prefill P tokens and greedy decode D tokens.
// Run after `npm run build`:  node bench/real-shape.mjs [--prompt=128] [--decode=32] [--config=fixtures/configs/granite-3.0-1b-a400m.json]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const P = Number(arg('prompt', '128')), D = Number(arg('decode', '32'));
const cfgPath = arg('config', 'fixtures/configs/granite-3.0-1b-a400m.json');
process.env.MOEKIT_THREADS ??= '2';
const { writeRandomCheckpoint } = await import('../dist/models/synth.js');
const { MoeModel } = await import('../dist/models/model.js');
const { generate } = await import('../dist/runtime/generate.js');
const { inspectModel } = await import('../dist/models/inspect.js');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-real-'));
try {
  let t = performance.now();
  writeRandomCheckpoint(dir, JSON.parse(fs.readFileSync(cfgPath, 'utf8')), 1, 'BF16');
  const writeS = (performance.now() - t) / 1000;
  const r = inspectModel(dir);
  console.log(`| model | weights in memory | params | active | checkpoint | load s | RSS GiB | prefill tok/s (${P}) | decode tok/s (${D}) |`);
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  // the peer: the same checkpoint upcast to f32 at load (OpenBLAS sgemm/sgemv)
  for (const dtype of ['auto', 'f32']) {
    t = performance.now();
    let model = MoeModel.load(dir, { dtype });
    const loadS = (performance.now() - t) / 1000;
    const V = model.desc.vocab;
    const prompt = Array.from({ length: P }, (_, i) => (i * 7919) % V);
    generate(model, prompt.slice(0, 4), { maxNewTokens: 2, greedy: true, stopAtEos: false }); // warm-up
    const g = generate(model, prompt, { maxNewTokens: D, greedy: true, stopAtEos: false });
    const rss = process.memoryUsage().rss / 2 ** 30;
    console.log(`| ${path.basename(cfgPath, '.json')} (random weights) | ${dtype === 'auto' ? 'bf16 (kept)' : 'f32 (upcast)'} | ${(r.parameters.total / 1e9).toFixed(2)}B | ${(r.parameters.activePerToken / 1e6).toFixed(0)}M | ${(r.memory.checkpointBytes / 2 ** 30).toFixed(2)} GiB | ${loadS.toFixed(1)} | ${rss.toFixed(2)} | ${g.timings.prefillTokensPerS.toFixed(0)} | ${g.timings.decodeTokensPerS.toFixed(1)} |`);
    model = null;
    globalThis.gc?.();
  }
  console.error(`(writing the random checkpoint took ${writeS.toFixed(0)} s)`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
