#!/usr/bin/env node
// The measured comparison of docs/mtp.md: one small model trained the same number of steps on the built-in text tasks
// with plain next-token loss, with DeepSeek-V3 MTP modules and with next-group heads; final next-token loss (the mean
// of the last 20 steps) and held-out exact match.
// `npm run build:ts && node scripts/mtp-compare.mjs [STEPS] [N] [none,deepseek,group]`
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer } from '../dist/io/tokenizer.js';
import { MoeModel } from '../dist/models/model.js';
import { evaluate } from '../dist/runtime/eval.js';
import { selectTasks } from '../dist/tasks/registry.js';
import { resolveConfig } from '../dist/train/config.js';
import { Trainer } from '../dist/train/loop.js';
import { DEMO_MODEL } from '../dist/train/recipes.js';

const steps = Number(process.argv[2] ?? 200), n = Number(process.argv[3] ?? 50);
const kinds = (process.argv[4] ?? 'none,deepseek,group').split(',');
const TASKS = ['add', 'sort', 'reverse', 'count', 'balanced', 'lookup', 'hex2bin', 'caesar'];
const model = { ...DEMO_MODEL, hidden_size: 64, intermediate_size: 128, moe_intermediate_size: 64, num_hidden_layers: 2, head_dim: 16, num_experts: 8 };
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-mtp-compare-'));
const rows = [];
for (const [name, mtp] of [['next-token only', { kind: 'none' }], ['deepseek MTP, D = 1, λ = 0.3', { kind: 'deepseek', depth: 1, weight: 0.3 }], ['next-group heads, G = 2, λ = 0.3', { kind: 'group', depth: 2, weight: 0.3 }]]) {
  if (!kinds.includes(mtp.kind)) continue;
  const cfg = resolveConfig({
    model: { config: model, init_seed: 0 }, data: { source: 'builtin', seq_len: 96, tasks: TASKS },
    train: { steps, batch_size: 8, lr: 3e-3, min_lr: 3e-4, schedule: 'wsd', warmup: 20, decay_fraction: 0.25, seed: 0 },
    balance: { switch: 0.01 }, mtp, checkpoint: { every: 100000 }, out: path.join(root, mtp.kind),
  });
  const t0 = performance.now();
  const log = [];
  const dir = await new Trainer(cfg).run((ev) => { if (ev.type === 'step') log.push(ev); });
  const seconds = (performance.now() - t0) / 1000;
  const tail = log.slice(-20);
  const mean = (f) => tail.reduce((s, e) => s + f(e), 0) / tail.length;
  const r = evaluate(MoeModel.load(dir), loadTokenizer(dir), { tasks: selectTasks(TASKS), n });
  rows.push({ name, loss: mean((e) => e.loss), mtp_loss: mtp.kind === 'none' ? null : mean((e) => e.mtp_loss), exact_match: r.text, per_task: Object.fromEntries(Object.entries(r.tasks).map(([k, v]) => [k, v.exact_match])), seconds });
  console.error(`${name}: ${seconds.toFixed(0)} s`);
}
console.log(JSON.stringify({ steps, n, rows }, null, 1));
