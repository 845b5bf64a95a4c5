/**
 * `moekit extract MODEL_DIR [--layers 0,1,3] [--keep KEEP.json | --experts N] [--top-k K] --out DIR [--json]`:
 * a sub-model as a standalone checkpoint (src/models/extract.ts). KEEP.json is
 * `{"layers": {"<decoder layer index>": [expert ids to keep]}}`, one list per kept MoE layer, all the same length.
 */
import { readConfig } from '../io/config.js';
import { CONFIG_MAX_BYTES, oneLineMessage, readJsonCapped } from '../io/read.js';
import { extractSubModel, firstExperts, type ExtractSpec } from '../models/extract.js';
import { describeModel } from '../models/registry.js';
import { MoekitError } from '../util/errors.js';
import { numFlag, onePositional, parse } from './args.js';

const USAGE = 'moekit extract MODEL_DIR [--layers 0,1,3] [--keep KEEP.json | --experts N] [--top-k K] --out DIR [--json]';

/** `0,1,3` → [0, 1, 3] */
export function intList(v: string, flag: string): number[] {
  return v.split(',').map((s) => {
    const x = Number(s.trim());
    if (s.trim() === '' || !Number.isInteger(x) || x < 0) throw new MoekitError(`--${flag} must be comma-separated non-negative integers, got '${v}'`);
    return x;
  });
}

/** KEEP.json → decoder layer → expert ids */
export function readKeep(file: string): Record<number, number[]> {
  let raw: unknown;
  try {
    raw = readJsonCapped(file, CONFIG_MAX_BYTES, 'KEEP');
  } catch (e) {
    throw e instanceof MoekitError ? e : new MoekitError(`malformed JSON: ${oneLineMessage(e)}`, file);
  }
  const layers = (raw as { layers?: unknown } | null)?.layers;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || layers === null || typeof layers !== 'object' || Array.isArray(layers)) {
    throw new MoekitError('expected {"layers": {"<decoder layer index>": [expert ids]}}', file);
  }
  const extra = Object.keys(raw as object).filter((k) => k !== 'layers');
  if (extra.length) throw new MoekitError(`unknown key '${extra[0]}' (expected only "layers")`, file);
  const out: Record<number, number[]> = {};
  for (const [k, v] of Object.entries(layers as Record<string, unknown>)) {
    if (!/^\d+$/.test(k)) throw new MoekitError(`layers: key '${k}' is not a decoder layer index`, file);
    if (!Array.isArray(v) || !v.every((e) => Number.isInteger(e) && e >= 0)) throw new MoekitError(`layers.${k}: expected a list of expert ids`, file);
    out[Number(k)] = v as number[];
  }
  return out;
}

export async function runExtract(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    layers: { type: 'string' }, keep: { type: 'string' }, experts: { type: 'string' }, 'top-k': { type: 'string' },
    out: { type: 'string' }, json: { type: 'boolean' },
  }, USAGE);
  const dir = onePositional(positionals, 'model directory', USAGE);
  if (!values.out) throw new MoekitError(`--out DIR is required (--help for usage)`);
  if (values.keep !== undefined && values.experts !== undefined) throw new MoekitError('give at most one of --keep and --experts');
  const spec: ExtractSpec = {};
  if (values.layers !== undefined) spec.layers = intList(values.layers, 'layers');
  if (values.keep !== undefined) spec.experts = readKeep(values.keep);
  if (values.experts !== undefined) {
    const c = readConfig(dir);
    const d = describeModel(c).desc;
    const all = firstExperts(d, numFlag(values.experts, 'experts', { int: true, min: 1 })!);
    const kept = spec.layers ?? [...Array(d.nLayers).keys()];
    spec.experts = Object.fromEntries(Object.entries(all).filter(([l]) => kept.includes(Number(l))));
  }
  spec.topK = numFlag(values['top-k'], 'top-k', { int: true, min: 1 });
  const { files, config } = extractSubModel(dir, values.out, spec);
  if (values.json) process.stdout.write(JSON.stringify({ out: values.out, files, config }) + '\n');
  else process.stdout.write(`wrote ${values.out}: ${files.length} files (${config['num_hidden_layers']} layers)\n`);
  return 0;
}
