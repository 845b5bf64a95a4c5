/** `moekit eval MODEL_DIR [--tasks a,b|text|image|all] [--n N] [--greedy] [--dtype auto|f32|q8_0|q4_0] [--json]` */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTokenizer } from '../io/tokenizer.js';
import { MoeModel } from '../models/model.js';
import { evaluate } from '../runtime/eval.js';
import { selectTasks } from '../tasks/registry.js';
import { MoekitError } from '../util/errors.js';
import { terminalProgress } from './bar.js';
import { dtypeFlag, numFlag, onePositional, parse } from './args.js';

const USAGE = 'moekit eval MODEL_DIR [--tasks a,b|text|image|all] [--n N] [--greedy] [--dtype auto|f32|q8_0|q4_0] [--json]';

const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);

export async function runEval(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    tasks: { type: 'string' }, n: { type: 'string' }, greedy: { type: 'boolean' }, dtype: { type: 'string' }, json: { type: 'boolean' },
  }, USAGE);
  const dir = onePositional(positionals, 'model directory', USAGE);
  const tasks = selectTasks(values.tasks ?? 'all');
  const n = numFlag(values.n, 'n', { int: true, min: 1 }) ?? 100;
  if (!fs.existsSync(dir)) throw new MoekitError('no such directory', dir);
  const tok = loadTokenizer(dir);
  if (!tok) throw new MoekitError('eval needs the tokenizer the model was trained with (tokenizer.json); none here', path.join(dir, 'tokenizer.json'));
  const model = MoeModel.load(dir, { onProgress: terminalProgress(), dtype: dtypeFlag(values.dtype) });
  const r = evaluate(model, tok, { tasks, n, onProgress: terminalProgress() });
  if (values.json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  const w = Math.max(8, ...tasks.map((t) => t.name.length));
  const lines = [`${'task'.padEnd(w)}  ${'kind'.padEnd(13)}  ${'n'.padStart(4)}  exact match`];
  for (const t of tasks) lines.push(`${t.name.padEnd(w)}  ${t.kind.padEnd(13)}  ${String(r.tasks[t.name].n).padStart(4)}  ${pct(r.tasks[t.name].exact_match).padStart(11)}`);
  const count = (m?: string) => tasks.filter((t) => m === undefined || t.modality === m).length;
  for (const [name, m, x] of [['text', 'text', r.text], ['image', 'image', r.image], ['all', undefined, r.mean]] as const) {
    if (count(m)) lines.push(`${name.padEnd(w)}  ${`mean of ${count(m)}`.padEnd(13)}  ${''.padStart(4)}  ${pct(x).padStart(11)}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
