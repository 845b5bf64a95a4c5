#!/usr/bin/env node
// The loss curve of a training run as an SVG: next-token loss and the sampled sub-model's loss by step, from the run's
// metrics.jsonl (moekit train writes it), smoothed over 25 steps.   node scripts/loss-svg.mjs RUN/metrics.jsonl OUT.svg
import * as fs from 'node:fs';
const [src, out] = process.argv.slice(2);
if (!src || !out) { console.error('usage: node scripts/loss-svg.mjs RUN/metrics.jsonl OUT.svg'); process.exit(2); }
const steps = fs.readFileSync(src, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.type === 'step');
const smooth = (k) => steps.map((_, i) => { const w = steps.slice(Math.max(0, i - 24), i + 1).map((e) => e[k]).filter((v) => typeof v === 'number'); return w.length ? w.reduce((a, b) => a + b, 0) / w.length : null; });
const series = [['loss', '#1f77b4', 'full model'], ['sub_loss', '#ff7f0e', 'sampled sub-model']].map(([k, c, n]) => ({ c, n, ys: smooth(k) }));
const W = 640, H = 320, L = 50, R = 10, T = 20, B = 40, xmax = steps[steps.length - 1].step;
const ymax = Math.max(...series.flatMap((s) => s.ys.filter((v) => v !== null)).slice(0)) * 1.05;
const X = (s) => L + ((W - L - R) * s) / xmax, Y = (v) => T + (H - T - B) * (1 - v / ymax);
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`;
svg += `<rect width="${W}" height="${H}" fill="white"/><line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`;
for (let i = 0; i <= 5; i++) { const v = (ymax * i) / 5; svg += `<text x="${L - 4}" y="${Y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`; }
for (let i = 0; i <= 4; i++) { const s = Math.round((xmax * i) / 4); svg += `<text x="${X(s)}" y="${H - B + 14}" text-anchor="middle">${s}</text>`; }
svg += `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">step</text><text x="12" y="${(T + H - B) / 2}" transform="rotate(-90 12 ${(T + H - B) / 2})" text-anchor="middle">loss (answer tokens, mean of 25 steps)</text>`;
series.forEach((s, j) => {
  const pts = steps.map((e, i) => (s.ys[i] === null || (i % 10 !== 9 && i !== 0) ? null : `${X(e.step).toFixed(1)},${Y(s.ys[i]).toFixed(1)}`)).filter(Boolean).join(' ');
  svg += `<polyline fill="none" stroke="${s.c}" stroke-width="1.5" points="${pts}"/><rect x="${W - 170}" y="${T + 4 + 16 * j}" width="12" height="3" fill="${s.c}"/><text x="${W - 152}" y="${T + 9 + 16 * j}">${s.n}</text>`;
});
fs.writeFileSync(out, svg + '</svg>\n');
console.log(`wrote ${out}: ${steps.length} steps`);
