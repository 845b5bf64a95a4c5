/**
 * The compiled JavaScript of a worker thread's script: beside the calling module in dist/, or, when the caller runs
 * from the TypeScript sources (vitest), the same file in dist/ (a worker runs JavaScript; `npm test` builds dist/).
 * `rel` is the worker's path under src/ (and dist/), e.g. `runtime/worker.js`.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MoekitError } from './errors.js';

export function compiledWorker(callerUrl: string, rel: string): URL {
  const name = rel.split('/').pop()!;
  if (!callerUrl.endsWith('.ts')) return new URL(`./${name}`, callerUrl);
  const url = new URL(`../../dist/${rel}`, callerUrl);
  if (!fs.existsSync(fileURLToPath(url))) throw new MoekitError('the compiled worker is missing: run npm run build:ts', fileURLToPath(url));
  return url;
}
