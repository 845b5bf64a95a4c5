/** `moekit export gguf MODEL_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0] [--json]` (src/io/gguf-write.ts via models/gguf-export.ts) */
import { MoekitError } from '../util/errors.js';

export async function runExport(argv: string[]): Promise<number> {
  const [format, ...rest] = argv;
  if (format !== 'gguf') throw new MoekitError(`moekit export: unknown format '${format ?? ''}' (only: gguf)`);
  const { runExportGguf } = await import('./export-gguf.js');
  return runExportGguf(rest);
}
