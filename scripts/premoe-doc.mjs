#!/usr/bin/env node
// The tables and the plot of docs/premoe.md from a saved `moekit experts eval --json` report:
//   node scripts/premoe-doc.mjs EVAL.json [PLOT.svg]      (prints the markdown; writes the SVG when named)
import * as fs from 'node:fs';
const { reportMarkdown } = await import('../dist/cli/experts.js');
const { plotSvg } = await import('../dist/cli/experts-plot.js');
const r = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const E = r.grid.find((g) => g.score === 'full').keep;
process.stdout.write(reportMarkdown(r, E));
if (process.argv[3]) fs.writeFileSync(process.argv[3], plotSvg(r, E));
