/** Helpers shared by the tests. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, vi } from 'vitest';
import { rng } from '../src/runtime/sampling.js';
import { MoekitError } from '../src/util/errors.js';
export { rng };

/** max |a[i] − b[i]|; the lengths must agree */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Capture what each test writes to stdout / stderr (registered per file, reset before each test):
 * `const io = captureOutput();` then read `io.stdout`, `io.stderr`.
 */
export function captureOutput(): { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '' };
  beforeEach(() => {
    io.stdout = '';
    io.stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { io.stdout += String(s); return true; });
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { io.stderr += String(s); return true; });
  });
  afterEach(() => vi.restoreAllMocks());
  return io;
}

/** run the `moekit` CLI in-process with argv; its exit code and what it printed */
export async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const { main } = await import('../src/cli/main.js');
  let out = '', err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  try {
    return { code: await main(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** seeded random test data: MOEKIT_TEST_SEED overrides `seed` to fuzz further */
export function randomTools(seed: number) {
  const R = rng(Number(process.env.MOEKIT_TEST_SEED ?? seed));
  return {
    R,
    /** an integer in [lo, hi] */
    int: (lo: number, hi: number): number => lo + Math.floor(R() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(R() * xs.length)],
    /** n random floats in [-scale, scale) */
    randn(n: number, scale = 1): Float32Array {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = (R() * 2 - 1) * scale;
      return a;
    },
  };
}

/**
 * A scratch directory for one test file: made before its tests, removed after them; mocks restored after each
 * test. Returns a getter (the directory exists only once the tests run).
 */
export function scratchDir(prefix: string): () => string {
  let dir = '';
  beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix)); });
  afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });
  afterEach(() => { vi.restoreAllMocks(); });
  return () => dir;
}

/**
 * A checkpoint directory that is `base` with some config.json keys overridden: a temp dir whose files link to the
 * base's, with a rewritten config.json (for config variants of the tiny fixtures).
 */
export function configVariantDir(base: string, overrides: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `moekit-${path.basename(base)}-`));
  for (const f of fs.readdirSync(base)) if (f !== 'config.json') fs.symlinkSync(path.join(base, f), path.join(dir, f));
  const cfg = { ...JSON.parse(fs.readFileSync(path.join(base, 'config.json'), 'utf8')), ...overrides };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  return dir;
}

/** fn must throw a MoekitError whose message matches `re` and that names `file` */
export function expectError(fn: () => unknown, re: RegExp, file: string): MoekitError {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err, 'expected an error').toBeInstanceOf(MoekitError);
  const me = err as MoekitError;
  expect(me.message).toMatch(re);
  expect(me.file).toBe(file);
  return me;
}

/**
 * x rounded to bfloat16 (8 significant bits, round to nearest, ties to even), computed arithmetically in float64
 * and independently of src/io/dtypes.ts's bit manipulation: x = q · ulp with ulp = 2^(e − 7) for 2^e ≤ |x| < 2^(e+1)
 * (2^−133 below the normal range), q rounded half to even. Finite x whose result is finite.
 */
export function bf16Round(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -126) - 7);
  const q = a / ulp; // exact: a power-of-two scaling
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  return Math.sign(x) * r * ulp;
}

/** the float a bfloat16 bit pattern holds (its bits are the top half of a float32's) */
export function bf16Value(bits: number): number {
  const f = new Float32Array(new Uint32Array([(bits & 0xffff) << 16]).buffer);
  return f[0];
}

/**
 * Central finite differences at the `n` largest entries of an analytic gradient g of f with respect to p (in place:
 * each entry is restored): the largest |g| (`top`) and the worst |(f(p + h) − f(p − h)) / 2h − g| relative to it
 */
export function fdAtTopEntries(p: Float32Array, g: Float32Array, f: () => number, h: number, n = 3): { top: number; rel: number } {
  const order = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, n);
  const top = Math.abs(g[order[0]]);
  let rel = 0;
  for (const i of order) {
    const x0 = p[i];
    p[i] = x0 + h; const a = f();
    p[i] = x0 - h; const b = f();
    p[i] = x0;
    rel = Math.max(rel, Math.abs((a - b) / (2 * h) - g[i]) / top);
  }
  return { top, rel };
}
