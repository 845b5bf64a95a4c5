/**
 * src/io/model-dir.ts: 'demo' names the bundled demo model unless the working directory has a 'demo'; the
 * repository's example paths, asked for where they do not exist, are refused with a message naming 'demo'.
 */
import fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { demoModelDir, resolveModelDir } from '../src/io/model-dir.js';
import { MoekitError } from '../src/util/errors.js';

const REPO = path.resolve(__dirname, '..');
/**
 * The tests run in worker threads (the mutation runs' pool), which cannot change the working directory: a working
 * directory that holds only `local` (relative names) is stood in for by fs.existsSync answering for relative paths
 * from that list; absolute paths are asked of the disk.
 */
function cwdHolding(...local: string[]): string[] {
  const real = fs.existsSync;
  const asked: string[] = [];
  vi.spyOn(fs, 'existsSync').mockImplementation((p) => {
    const s = String(p);
    asked.push(s);
    return path.isAbsolute(s) ? real(s) : local.includes(path.normalize(s).replace(/\/$/, ''));
  });
  return asked;
}
afterEach(() => { vi.restoreAllMocks(); });

/** the error resolveModelDir gives, as its message and its file */
function refusal(d: string): [string, string | undefined] {
  try { resolveModelDir(d); } catch (e) {
    expect(e).toBeInstanceOf(MoekitError);
    return [(e as MoekitError).message, (e as MoekitError).file];
  }
  throw new Error(`resolveModelDir('${d}') did not throw`);
}
const shipped = (d: string): [string, string] => [`no such directory here: ${d} is in moekit's repository; the package ships the demo model as 'demo' (e.g. npx moekit generate demo --prompt "draw 42=")`, d];

describe('resolveModelDir', () => {
  it('the demo model is examples/demo-moe of this copy', () => {
    expect(demoModelDir).toBe(path.join(REPO, 'examples', 'demo-moe'));
    expect(fs.existsSync(path.join(demoModelDir, 'config.json'))).toBe(true);
  });

  it("'demo' is the demo model, unless the working directory has its own 'demo'", () => {
    expect(resolveModelDir('demo')).toBe(demoModelDir); // the repository root has none
    const asked = cwdHolding();
    expect(resolveModelDir('demo')).toBe(demoModelDir);
    expect(asked).toEqual(['demo', path.join(demoModelDir, 'config.json')]);
    vi.restoreAllMocks();
    cwdHolding('demo');
    expect(resolveModelDir('demo')).toBe('demo');
  });

  it("'demo' where this copy has no demo model: an error naming the demo model's path", () => {
    const real = fs.existsSync;
    const seen: string[] = [];
    vi.spyOn(fs, 'existsSync').mockImplementation((p) => { seen.push(String(p)); return String(p) === path.join(demoModelDir, 'config.json') ? false : real(p); });
    expect(refusal('demo')).toEqual(['the demo model is not in this copy of moekit', demoModelDir]);
    expect(seen).toEqual(['demo', path.join(demoModelDir, 'config.json')]);
  });

  it("the repository's example paths where they do not exist: an error that names demo", () => {
    cwdHolding();
    for (const d of ['examples/demo-moe', './examples/demo-moe', 'examples/demo-moe/', './examples/tiny-moe/', 'examples/tiny-moe']) {
      expect(refusal(d)).toEqual(shipped(d));
    }
    vi.restoreAllMocks();
    cwdHolding('examples/tiny-moe');
    expect(resolveModelDir('examples/tiny-moe')).toBe('examples/tiny-moe');
    expect(resolveModelDir('./examples/tiny-moe/')).toBe('./examples/tiny-moe/');
    expect(refusal('examples/demo-moe')).toEqual(shipped('examples/demo-moe'));
  });

  it('any other name is returned as given, existing or not', () => {
    const asked = cwdHolding();
    for (const d of ['demo/', './demo', 'demos', 'xexamples/demo-moe', 'examples/demo-moe/x', 'examples/demo-moe//', '../examples/demo-moe',
      'examples/other-moe', '.examples/demo-moe', 'examples/demo-moex', '/abs/path', 'model.gguf']) {
      expect(resolveModelDir(d)).toBe(d);
    }
    expect(asked).toEqual([]);
    vi.restoreAllMocks();
    // from the repository root (where the tests run) the example paths exist
    expect(resolveModelDir('examples/demo-moe')).toBe('examples/demo-moe');
    expect(resolveModelDir('./examples/tiny-moe/')).toBe('./examples/tiny-moe/');
  });
});
