#!/usr/bin/env node
// The built-in tasks in numbers (docs/tasks.md): one example each and tokens per example (mean / max over
// 2000 draws, <bos> and <eos> included), and how many held-out prompts each has.
// Run after `npm run build`:  node scripts/tasks-report.mjs [--dump DIR]
// --dump DIR also writes the tokenizer and examples.json (200 corpus examples per task with their ids) into
// DIR for scripts/check_tasks_tokenizer.py, which holds transformers' tokenizer to them.
import * as fs from 'node:fs';
import * as path from 'node:path';

const { TASKS, heldOut, tokenizeExample, writeTokenizer, VOCAB_SIZE } = await import('../dist/tasks/index.js');
const { rng } = await import('../dist/util/rng.js');

const md = (s) => '`' + s.replaceAll('\n', '⏎') + '`';
console.log(`vocabulary: ${VOCAB_SIZE} tokens\n`);
console.log('| task | kind | example prompt | answer | tokens mean | tokens max | held-out prompts (of ≤ 100) |');
console.log('|---|---|---|---|---:|---:|---:|');
for (const t of TASKS) {
  const r = rng(1);
  const ex = t.generate(r);
  let sum = 0, max = 0;
  for (let i = 0; i < 2000; i++) {
    const n = tokenizeExample(t.name, t.generate(r)).ids.length;
    sum += n; max = Math.max(max, n);
  }
  console.log(`| ${t.name} | ${t.kind} | ${md(ex.prompt)} | ${md(ex.answer)} | ${(sum / 2000).toFixed(1)} | ${max} | ${heldOut(t, 100).length} |`);
}

const i = process.argv.indexOf('--dump');
if (i > 0) {
  const dir = process.argv[i + 1];
  writeTokenizer(dir);
  const out = TASKS.flatMap((t) => {
    const r = rng(4);
    return Array.from({ length: 200 }, () => {
      const e = t.generate(r);
      return { task: t.name, prompt: e.prompt, answer: e.answer, ids: Array.from(tokenizeExample(t.name, e).ids) };
    });
  });
  fs.writeFileSync(path.join(dir, 'examples.json'), JSON.stringify(out));
  console.log(`\nwrote the tokenizer and ${out.length} examples to ${dir}`);
}
