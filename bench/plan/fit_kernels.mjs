#!/usr/bin/env node
// Fit the H200 kernel constants on the fit rows of docs/plan-kernels-h200.json only (src/plan/fit-kernels.ts) and
// score them on its check rows. Usage (after npx tsc -p tsconfig.json): node bench/plan/fit_kernels.mjs [--json]
import { readFileSync } from 'node:fs';
import { fitKernelConstants, kernelNumbers, kernelStats } from '../../dist/plan/fit-kernels.js';
import { hardwarePreset } from '../../dist/plan/hardware.js';

const data = JSON.parse(readFileSync(new URL('../../docs/plan-kernels-h200.json', import.meta.url), 'utf8'));
const hw = hardwarePreset('h200');
const fit = fitKernelConstants(data.rows.filter((r) => r.set === 'fit'), hw);
const ns = kernelNumbers(data.rows, hw, fit.constants);
if (process.argv.includes('--json')) { console.log(JSON.stringify({ fit, numbers: ns }, null, 1)); process.exit(0); }
console.log(JSON.stringify(fit.constants));
const pc = (x) => `${(100 * x).toFixed(1)}%`;
for (const set of ['fit', 'check']) {
  for (const [g, re] of [['all', /./], ['gemm', /^(bf16|fp8)_ms$/], ['grouped', /^w/], ['attention', /fwd/], ['route/permute', /route|permute/]]) {
    const s = kernelStats(ns.filter((n) => n.set === set && re.test(n.what)));
    if (s.numbers) console.log(`| ${set} | ${g} | ${s.numbers} | ${pc(s.rms)} | ${pc(s.median_abs)} | ${pc(s.worst)} (${s.worst_at}) | ${s.within_15} |`);
  }
}
