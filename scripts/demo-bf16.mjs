#!/usr/bin/env node
// The shipped demo model from a training run: the run's final f32 model saved in bf16 (TrainableModel.save, rounding
// to nearest even) into a temporary directory, then its model.safetensors moved into examples/demo-moe (the directory's
// README, evaluations and grid stay; its config, tokenizer and template must be the run's, which is checked).
//   npm run build && node scripts/demo-bf16.mjs demo-run/model [examples/demo-moe]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TrainableModel } from '../dist/train/model.js';

const [src, dst = 'examples/demo-moe'] = process.argv.slice(2);
if (!src) { console.error('usage: node scripts/demo-bf16.mjs RUN/model [examples/demo-moe]'); process.exit(2); }
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-bf16-'));
TrainableModel.load(src).save(tmp, { dtype: 'BF16' });
for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
  const a = fs.readFileSync(path.join(tmp, f), 'utf8'), b = fs.readFileSync(path.join(dst, f), 'utf8');
  if (JSON.stringify(JSON.parse(a)) !== JSON.stringify(JSON.parse(b))) { console.error(`${f} differs between the run and ${dst}`); process.exit(1); }
}
fs.copyFileSync(path.join(tmp, 'model.safetensors'), path.join(dst, 'model.safetensors.tmp'));
fs.renameSync(path.join(dst, 'model.safetensors.tmp'), path.join(dst, 'model.safetensors'));
fs.rmSync(tmp, { recursive: true, force: true });
console.log(`wrote ${path.join(dst, 'model.safetensors')} (bf16) from ${src}`);
