/** Regression tests for defects found reviewing the planner (bad input, edge cases). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';

let stdout = '';
let stderr = '';
beforeEach(() => {
  stdout = '';
  stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { stdout += String(s); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { stderr += String(s); return true; });
});
afterEach(() => vi.restoreAllMocks());

const dir = mkdtempSync(join(tmpdir(), 'moekit-plan-review-'));
let n = 0;
const file = (text: string, name = `spec${n++}.yaml`) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const MIXTRAL = 'model: mixtral-8x7b\nhardware: { preset: h100, devices: 16 }\nparallel: { tp: 2, pp: 2, ep: 4 }\ntraining: { seq_len: 4096, global_batch: 64 }\n';

describe('plan CLI flag errors', () => {
  it('unknown or malformed flags give one line, not a stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['plan', 'simulate', file(MIXTRAL), '--bogus'], /^moekit: plan simulate: Unknown option '--bogus'/],
      [['plan', 'search', file(MIXTRAL), '--top'], /^moekit: plan search: Option '--top <value>' argument missing/],
      [['plan', 'simulate', file(MIXTRAL), '--tp', '-1'], /^moekit: plan simulate: Option '--tp' argument is ambiguous/],
      [['plan', 'calibrate', '--x'], /^moekit: plan calibrate: Unknown option '--x'/],
      [['plan', 'presets', '--x'], /^moekit: plan presets: Unknown option '--x'/],
      [['plan', 'op', 'moe-layer', '--foo'], /^moekit: plan op: Unknown option '--foo'/],
    ];
    for (const [argv, re] of cases) {
      stderr = '';
      expect(await main(argv)).toBe(1);
      expect(stderr).toMatch(re);
      expect(stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
