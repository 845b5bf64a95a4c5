#!/usr/bin/env node
// Peak RSS of PreMoe patterns on a model whose weights outweigh the runtime: a random-initialised Qwen3-MoE
// (4 layers, hidden 256, 32 experts of width 512, top-2, bf16: 104 MB of experts) with the demo model's tokenizer,
// profiled on one built-in task; then, each in a fresh process (src/experts/rss-child.ts), the full model eager
// and the task's 50% and 25% TCESS patterns lazy, peak RSS against runtime + weights held + KV cache.
//   npm run build && node scripts/premoe-rss-large.mjs [WORKDIR]     (prints a markdown table and one JSON line)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.resolve(process.argv[2] ?? 'premoe-rss-large');
const dir = path.join(work, 'model'), store = path.join(work, 'store.json');
const { writeRandomCheckpoint } = await import('../dist/models/synth.js');
const { readStore, keepOf } = await import('../dist/experts/store.js');
const { ratioBudget } = await import('../dist/experts/select.js');
const demo = path.join(root, 'examples/demo-moe');
const cfg = { ...JSON.parse(fs.readFileSync(path.join(demo, 'config.json'), 'utf8')), hidden_size: 256, intermediate_size: 512, moe_intermediate_size: 512, num_experts: 32, head_dim: 64, torch_dtype: 'bfloat16' };
if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
  writeRandomCheckpoint(dir, cfg, 1, 'BF16');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) fs.copyFileSync(path.join(demo, f), path.join(dir, f));
}
const task = 'add', n = 10;
fs.rmSync(store, { force: true });
execFileSync(process.execPath, [path.join(root, 'bin/moekit.js'), 'experts', 'profile', dir, '--store', store, '--tasks', task, '--n', '16']);
const s = readStore(store, dir);
const { MoeModel } = await import('../dist/models/model.js');
const d = MoeModel.load(dir, { experts: 'lazy' }).desc;
const child = path.join(root, 'dist/experts/rss-child.js');
const rows = [];
for (const [label, ratio] of [['full model, eager', 1], ['add tcess 50%, lazy', 0.5], ['add tcess 25%, lazy', 0.25]]) {
  const b = ratioBudget(d, ratio);
  const spec = ratio === 1 ? { dir, lazy: false, keep: null, topK: d.moe.topK, task, n } : { dir, lazy: true, keep: keepOf(s, d, s.tasks[task], 'tcess', b.keep), topK: b.topK, task, n };
  const m = JSON.parse(execFileSync(process.execPath, [child, JSON.stringify(spec)], { encoding: 'utf8' }).trim().split('\n').pop());
  rows.push({ label, ratio, keep: b.keep, ...m, withinPct: (100 * (m.peakRss - m.predicted)) / m.predicted });
}
const mib = (x) => `${(x / 2 ** 20).toFixed(1)} MiB`;
console.log('| run | experts kept | peak RSS | runtime | non-expert weights | experts held | KV cache | predicted | peak vs predicted |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.label} | ${r.keep}/${d.moe.experts} | ${mib(r.peakRss)} | ${mib(r.baseRss)} | ${mib(r.nonExpertBytes)} | ${mib(r.expertBytes)} | ${(r.kvBytes / 1024).toFixed(0)} KiB | ${mib(r.predicted)} | ${r.withinPct >= 0 ? '+' : ''}${r.withinPct.toFixed(1)}% |`);
console.log(JSON.stringify(rows));
