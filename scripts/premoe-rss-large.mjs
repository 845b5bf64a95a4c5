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
const { readStore } = await import('../dist/experts/store.js');
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
const { rssRuns } = await import('../dist/experts/evaluate.js');
const { reportMarkdown } = await import('../dist/cli/experts.js');
const rows = rssRuns(path.join(root, 'dist/experts/rss-child.js'), dir, s, d, task, n);
const md = reportMarkdown({ model: dir, n, tasks: [], grid: [], retrieval: { layers: [], threshold: 0, accuracy: 0, tasks: {}, fallbacks: 0 }, endToEnd: [], rss: rows }, d.moe.experts);
console.log(md.slice(md.indexOf('| run |')));
console.log(JSON.stringify(rows));
