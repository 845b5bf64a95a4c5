#!/usr/bin/env node
// The elastic grid of a trained model: every (depth × experts × top-k) sub-model extracted as a standalone
// checkpoint (moekit extract), loaded as an ordinary model, and measured: exact match per built-in task on held-out
// prompts, total and active parameters, checkpoint bytes, decode speed (greedy, 64 tokens, median of 3).
// Writes a markdown table and an SVG plot (mean accuracy against active parameters).
//   npm run build && node bench/elastic-grid.mjs MODEL_DIR [--n=40] [--out=docs/elastic-grid.md] [--svg=docs/elastic-grid.svg] [--label=elastic]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const args = process.argv.slice(2);
const opt = (n, d) => { const a = args.find((s) => s.startsWith(`--${n}=`)); return a ? a.slice(n.length + 3) : d; };
const src = args.find((a) => !a.startsWith('--'));
if (!src) { console.error('usage: node bench/elastic-grid.mjs MODEL_DIR [--n=40] [--out=FILE.md] [--svg=FILE.svg]'); process.exit(2); }
const N = Number(opt('n', '40')), outMd = opt('out', null), outSvg = opt('svg', null), label = opt('label', path.basename(path.resolve(src)));
process.env.MOEKIT_THREADS ??= '1';
const { extractSubModel } = await import('../dist/models/extract.js');
const { MoeModel } = await import('../dist/models/model.js');
const { paramCounts } = await import('../dist/models/params.js');
const { loadTokenizer } = await import('../dist/io/tokenizer.js');
const { evaluate } = await import('../dist/runtime/eval.js');
const { selectTasks } = await import('../dist/tasks/registry.js');
const { generate } = await import('../dist/runtime/generate.js');
const { depthLayers, widthMask } = await import('../dist/train/elastic.js');

const full = MoeModel.load(src);
const d = full.desc;
const E = d.moe.experts, G = d.moe.nGroup;
const depths = [...new Set([2, Math.ceil(d.nLayers * 0.75), d.nLayers])].filter((x) => x >= 1 && x <= d.nLayers).sort((a, b) => a - b);
const widths = [E / 4, E / 2, E].filter((x) => Number.isInteger(x) && x >= d.moe.topK / 2 && x % G === 0);
const ks = [...new Set([1, d.moe.topK])];
const tasks = selectTasks('all');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-grid-'));
const rows = [];
for (const depth of depths) for (const experts of widths) for (const k of ks) {
  if (k > experts) continue;
  const layers = depthLayers(d.nLayers, depth);
  const mask = widthMask(E, G, experts);
  const keep = Object.fromEntries(layers.filter((l) => d.layers[l].mlp === 'moe').map((l) => [l, [...mask.keys()].filter((e) => mask[e])]));
  const dir = path.join(tmp, `d${depth}-e${experts}-k${k}`);
  extractSubModel(src, dir, { layers, experts: keep, topK: k });
  const m = MoeModel.load(dir);
  const tok = loadTokenizer(dir);
  const rep = evaluate(m, tok, { tasks, n: N });
  const pc = paramCounts(m.desc);
  const bytes = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
  const speeds = [];
  for (let r = 0; r < 3; r++) speeds.push(generate(m, [1, 40, 41, 42], { maxNewTokens: 64, greedy: true, stopAtEos: false }).timings.decodeTokensPerS);
  rows.push({ depth, experts, k, tasks: rep.tasks, text: rep.text, image: rep.image, mean: rep.mean, total: pc.total, active: pc.activePerToken, bytes, tps: speeds.sort((a, b) => a - b)[1] });
  process.stderr.write(`d${depth} e${experts} k${k}: mean ${(100 * rep.mean).toFixed(1)} % (text ${(100 * rep.text).toFixed(1)}, image ${(100 * rep.image).toFixed(1)}), active ${pc.activePerToken}, ${speeds[1].toFixed(0)} tok/s\n`);
}
fs.rmSync(tmp, { recursive: true, force: true });
const fullRow = rows.find((r) => r.depth === d.nLayers && r.experts === E && r.k === d.moe.topK);
const pct = (x) => (x === null ? '-' : `${(100 * x).toFixed(1)}`);
const lines = [];
lines.push(`| depth | experts | top-k | ${tasks.map((t) => t.name).join(' | ')} | text | image | mean | of full | total params | active params | active / full | total / full | MB | decode tok/s |`);
lines.push(`|---:|---:|---:|${tasks.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
for (const r of rows) {
  lines.push(`| ${r.depth} | ${r.experts} | ${r.k} | ${tasks.map((t) => pct(r.tasks[t.name].exact_match)).join(' | ')} | ${pct(r.text)} | ${pct(r.image)} | ${pct(r.mean)} | ${(100 * r.mean / fullRow.mean).toFixed(0)} % | ${(r.total / 1e6).toFixed(2)}M | ${(r.active / 1e6).toFixed(2)}M | ${(100 * r.active / fullRow.active).toFixed(0)} % | ${(100 * r.total / fullRow.total).toFixed(0)} % | ${(r.bytes / 1e6).toFixed(1)} | ${r.tps.toFixed(0)} |`);
}
const md = `${lines.join('\n')}\n\n${label}: ${rows.length} sub-models, ${N} held-out prompts per task; decode: greedy, 64 tokens, median of 3, MOEKIT_THREADS=${process.env.MOEKIT_THREADS}, ${os.cpus()[0]?.model ?? '?'}\n`;
process.stdout.write(md);
if (outMd) fs.writeFileSync(outMd, md);
if (outSvg) {
  const W = 560, H = 360, pad = 50, maxA = Math.max(...rows.map((r) => r.active));
  const x = (a) => pad + (a / maxA) * (W - 2 * pad), y = (m) => H - pad - m * (H - 2 * pad);
  const color = { 1: '#d62728', 2: '#1f77b4', 4: '#2ca02c', 8: '#9467bd' };
  const dots = rows.map((r) => `<circle cx="${x(r.active).toFixed(1)}" cy="${y(r.mean).toFixed(1)}" r="${2 + r.depth}" fill="${color[r.k] ?? '#555'}" fill-opacity="0.7"><title>depth ${r.depth}, ${r.experts} experts, top-${r.k}: ${pct(r.mean)} %</title></circle>`).join('\n');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>
<text x="${W / 2}" y="${H - 12}" text-anchor="middle">active parameters (M)</text>
<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">mean exact match</text>
${[0, 0.25, 0.5, 0.75, 1].map((v) => `<text x="${pad - 6}" y="${y(v) + 4}" text-anchor="end">${v * 100}%</text><line x1="${pad}" x2="${W - pad}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`).join('\n')}
${[0.25, 0.5, 0.75, 1].map((v) => `<text x="${x(v * maxA)}" y="${H - pad + 16}" text-anchor="middle">${(v * maxA / 1e6).toFixed(2)}</text>`).join('\n')}
${dots}
<text x="${W - pad}" y="${pad - 10}" text-anchor="end">${label}: colour = top-k (red 1, blue 2), size = depth</text>
</svg>
`;
  fs.writeFileSync(outSvg, svg);
}
