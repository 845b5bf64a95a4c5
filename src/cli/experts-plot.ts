/** The evaluation grid as an SVG line plot: accuracy relative to the full model against the experts kept, one line per score. */
import type { PatternEvalReport } from '../experts/evaluate.js';

const COLORS: Record<string, string> = { tcess: '#d62728', frequency: '#1f77b4', soft: '#2ca02c', reap: '#9467bd', 'end to end': '#333333' };

export function plotSvg(r: PatternEvalReport, experts: number): string {
  const W = 560, Hh = 360, x0 = 60, x1 = 420, y0 = 310, y1 = 50;
  const full = r.grid.find((g) => g.score === 'full');
  const rows = r.grid.filter((g) => g.score !== 'full');
  const ymax = Math.max(1.1, ...rows.map((g) => g.relative), ...r.endToEnd.map((e) => e.relative));
  const X = (keep: number) => x0 + ((x1 - x0) * keep) / experts;
  const Y = (v: number) => y0 - ((y0 - y1) * v) / ymax;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="black"/><line x1="${x0}" y1="${y1}" x2="${x0}" y2="${y0}" stroke="black"/>`,
    `<text x="${(x0 + x1) / 2}" y="${Hh - 12}" text-anchor="middle">experts kept per MoE layer (of ${experts})</text>`,
    `<text x="14" y="${(y0 + y1) / 2}" transform="rotate(-90 14 ${(y0 + y1) / 2})" text-anchor="middle">exact match vs the full model</text>`,
  ];
  for (let v = 0; v <= ymax + 1e-9; v += 0.25) out.push(`<text x="${x0 - 6}" y="${Y(v) + 4}" text-anchor="end">${Math.round(v * 100)}%</text><line x1="${x0}" x2="${x1}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/>`);
  const keeps = [...new Set([...rows.map((g) => g.keep), experts])].sort((a, b) => a - b);
  for (const k of keeps) out.push(`<text x="${X(k)}" y="${y0 + 16}" text-anchor="middle">${k}</text>`);
  const series: [string, { keep: number; v: number }[]][] = [...new Set(rows.map((g) => g.score))].map((s) => [s, [
    ...rows.filter((g) => g.score === s).map((g) => ({ keep: g.keep, v: g.relative })), ...(full ? [{ keep: full.keep, v: 1 }] : []),
  ].sort((a, b) => a.keep - b.keep)]);
  if (r.endToEnd.length) series.push(['end to end', [...r.endToEnd.map((e) => ({ keep: e.keep, v: e.relative })), { keep: experts, v: 1 }].sort((a, b) => a.keep - b.keep)]);
  series.forEach(([name, pts], i) => {
    const c = COLORS[name] ?? '#888';
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${name === 'end to end' ? ' stroke-dasharray="5,4"' : ''} points="${pts.map((p) => `${X(p.keep).toFixed(1)},${Y(p.v).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) out.push(`<circle cx="${X(p.keep).toFixed(1)}" cy="${Y(p.v).toFixed(1)}" r="3.5" fill="${c}"><title>${name}, ${p.keep}/${experts}: ${(100 * p.v).toFixed(1)} %</title></circle>`);
    out.push(`<line x1="${x1 + 20}" x2="${x1 + 40}" y1="${y1 + 10 + i * 18}" y2="${y1 + 10 + i * 18}" stroke="${c}" stroke-width="2"/><text x="${x1 + 46}" y="${y1 + 14 + i * 18}">${name}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
