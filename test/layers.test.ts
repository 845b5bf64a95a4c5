/**
 * The house's layering, checked on every import in src/: layers import downward only (tensor and util at
 * the bottom; io, and beside it tasks (the built-in corpus, needing only util and io); moe, with its own types;
 * models; runtime and train; experts; server and cli on top (cli above server: `moekit serve` starts it); plan beside,
 * needing only io, util and the model description); index.ts, the library's entry point, above them all).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../src');
const RANK: Record<string, number> = { util: 0, tensor: 0, io: 1, tasks: 1, moe: 2, models: 3, runtime: 4, train: 4, experts: 5, server: 6, cli: 6, 'index.ts': 7 };
/** what each top-level folder may import besides itself */
function allowed(from: string, to: string): boolean {
  if (from === to) return true;
  if (from === 'plan') return ['util', 'io', 'models'].includes(to);
  if (to === 'plan') return from === 'cli' || from === 'server' || from === 'index.ts';
  if (from === 'tensor') return to === 'util';
  if (from === 'tasks') return ['util', 'io'].includes(to);
  if (from === 'util') return false;
  if (from === 'cli' && to === 'server') return true;
  if (from === 'runtime' && to === 'train') return false;
  if (from === 'train' && to === 'runtime') return false;
  return RANK[to] !== undefined && RANK[to] < RANK[from];
}

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

describe('layering', () => {
  it('every import in src/ goes to its own layer or one below', () => {
    const bad: string[] = [];
    for (const f of files(SRC)) {
      const from = path.relative(SRC, f).split(path.sep)[0];
      const text = fs.readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g)) {
        const to = path.relative(SRC, path.resolve(path.dirname(f), m[1])).split(path.sep)[0];
        if (!allowed(from, to)) bad.push(`${path.relative(SRC, f)} → ${m[1]}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
