#!/usr/bin/env node
// Fit the five global constants of `plan op` (gemm_eff of the NVIDIA presets, scatter_eff, launch_s, flash_fwd_eff,
// flash_bwd_eff) on the FIT SET ONLY (OP_MEASUREMENT_SETS.fit in src/plan/fitted.ts: lease A,
// docs/plan-op-measurements.json), by least squares on log time of fwd and fwd+bwd (fitOpConstants, src/plan/fit-op.ts).
// Then score the committed constants (src/plan/fitted.ts) on the fit set, on the check set (the held-out shapes on
// leases B and C, which the fit never reads) and on lease C's repeat of the fit shapes. bw_eff is not fitted (the
// measured copy bandwidth). Usage (after `npx tsc -p tsconfig.json`):
//   node bench/plan/fit_op_model.mjs [--json]
import { readFileSync } from 'node:fs';
import { hardwarePreset } from '../../dist/plan/hardware.js';
import { FITTED, OP_MEASUREMENT_SETS } from '../../dist/plan/fitted.js';
import { errorStats, fitOpConstants, opErrors, opShapeKey, selectOpRows } from '../../dist/plan/fit-op.js';

const load = (f) => JSON.parse(readFileSync(new URL('../../' + f, import.meta.url), 'utf8'));
const rowsOf = (sets) => sets.flatMap((s) => selectOpRows(load(s.file), s));
const fit = rowsOf(OP_MEASUREMENT_SETS.fit);
const check = rowsOf(OP_MEASUREMENT_SETS.check);
const repeat = rowsOf(OP_MEASUREMENT_SETS.repeat);
const fitShapes = new Set(fit.map(opShapeKey));
const shared = check.filter((r) => fitShapes.has(opShapeKey(r)) || fit.some((f) => f.name === r.name));
if (shared.length) throw new Error(`check set shares shapes with the fit set: ${shared.map((r) => r.name).join(', ')}`);

const hw = hardwarePreset('h200');
const refit = fitOpConstants(fit, hw);
const committed = Object.fromEntries(['gemm_eff', 'scatter_eff', 'launch_s', 'flash_fwd_eff', 'flash_bwd_eff'].map((k) => [k, FITTED[k].value]));
const score = (rows) => ({ ...errorStats(opErrors(rows, hw)), rows: opErrors(rows, hw) });
const leaseB = check.filter((r) => r.lease === 'B');
const leaseC = check.filter((r) => r.lease === 'C');
const out = {
  fit_rows: fit.length, check_rows: check.length,
  refit_on_fit_set: refit, committed,
  fit_set: score(fit), check_set: score(check), check_lease_b: score(leaseB), check_lease_c: score(leaseC), repeat_lease_c: score(repeat),
};
if (process.argv.includes('--json')) {
  console.log(JSON.stringify(out, null, 1));
} else {
  const f3 = (x) => (x < 1e-3 ? x.toExponential(2) : x.toFixed(3));
  console.log(`refit on the fit set (${fit.length} shapes, lease A): ` + Object.entries(refit).map(([k, v]) => `${k} ${f3(v)}`).join(', '));
  console.log('committed (src/plan/fitted.ts):         ' + Object.entries(committed).map(([k, v]) => `${k} ${f3(v)}`).join(', '));
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  for (const [label, s] of [['fit set (lease A)', out.fit_set], ['check set (9 held-out shapes x leases B, C)', out.check_set], ['  of which lease B', out.check_lease_b], ['  of which lease C', out.check_lease_c], ['repeat of the fit shapes (lease C; not a check)', out.repeat_lease_c]]) {
    console.log(`${label.padEnd(48)} ${String(s.shapes).padStart(2)} rows  RMS ${pct(s.rms).padStart(6)}  worst ${pct(s.worst).padStart(6)} (${s.worst_at})`);
  }
  console.log('\nper shape, committed constants:');
  for (const [label, s] of [['fit', out.fit_set], ['check', out.check_set], ['repeat', out.repeat_lease_c]]) {
    for (const r of s.rows) console.log(`${label.padEnd(6)} ${r.lease} ${r.kind.padEnd(9)} ${r.name.padEnd(18)} fwd ${r.fwd.predicted_ms.toFixed(2)} vs ${r.fwd.measured_ms.toFixed(2)} (${pct(r.fwd.error)})  fwd+bwd ${r.fwd_bwd.predicted_ms.toFixed(2)} vs ${r.fwd_bwd.measured_ms.toFixed(2)} (${pct(r.fwd_bwd.error)})`);
  }
}
