/**
 * `moekit grad MODEL_DIR --input IDS.safetensors --out GRADS.safetensors [--json]`: the mean next-token loss of
 * `input_ids` [B, T] and the gradient of every trainable parameter, written as `lm_loss` [1] and `grad.<name>` with
 * transformers 5's parameter names and layouts (fused experts), as fixtures/hf-tiny-moe-train stores them.
 */
import { Checkpoint } from '../io/checkpoint.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { writeSafetensors, type SafetensorsEntry } from '../io/safetensors-write.js';
import { TrainableModel } from '../train/model.js';
import { EXPERT, t5Name, toTransformers5 } from '../train/names.js';
import { MoekitError } from '../util/errors.js';
import { onePositional, parse } from './args.js';

const USAGE = 'moekit grad MODEL_DIR --input IDS.safetensors --out GRADS.safetensors [--json]';

/**
 * the shape of every transformers 5 parameter: a checkpoint tensor's own shape under its transformers 5 name;
 * fused experts gate_up_proj [E, 2I, H] (gate rows, then up) and down_proj [E, H, I]
 */
function t5Shapes(tm: TrainableModel): Map<string, number[]> {
  const ck = Checkpoint.open(tm.model.dir);
  const d = tm.model.desc, E = d.moe.experts, I = d.moe.expertFfn, H = d.hidden;
  const out = new Map<string, number[]>();
  try {
    for (const n of ck.names()) {
      const m = EXPERT.exec(n);
      if (!m) { out.set(t5Name(n), ck.info(n).shape.slice()); continue; }
      out.set(`${m[1]}.mlp.experts.gate_up_proj`, [E, 2 * I, H]);
      out.set(`${m[1]}.mlp.experts.down_proj`, [E, H, I]);
    }
  } finally {
    ck.close();
  }
  return out;
}

export async function runGrad(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { input: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  const dir = onePositional(positionals, 'model directory', USAGE);
  if (!values.input || !values.out) throw new MoekitError(`--input and --out are required (--help for usage)`);
  const inp = SafetensorsFile.open(values.input);
  let ids: Int32Array, shape: number[];
  try {
    if (!inp.has('input_ids')) throw new MoekitError(`no tensor 'input_ids'`, values.input);
    shape = inp.info("input_ids").shape.slice();
    if (shape.length !== 2) throw new MoekitError(`input_ids must be [B, T], got [${shape.join(', ')}]`, values.input);
    if (shape[1] < 2) throw new MoekitError(`input_ids needs T ≥ 2 tokens per sequence for a next-token loss, got ${shape[1]}`, values.input);
    ids = inp.readI32('input_ids');
  } finally {
    inp.close();
  }
  const [B, T] = shape;
  const tm = TrainableModel.load(dir);
  const t0 = performance.now();
  const { loss, grads } = tm.forwardBackward(ids, B, T);
  const ms = performance.now() - t0;
  const byName = toTransformers5(grads);
  const shapes = t5Shapes(tm);
  const entries: SafetensorsEntry[] = [{ name: 'lm_loss', dtype: 'F32', shape: [1], data: Float32Array.of(loss) }];
  for (const [n, g] of [...byName].sort(([a], [b]) => (a < b ? -1 : 1))) entries.push({ name: `grad.${n}`, dtype: 'F32', shape: shapes.get(n) ?? [g.length], data: g });
  writeSafetensors(values.out, entries, { producer: 'moekit grad', model: tm.model.desc.hfClass });
  if (values.json) process.stdout.write(JSON.stringify({ out: values.out, lm_loss: loss, parameters: byName.size, ms }) + '\n');
  else process.stdout.write(`wrote ${values.out}: lm_loss ${loss.toFixed(6)}, ${byName.size} gradients (${ms.toFixed(0)} ms)\n`);
  return 0;
}
