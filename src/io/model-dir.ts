/**
 * Model directory names. `demo` is moekit's demo model (examples/demo-moe), which the package ships:
 * `npx moekit generate demo --prompt "draw 42="` and `loadModel('demo')` work in an installed package as in a
 * clone. A directory named `demo` in the working directory wins. The repository's example paths asked for
 * where they do not exist (an installed package, another working directory) get an error that names `demo`.
 */
import fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MoekitError } from '../util/errors.js';

/** the bundled demo model: examples/demo-moe beside src/ (a clone) or dist/ (a clone, an installed package) */
export const demoModelDir = fileURLToPath(new URL('../../examples/demo-moe', import.meta.url));

export function resolveModelDir(dir: string): string {
  if (dir === 'demo' && !fs.existsSync(dir)) {
    if (!fs.existsSync(path.join(demoModelDir, 'config.json'))) throw new MoekitError('the demo model is not in this copy of moekit', demoModelDir);
    return demoModelDir;
  }
  if (/^(\.\/)?examples\/(demo-moe|tiny-moe)\/?$/.test(dir) && !fs.existsSync(dir)) {
    throw new MoekitError(`no such directory here: ${dir} is in moekit's repository; the package ships the demo model as 'demo' (e.g. npx moekit generate demo --prompt "draw 42=")`, dir);
  }
  return dir;
}
