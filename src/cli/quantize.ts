/**
 * `moekit quantize MODEL_DIR --type q8_0|q4_0 --out DIR [--json]`: the checkpoint with its weight matrices
 * stored as llama.cpp blocks (src/models/quantize-checkpoint.ts; docs/quantization.md), which every command
 * loads as it is.
 */
import { quantizeCheckpoint } from '../models/quantize-checkpoint.js';
import { isQuantType } from '../tensor/quant.js';
import { MoekitError } from '../util/errors.js';
import { onePositional, parse } from './args.js';

const USAGE = 'moekit quantize MODEL_DIR --type q8_0|q4_0 --out DIR [--json]';

export async function runQuantize(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { type: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  const dir = onePositional(positionals, 'model directory', USAGE);
  if (!values.out) throw new MoekitError('--out DIR is required (--help for usage)');
  if (!isQuantType(values.type)) throw new MoekitError(`--type must be q8_0 or q4_0, got '${values.type ?? ''}'`);
  const r = quantizeCheckpoint(dir, values.out, values.type);
  if (values.json) process.stdout.write(JSON.stringify({ out: values.out, ...r }) + '\n');
  else {
    process.stdout.write(`wrote ${values.out}: ${r.quantized} matrices as blocks (experts ${r.plan.experts}, attention ${r.plan.attention}, ` +
      `lm_head ${r.plan.lmHead}), ${r.copied} tensors as stored, ${(r.bytes / 2 ** 20).toFixed(1)} MiB\n`);
  }
  return 0;
}
