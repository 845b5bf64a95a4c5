#!/usr/bin/env node
// The mutants left alive in a StrykerJS JSON report (scripts/mutate.mjs writes reports/mutation-<module>.json):
// `node scripts/mutation-survivors.mjs reports/mutation-io.json [src/io/gguf.ts …]` prints, per file, its score
// and each survived or uncovered mutant as file:line:column, the mutator, and the original → the replacement.
import * as fs from 'node:fs';

const [report, ...only] = process.argv.slice(2);
if (!report) { process.stderr.write('usage: node scripts/mutation-survivors.mjs REPORT.json [FILE …]\n'); process.exit(2); }
const { files } = JSON.parse(fs.readFileSync(report, 'utf8'));
const alive = new Set(['Survived', 'NoCoverage']);
for (const [file, f] of Object.entries(files)) {
  if (only.length && !only.some((o) => file.endsWith(o))) continue;
  const lines = f.source.split('\n');
  const killed = f.mutants.filter((m) => m.status === 'Killed' || m.status === 'Timeout').length;
  const left = f.mutants.filter((m) => alive.has(m.status));
  const counted = killed + left.length;
  process.stdout.write(`${file}: ${counted ? ((100 * killed) / counted).toFixed(1) : 'n/a'}% (${killed} of ${counted}; ${left.length} alive)\n`);
  for (const m of left.sort((a, b) => a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column)) {
    const { start, end } = m.location;
    const orig = start.line === end.line
      ? lines[start.line - 1].slice(start.column - 1, end.column - 1)
      : `${lines[start.line - 1].slice(start.column - 1)} …`;
    const cut = (s) => { const t = s.replace(/\s+/g, ' '); return t.length > 90 ? `${t.slice(0, 90)}…` : t; };
    process.stdout.write(`  ${file}:${start.line}:${start.column} ${m.status === 'NoCoverage' ? '[uncovered] ' : ''}${m.mutatorName}: ${cut(orig)} → ${cut(m.replacement ?? '')}\n`);
  }
}
