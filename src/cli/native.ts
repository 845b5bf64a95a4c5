/**
 * `moekit native [--build] [--json]`: which native kernel core loaded (the shipped prebuild, or a build from source)
 * or why none did; `--build` builds it from source here (node-gyp through npm: scripts/build-native.mjs names what is
 * missing, e.g. the OpenBLAS headers).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelsInfo } from '../tensor/index.js';
import { nativeAddonCandidates, nativeAddonPath, nativeLoadError } from '../tensor/native.js';
import { MoekitError } from '../util/errors.js';
import { parse } from './args.js';

const USAGE = 'moekit native [--build] [--json]';

/** the package's root: this file is dist/cli/native.js */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function runNative(argv: string[]): Promise<number> {
  const { values } = parse(argv, { build: { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
  if (values.build) {
    // npm puts its own node-gyp on the PATH of a script, so nothing else needs installing
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const r = spawnSync(npm, ['run', '--silent', 'build:native'], { cwd: ROOT, stdio: 'inherit' });
    if (r.error) throw new MoekitError(`cannot run npm: ${r.error.message}`);
    if (r.status !== 0) return r.status ?? 1;
    process.stdout.write(`built ${path.join(ROOT, 'build', 'Release', 'moekit_native.node')}\n`);
    return 0;
  }
  const k = kernelsInfo();
  if (values.json) {
    process.stdout.write(JSON.stringify({ ...k, addon: nativeLoadError ? null : nativeAddonPath, candidates: nativeAddonCandidates }) + '\n');
  } else if (nativeLoadError) {
    process.stdout.write(`native kernels: not loaded (${nativeLoadError})\nusing the TypeScript reference kernels (exact, much slower)\n`);
  } else {
    process.stdout.write(`native kernels: ${nativeAddonPath}\nsimd ${k.simd}, ${k.threads} OpenBLAS threads, ${k.blas}\n`);
  }
  return 0;
}
