#!/usr/bin/env node
// Interop check of TrainableModel.save: train each tiny fixture for two AdamW steps, save it (f32) to OUT/<arch>/,
// with moekit's logits for the fixture's input_ids in OUT/<arch>/moekit_logits.safetensors, for
// scripts/check_saved_with_transformers.py to load with transformers and compare (run on the device machine).
//   npx tsc -p tsconfig.json && node scripts/save-trained.mjs tmp/interop
import path from 'node:path';
import { SafetensorsFile } from '../dist/io/safetensors.js';
import { writeSafetensors } from '../dist/io/safetensors-write.js';
import { AdamW } from '../dist/train/adamw.js';
import { TrainableModel } from '../dist/train/model.js';

const out = process.argv[2] ?? 'tmp/interop';
for (const arch of ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'deepseek_v2', 'deepseek_v3', 'ernie4_5_moe', 'granitemoe', 'gpt_oss']) {
  const dir = path.join('fixtures/hf-tiny-moe', arch);
  const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
  const ids = ref.readI32('input_ids');
  const [B, T] = ref.info('input_ids').shape;
  const tm = TrainableModel.load(dir);
  const opt = new AdamW(tm.params, { lr: 1e-2, weightDecay: 0 });
  for (let s = 0; s < 2; s++) opt.step(tm.forwardBackward(ids, B, T).grads);
  const dst = path.join(out, arch);
  tm.save(dst);
  const logits = tm.model.forward(ids, B, T);
  writeSafetensors(path.join(dst, 'moekit_logits.safetensors'), [
    { name: 'logits', dtype: 'F32', shape: [B, T, tm.model.desc.vocab], data: logits },
    { name: 'input_ids', dtype: 'I32', shape: [B, T], data: ids },
  ]);
  console.log('saved', arch, dst);
}
