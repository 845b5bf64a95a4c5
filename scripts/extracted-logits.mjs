#!/usr/bin/env node
// moekit's logits of a checkpoint on a few built-in corpus examples, written as DIR/check.safetensors for
// scripts/check_extracted_with_transformers.py.  node scripts/extracted-logits.mjs DIR
import * as path from 'node:path';
const dir = process.argv[2];
const { MoeModel } = await import('../dist/models/model.js');
const { writeSafetensors } = await import('../dist/io/safetensors-write.js');
const { exampleAt } = await import('../dist/tasks/corpus.js');
const m = MoeModel.load(dir, { dtype: 'f32' });
const T = 24, B = 2;
const ids = new Int32Array(B * T);
for (let b = 0; b < B; b++) { const ex = exampleAt(777, b); for (let t = 0; t < T; t++) ids[b * T + t] = ex.ids[t % ex.ids.length]; }
const logits = m.forward(ids, B, T);
writeSafetensors(path.join(dir, 'check.safetensors'), [
  { name: 'input_ids', dtype: 'I32', shape: [B, T], data: ids },
  { name: 'logits', dtype: 'F32', shape: [B, T, m.desc.vocab], data: logits },
]);
console.log(`wrote ${path.join(dir, 'check.safetensors')}`);
