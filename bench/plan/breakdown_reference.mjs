#!/usr/bin/env node
// Print the simulator's step breakdown (seconds per step, and share of the step) of reference rows with the committed
// framework constants, to locate what a row's error comes from. Usage (after npx tsc -p tsconfig.json):
//   node bench/plan/breakdown_reference.mjs [row-id ...]     (default: every Megatron-Bridge row)
import { REFERENCE, MB_ROWS, committedFramework } from '../../dist/plan/reference.js';
import { resolveSpec } from '../../dist/plan/spec.js';
import { simulate } from '../../dist/plan/simulate.js';
import { blackwellEfficiencies } from '../../dist/plan/hardware.js';

const ids = process.argv.slice(2);
const rows = ids.length ? REFERENCE.filter((r) => ids.includes(r.id)) : MB_ROWS;
const k = committedFramework();
for (const r of rows) {
  const spec = resolveSpec(structuredClone(r.spec), r.id);
  if (r.generation === 'blackwell') spec.hardware = { ...spec.hardware, ...blackwellEfficiencies(k.blackwell_kernel_eff) };
  const sim = simulate(spec, { hostKernelS: k.host_kernel_s, launchS: k.launch_train_s });
  const p = spec.parallel;
  console.log(`\n${r.id} [${r.split}]: pred ${sim.tokens_per_s_per_device.toFixed(0)} vs ${r.tokens_per_s_per_device || '-'} t/s/GPU; step ${sim.step_time_s.toFixed(3)} s, m=${sim.microbatches}, tp${p.tp} pp${p.pp} vpp${p.vpp} ep${p.ep} dp${p.dp} graphs ${p.cuda_graphs}, mfu ${(100 * sim.mfu).toFixed(1)}%, mem ${sim.memory_gib_per_device.toFixed(0)} GiB fits ${sim.fits}`);
  for (const [name, v] of Object.entries(sim.breakdown)) if (v > 0) console.log(`  ${name.padEnd(10)} ${v.toFixed(4).padStart(9)} s  ${(100 * v / sim.step_time_s).toFixed(1).padStart(5)}%`);
}
