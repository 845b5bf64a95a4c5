#!/usr/bin/env node
// Search speed: simulate >= 1e5 layouts (exhaustive mode: every valid TP/CP/PP/VPP/EP/ETP layout x recompute x
// micro-batch x ZeRO stage) for Pangu Ultra MoE on 6,144 Ascend 910B and DeepSeek-V3 on 2,048 H800, and time it.
// Usage: npx tsc -p tsconfig.json && node bench/plan/search_speed.mjs
import os from 'node:os';
import { CALIBRATION } from '../../dist/plan/calibration.js';
import { resolveSpec } from '../../dist/plan/spec.js';
import { search } from '../../dist/plan/search.js';

const out = { machine: `${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, node ${process.version}`, runs: [] };
for (const id of ['pangu-ultra-moe', 'deepseek-v3', 'qwen3-235b-a22b']) {
  const row = CALIBRATION.find((r) => r.id === id);
  const spec = resolveSpec(structuredClone(row.spec), id, { template: true });
  search(spec, { top: 1 }); // warm-up (JIT)
  const t0 = performance.now();
  const r = search(spec, { top: 5, exhaustive: true });
  const s = (performance.now() - t0) / 1e3;
  out.runs.push({ id, devices: spec.devices, layouts: r.layouts_enumerated, simulations: r.simulations, seconds: +s.toFixed(2), per_second: Math.round(r.simulations / s), best: r.top[0]?.layout });
}
console.log(JSON.stringify(out, null, 1));
