/**
 * src/io/model-dir.ts: 'demo' names the bundled demo model unless the working directory has a 'demo'; the
 * repository's example paths, asked for where they do not exist, are refused with a message naming 'demo'.
 */
import fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { demoModelDir, resolveModelDir } from '../src/io/model-dir.js';
import { MoekitError } from '../src/util/errors.js';
import { scratchDir } from './helpers.js';

const tmp = scratchDir('moekit-model-dir-');
const REPO = path.resolve(__dirname, '..');
const cwd = process.cwd();
let dir = '';
beforeEach(() => { dir = fs.mkdtempSync(path.join(tmp(), 'cwd-')); process.chdir(dir); });
afterEach(() => { process.chdir(cwd); });

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
    expect(resolveModelDir('demo')).toBe(demoModelDir);
    fs.mkdirSync('demo');
    expect(resolveModelDir('demo')).toBe('demo');
  });

  it("'demo' where this copy has no demo model: an error naming the demo model's path", () => {
    const real = fs.existsSync;
    const seen: string[] = [];
    vi.spyOn(fs, 'existsSync').mockImplementation((p) => { seen.push(String(p)); return String(p) === path.join(demoModelDir, 'config.json') ? false : real(p); });
    expect(refusal('demo')).toEqual(['the demo model is not in this copy of moekit', demoModelDir]);
    expect(seen).toEqual(['demo', path.join(demoModelDir, 'config.json')]);
  });

  it('the repository\'s example paths where they do not exist: an error that names demo', () => {
    for (const d of ['examples/demo-moe', './examples/demo-moe', 'examples/demo-moe/', './examples/tiny-moe/', 'examples/tiny-moe']) {
      expect(refusal(d)).toEqual(shipped(d));
    }
    fs.mkdirSync('examples/tiny-moe', { recursive: true });
    expect(resolveModelDir('examples/tiny-moe')).toBe('examples/tiny-moe');
    expect(refusal('examples/demo-moe')).toEqual(shipped('examples/demo-moe'));
  });

  it('any other name is returned as given, existing or not', () => {
    for (const d of ['demo/', './demo', 'demos', 'xexamples/demo-moe', 'examples/demo-moe/x', 'examples/demo-moe//', '../examples/demo-moe',
      'examples/other-moe', '.examples/demo-moe', 'examples/demo-moex', '/abs/path', 'model.gguf']) {
      expect(resolveModelDir(d)).toBe(d);
    }
    process.chdir(REPO);
    expect(resolveModelDir('examples/demo-moe')).toBe('examples/demo-moe');
  });
});
