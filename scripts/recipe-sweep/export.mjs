// exports the built-in corpus for a PyTorch recipe sweep: per task, N training examples and 100 held-out pairs
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { TASKS, exampleAt, heldOut, tokenizer, tokenizeExample } from '../../dist/tasks/index.js';
const N = Number(process.argv[2] ?? 20000);
const out = {};
for (const task of TASKS) {
  const toks = [], starts = [];
  let i = 0;
  // examples of this task only: draw from the all-task stream with a mix of only this task
  const { corpus } = await import('../../dist/tasks/index.js');
  const c = corpus(7, { tasks: [task.name] });
  for (const ex of c) { if (starts.length >= (task.modality === "text" ? N : Math.floor(N/2))) break; toks.push(...ex.ids); starts.push(ex.answerStart, ex.ids.length); }
  const held = heldOut(task, 100).map((p) => { const e = tokenizeExample(task.name, p); return [Array.from(e.ids.slice(0, e.answerStart)), Array.from(e.ids.slice(e.answerStart))]; });
  out[task.name] = { kind: task.modality, toks: Buffer.from(Uint8Array.from(toks)).toString('base64'), starts: Buffer.from(new Uint16Array(starts).buffer).toString('base64'), held };
}
const buf = gzipSync(JSON.stringify(out), { level: 9 });
mkdirSync('tmp/sweep', { recursive: true }); writeFileSync('tmp/sweep/corpus.json.gz', buf);
console.log('bytes', buf.length);
