#!/usr/bin/env node
// Fit the framework constants (host_kernel_s, launch_train_s, blackwell_kernel_eff) on the reference set's FIT rows only
// (src/plan/reference.ts), then print every row's error with the committed constants (src/plan/fitted.ts), as the
// markdown table of docs/planner.md "Reference set". Usage (after npx tsc -p tsconfig.json):
//   node bench/plan/fit_reference.mjs [--json]
import { fitReference, REFERENCE, referenceErrors, referenceStats } from '../../dist/plan/reference.js';
import { bandFor } from '../../dist/plan/band.js';
import { hardwarePreset } from '../../dist/plan/hardware.js';

const fit = fitReference(REFERENCE.filter((r) => r.split === 'fit'));
const res = referenceErrors();
if (process.argv.includes('--json')) { console.log(JSON.stringify({ fit, rows: res }, null, 1)); process.exit(0); }
console.log(`fit on ${REFERENCE.filter((r) => r.split === 'fit').length} rows: host_kernel_s ${(fit.host_kernel_s * 1e6).toFixed(3)} us, launch_train_s ${(fit.launch_train_s * 1e6).toFixed(1)} us, blackwell_kernel_eff ${fit.blackwell_kernel_eff.toFixed(3)}, RMS log error ${(100 * fit.rms_log_err).toFixed(1)}%\n`);
console.log('| set | row | generation | predicted | published | error |');
console.log('|---|---|---|---:|---:|---:|');
for (const r of res) {
  const f = (x) => (r.metric === 'mfu' ? `${(100 * x).toFixed(1)}% MFU` : `${x.toFixed(0)} t/s/GPU`);
  console.log(`| ${r.split} | ${r.name} | ${r.generation} | ${f(r.predicted)} | ${f(r.published)} | ${r.error >= 0 ? '+' : ''}${(100 * r.error).toFixed(1)}% |`);
}
for (const s of ['fit', 'validation']) {
  const st = referenceStats(res.filter((r) => r.split === s && r.moe));
  console.log(`\n${s} (MoE rows): ${st.rows} rows over ${st.generations.join(', ')}; median |error| ${(100 * st.median_abs).toFixed(1)}%, worst ${(100 * st.worst).toFixed(1)}% (${st.worst_at}), ${st.within_15} within 15%`);
}
for (const hw of ['h100', 'b200', 'a800', '910b']) { const b = bandFor(hardwarePreset(hw)); console.log(`band ${hw}: +-${(100 * b.p80_rel_error).toFixed(1)}% (${b.basis})`); }
