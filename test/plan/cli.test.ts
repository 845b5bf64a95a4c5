import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPlanCommand } from '../../src/cli/plan.js';
import { main } from '../../src/cli/main.js';
import { captureOutput } from '../helpers.js';

const io = captureOutput();

const specFile = (text: string, name = 'spec.yaml') => {
  const dir = mkdtempSync(join(tmpdir(), 'moekit-plan-cli-'));
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const MIXTRAL = 'model: mixtral-8x22b\nhardware: { preset: h100, devices: 128 }\nparallel: { tp: 2, pp: 8, vpp: 7, ep: 8, etp: 1 }\ntraining: { seq_len: 4096, global_batch: 256 }\n';

describe('moekit plan CLI', () => {
  it('simulate --json has the documented keys', async () => {
    expect(await runPlanCommand(['simulate', specFile(MIXTRAL), '--json'])).toBe(0);
    const j = JSON.parse(io.stdout);
    for (const k of ['step_time_s', 'tokens_per_s', 'mfu', 'hfu', 'memory_gib_per_device', 'fits', 'breakdown']) expect(j).toHaveProperty(k);
    // the MoE blocks under the engine's phase names (src/moe: route, dispatch, experts, combine), then the rest
    expect(Object.keys(j.breakdown)).toEqual(['compute', 'route', 'dispatch', 'experts', 'combine', 'recompute', 'tp_comm', 'cp_comm', 'host', 'pp_comm', 'dp_comm', 'bubble', 'offload', 'optimizer']);
    expect(io.stdout).not.toMatch(/ep_comm/);
    io.stdout = '';
    expect(await runPlanCommand(['simulate', specFile(MIXTRAL)])).toBe(0);
    for (const k of ['route', 'dispatch', 'experts', 'combine']) expect(io.stdout).toMatch(new RegExp(`^  ${k} +[0-9.]+ m?s +[0-9.]+%$`, 'm'));
  });
  it('simulate from flags alone equals the same spec from a file', async () => {
    expect(await runPlanCommand(['simulate', '--json', '--model', 'mixtral-8x22b', '--hardware', 'h100', '--devices', '128', '--tp', '2', '--pp', '8', '--vpp', '7', '--ep', '8', '--etp', '1', '--seq-len', '4096', '--global-batch', '256'])).toBe(0);
    const flags = JSON.parse(io.stdout);
    io.stdout = '';
    await runPlanCommand(['simulate', specFile(MIXTRAL), '--json']);
    expect(flags.step_time_s).toBe(JSON.parse(io.stdout).step_time_s);
    expect(flags.stage_split.layers).toEqual([7, 7, 7, 7, 7, 7, 7, 7]);
  });
  it('--help on a subcommand prints the usage; neither SPEC nor flags is a one-line error', async () => {
    expect(await runPlanCommand(['simulate', '--help'])).toBe(0);
    expect(io.stdout).toMatch(/usage: moekit plan/);
    await expect(runPlanCommand(['simulate', '--tp', '4'])).rejects.toThrow(/missing SPEC file .*or flags/);
  });
  it('an uneven whole-layer split is reported beside the step', async () => {
    const sky = 'model: skywork-moe\nhardware: { preset: a800, devices: 1536 }\nparallel: { tp: 4, pp: 12, ep: 4, etp: 1 }\ntraining: { seq_len: 4096, global_batch: 1536 }\n';
    expect(await runPlanCommand(['simulate', specFile(sky)])).toBe(0);
    expect(io.stdout).toMatch(/layers per stage [\d,]*5[\d,]*: the busiest stage has 1\d\.\d% more work than the mean \(not in the step time/);
  });
  it('--grad-precision bf16 halves the gradient memory; a bad value names the field', async () => {
    await runPlanCommand(['simulate', specFile(MIXTRAL), '--json']);
    const fp32 = JSON.parse(io.stdout).memory_breakdown_gib.gradients;
    io.stdout = '';
    await runPlanCommand(['simulate', specFile(MIXTRAL), '--json', '--grad-precision', 'bf16']);
    expect(JSON.parse(io.stdout).memory_breakdown_gib.gradients).toBeCloseTo(fp32 / 2, 9);
    await expect(runPlanCommand(['simulate', specFile(MIXTRAL), '--grad-precision', 'fp16'])).rejects.toMatchObject({ file: 'training.grad_precision', message: expect.stringMatching(/fp32, bf16/) });
  });
  it('flags override the spec', async () => {
    await runPlanCommand(['simulate', specFile(MIXTRAL), '--json', '--recompute', 'full']);
    const full = JSON.parse(io.stdout);
    io.stdout = '';
    await runPlanCommand(['simulate', specFile(MIXTRAL), '--json']);
    expect(full.hfu).toBeGreaterThan(JSON.parse(io.stdout).hfu);
  });
  it('search --top N --json', async () => {
    expect(await runPlanCommand(['search', specFile(MIXTRAL), '--top', '3', '--json'])).toBe(0);
    const j = JSON.parse(io.stdout);
    expect(j.top).toHaveLength(3);
    expect(j.top[0]).toHaveProperty('layout');
    expect(j.top[0]).toHaveProperty('mfu');
  });
  it('search with nothing fitting exits 1 and shows the closest layout', async () => {
    const p = specFile('model: deepseek-v3\nhardware: { preset: h100, devices: 16 }\ntraining: { seq_len: 4096, global_batch: 64 }\n');
    expect(await runPlanCommand(['search', p])).toBe(1);
    expect(io.stdout).toMatch(/no layout fits in memory/);
    expect(io.stdout).toMatch(/closest: TP/);
  });
  it('export --engine megatron and mindspeed', async () => {
    expect(await runPlanCommand(['export', specFile(MIXTRAL), '--engine', 'megatron', '--json'])).toBe(0);
    expect(JSON.parse(io.stdout).args).toContain('--expert-model-parallel-size');
    io.stdout = '';
    expect(await runPlanCommand(['export', specFile(MIXTRAL), '--engine', 'mindspeed'])).toBe(0);
    expect(io.stdout).toMatch(/--use-mcore-models/);
  });
  it('op moe-layer and attention --json', async () => {
    await runPlanCommand(['op', 'moe-layer', '--hardware', 'h200', '--tokens', '8192', '--hidden', '4096', '--experts', '8', '--top-k', '2', '--expert-ffn', '14336', '--json']);
    const j = JSON.parse(io.stdout);
    expect(j.fwd_ms).toBeGreaterThan(5);
    expect(j.fwd_bwd_ms).toBeGreaterThan(2 * j.fwd_ms);
    // the engine's phase names, in the engine's order; they sum to the layer's time
    expect(Object.keys(j.phases_fwd_ms)).toEqual(['route', 'dispatch', 'experts', 'combine']);
    expect(Object.keys(j.phases_bwd_ms)).toEqual(['route', 'dispatch', 'experts', 'combine']);
    const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
    expect(sum(j.phases_fwd_ms)).toBeCloseTo(j.fwd_ms, 9);
    expect(sum(j.phases_fwd_ms) + sum(j.phases_bwd_ms)).toBeCloseTo(j.fwd_bwd_ms, 9);
    io.stdout = '';
    await runPlanCommand(['op', 'moe-layer', '--hardware', 'h200', '--tokens', '8192', '--hidden', '4096', '--experts', '8', '--top-k', '2', '--expert-ffn', '14336']);
    expect(io.stdout).toMatch(/forward by phase: route [0-9.]+ ms, dispatch [0-9.]+ ms, experts [0-9.]+ ms, combine [0-9.]+ ms/);
    io.stdout = '';
    await runPlanCommand(['op', 'attention', '--hardware', 'h200', '--batch', '2', '--seq', '4096', '--hidden', '4096', '--heads', '32', '--kv-heads', '8', '--head-dim', '128', '--json']);
    expect(JSON.parse(io.stdout)).toHaveProperty('fwd_bwd_ms');
  });
  it('user errors: one line, exit 1, naming the field', async () => {
    const bad = specFile('model: mixtral-8x22b\nhardware: { preset: h100, devices: 0 }\ntraining: { seq_len: 4096, global_batch: 8 }\n');
    expect(await main(['plan', 'simulate', bad])).toBe(1);
    expect(io.stderr).toBe('moekit: hardware.devices: must be an integer in [1, 1048576] (got 0)\n');
    io.stderr = '';
    expect(await main(['plan', 'simulate', specFile(MIXTRAL.replace('tp: 2', 'tp: 5'))])).toBe(1);
    expect(io.stderr).toMatch(/^moekit: parallel\.tp: tp 5 does not divide heads 48\n$/);
    io.stderr = '';
    expect(await main(['plan', 'op', 'moe-layer', '--hardware', 'h300', '--tokens', '1'])).toBe(1);
    expect(io.stderr).toMatch(/^moekit: --hardware: unknown hardware preset 'h300'/);
    io.stderr = '';
    expect(await main(['plan', 'export', specFile(MIXTRAL), '--engine', 'deepspeed'])).toBe(1);
    expect(io.stderr).toMatch(/--engine: must be megatron or mindspeed/);
  });
});
