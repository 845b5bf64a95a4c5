#!/usr/bin/env node
// The modality mix of routed tokens, per layer and expert (as ERNIE 5.0 analyses its modality-agnostic routing):
// examples of the built-in corpus (text and image tasks in one stream) through a trained model, every routed
// assignment counted by the modality of its token. Prints a markdown table: per MoE layer and expert, the share of
// its assignments that are image tokens, against the image share of all tokens.
//   npm run build && node bench/modality-mix.mjs MODEL_DIR [--examples=400] [--out=FILE.md]
import * as fs from 'node:fs';

const args = process.argv.slice(2);
const opt = (n, d) => { const a = args.find((s) => s.startsWith(`--${n}=`)); return a ? a.slice(n.length + 3) : d; };
const dir = args.find((a) => !a.startsWith('--'));
if (!dir) { console.error('usage: node bench/modality-mix.mjs MODEL_DIR [--examples=400] [--out=FILE.md]'); process.exit(2); }
const n = Number(opt('examples', '400')), out = opt('out', null);
const { MoeModel } = await import('../dist/models/model.js');
const { exampleAt, IMAGE } = await import('../dist/tasks/corpus.js');
const m = MoeModel.load(dir);
const E = m.desc.moe.experts;
const counts = new Map(); // layer → [E][2]
let tokens = 0, imageTokens = 0;
for (let i = 0; i < n; i++) {
  const ex = exampleAt(12345, i); // a seed the training stream does not use
  const T = ex.ids.length;
  tokens += T;
  for (let t = 0; t < T; t++) if (ex.modality[t] === IMAGE) imageTokens++;
  m.forward(ex.ids, 1, T, { trace: { moe: (ev) => {
    const c = counts.get(ev.layer) ?? Array.from({ length: E }, () => [0, 0]);
    for (let a = 0; a < ev.experts.length; a++) c[ev.experts[a]][ex.modality[Math.floor(a / ev.K)] === IMAGE ? 1 : 0]++;
    counts.set(ev.layer, c);
  } } });
}
const share = imageTokens / tokens;
const lines = [`| layer | ${Array.from({ length: E }, (_, e) => `e${e}`).join(' | ')} | experts ≥ 90 % one modality |`, `|---:|${Array.from({ length: E }, () => '---:').join('|')}|---:|`];
for (const [l, c] of [...counts].sort((a, b) => a[0] - b[0])) {
  const sh = c.map(([t, im]) => (t + im ? im / (t + im) : NaN));
  const pure = sh.filter((x) => x >= 0.9 || x <= 0.1).length;
  lines.push(`| ${l} | ${sh.map((x) => (Number.isNaN(x) ? '-' : `${Math.round(100 * x)}`)).join(' | ')} | ${pure} of ${E} |`);
}
const md = `${lines.join('\n')}\n\nImage share of each expert's routed tokens (%), ${n} corpus examples (${tokens} tokens, ${(100 * share).toFixed(1)} % image tokens).\n`;
process.stdout.write(md);
if (out) fs.writeFileSync(out, md);
