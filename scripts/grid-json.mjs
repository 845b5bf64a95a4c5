#!/usr/bin/env node
// A model's elastic-grid.json (the dashboard's elastic view, src/server/dashboard.ts) from the markdown table that
// bench/elastic-grid.mjs writes:   node scripts/grid-json.mjs GRID.md MODEL_DIR/elastic-grid.json
import * as fs from 'node:fs';
const [src, out] = process.argv.slice(2);
if (!src || !out) { console.error('usage: node scripts/grid-json.mjs GRID.md OUT.json'); process.exit(2); }
const rows = fs.readFileSync(src, 'utf8').split('\n').filter((l) => /^\| \d/.test(l)).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
const params = (s) => Math.round(parseFloat(s) * (s.endsWith('M') ? 1e6 : s.endsWith('K') ? 1e3 : 1));
const grid = rows.map((c) => {
  const n = c.length; // depth, experts, top-k, tasks…, text, image, mean, of full, total, active, active/full, total/full, MB, tok/s
  return { depth: +c[0], experts: +c[1], top_k: +c[2], text: +c[n - 10], image: +c[n - 9], mean: +c[n - 8],
    total_params: params(c[n - 6]), active_params: params(c[n - 5]), mb: +c[n - 2], decode_tok_s: +c[n - 1] };
});
const doc = { source: 'docs/elastic.md: bench/elastic-grid.mjs on this model, held-out exact match at n = 40 per task; decode tok/s on the 2-core machine', grid };
fs.writeFileSync(out + '.tmp', JSON.stringify(doc, null, 1) + '\n'); fs.renameSync(out + '.tmp', out);
console.log(`wrote ${out}: ${grid.length} sub-models`);
