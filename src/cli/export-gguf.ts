/** `moekit export gguf MODEL_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0] [--json]`: models/gguf-export.ts, docs/gguf.md */
import { EXPORT_TYPES, exportGguf, type ExportType } from '../models/gguf-export.js';
import { GGML_TYPES } from '../io/gguf.js';
import { MoekitError } from '../util/errors.js';
import { parse } from './args.js';
import { resolveModelDir } from '../io/model-dir.js';

const USAGE = 'moekit export gguf MODEL_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0] [--json]';

export async function runExportGguf(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { type: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  if (positionals.length !== 2) throw new MoekitError(`expected MODEL_DIR and OUT.gguf (usage: ${USAGE})`);
  const type = (values.type ?? 'f32') as ExportType;
  if (!EXPORT_TYPES.includes(type)) throw new MoekitError(`--type must be one of ${EXPORT_TYPES.join(', ')}, got '${values.type}'`);
  const r = exportGguf(resolveModelDir(positionals[0]), positionals[1], type);
  const types = Object.fromEntries(Object.entries(r.types).map(([t, n]) => [GGML_TYPES[Number(t)][0], n]));
  if (values.json) process.stdout.write(JSON.stringify({ ...r, types }) + '\n');
  else process.stdout.write(`wrote ${r.file}: ${r.arch}, ${r.tensors} tensors (${Object.entries(types).map(([t, n]) => `${n} ${t}`).join(', ')}), ${(r.bytes / 2 ** 20).toFixed(2)} MiB\n`);
  return 0;
}
