#!/usr/bin/env node
// Diagnostics of the reference rows (src/plan/reference.ts) with the committed framework constants, to locate what a
// row's error comes from. Usage (after npx tsc -p tsconfig.json):
//   node bench/plan/breakdown_reference.mjs [row-id ...]            the step breakdown (seconds, share of the step)
//   node bench/plan/breakdown_reference.mjs --launch [row-id ...]   per row: the step with free launches, the kernels
//       a step prices at launch_train_s, per layer and micro-batch the kernels and the modelled and published time,
//       and the launch cost that would make the row exact (what each row alone asks of launch_train_s)
// Default rows: every Megatron-Bridge row.
import { REFERENCE, MB_ROWS, committedFramework, simulateRow } from '../../dist/plan/reference.js';
import { simulate } from '../../dist/plan/simulate.js';

const args = process.argv.slice(2);
const launchMode = args.includes('--launch');
const ids = args.filter((a) => !a.startsWith('--'));
const rows = ids.length ? REFERENCE.filter((r) => ids.includes(r.id)) : MB_ROWS;
const k = committedFramework();
if (launchMode) {
  console.log('| row | split | step, free launches (s) | published step (s) | kernels a step at launch_train_s | per layer x micro-batch: kernels, modelled ms (free launches), published ms | launch_train_s that makes it exact (us) |');
  console.log('|---|---|---:|---:|---:|---|---:|');
}
for (const r of rows) {
  const { spec, sim } = simulateRow(r, k);
  const p = spec.parallel;
  if (launchMode) {
    if (!r.tokens_per_s_per_device) continue;
    const s0 = simulate(spec, { hostKernelS: k.host_kernel_s, launchS: 0 });
    const s1 = simulate(spec, { hostKernelS: k.host_kernel_s, launchS: 1e-6 });
    const n = (s1.step_time_s - s0.step_time_s) / 1e-6;
    const pub = (spec.training.global_batch * spec.training.seq_len) / (spec.devices * r.tokens_per_s_per_device);
    const lm = (s0.microbatches * spec.model.layers) / p.pp;
    const need = n / lm >= 1 ? `${(((pub - s0.step_time_s) / n) * 1e6).toFixed(1)}` : 'n/a (layers captured)';
    console.log(`| ${r.id} | ${r.split} | ${s0.step_time_s.toFixed(2)} | ${pub.toFixed(2)} | ${n.toFixed(0)} | ${(n / lm).toFixed(0)}, ${((s0.step_time_s / lm) * 1e3).toFixed(1)}, ${((pub / lm) * 1e3).toFixed(1)} | ${need} |`);
    continue;
  }
  console.log(`\n${r.id} [${r.split}]: pred ${sim.tokens_per_s_per_device.toFixed(0)} vs ${r.tokens_per_s_per_device || '-'} t/s/GPU; step ${sim.step_time_s.toFixed(3)} s, m=${sim.microbatches}, tp${p.tp} pp${p.pp} vpp${p.vpp} ep${p.ep} dp${p.dp} graphs ${p.cuda_graphs}, mfu ${(100 * sim.mfu).toFixed(1)}%, mem ${sim.memory_gib_per_device.toFixed(0)} GiB fits ${sim.fits}`);
  for (const [name, v] of Object.entries(sim.breakdown)) if (v > 0) console.log(`  ${name.padEnd(10)} ${v.toFixed(4).padStart(9)} s  ${((100 * v) / sim.step_time_s).toFixed(1).padStart(5)}%`);
}
