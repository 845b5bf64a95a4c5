/**
 * `moekit train [CONFIG.yaml] [--resume] [--out DIR] [--steps N] [--set key.sub=value …] [--json]`: train (or
 * continue) a model from a YAML config, any field also from `--set` (e.g. `--set train.lr=0.01`). Progress: a
 * terminal bar (loss, tokens/s, expert load balance, ETA) on a TTY, a JSONL metrics log in OUT/metrics.jsonl, and
 * with --json one line per event on stdout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { parse as parseYaml } from 'yaml';
import { YAML_OPTIONS } from '../io/read.js';
import { resolveConfig, readConfigFile } from '../train/config.js';
import { recipe } from '../train/recipes.js';
import { Trainer, type TrainEvent } from '../train/loop.js';
import { MoekitError } from '../util/errors.js';
import { parse } from './args.js';

const USAGE = 'moekit train [CONFIG.yaml | --recipe demo] [--resume] [--out DIR] [--steps N] [--set key.sub=value ...] [--json]';

/** `--set a.b=v`: v parsed as YAML (numbers, lists, booleans), into raw */
function setField(raw: Record<string, unknown>, kv: string): void {
  const i = kv.indexOf('=');
  if (i <= 0) throw new MoekitError(`--set needs key=value, got '${kv}'`);
  const keys = kv.slice(0, i).split('.');
  let v: unknown;
  try { v = parseYaml(kv.slice(i + 1), YAML_OPTIONS); } catch { v = kv.slice(i + 1); }
  let o = raw;
  for (const k of keys.slice(0, -1)) {
    if (o[k] === undefined) o[k] = {};
    if (typeof o[k] !== 'object' || o[k] === null) throw new MoekitError(`--set ${kv}: '${k}' is not a mapping`);
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = v;
}

export async function runTrain(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    resume: { type: 'boolean' }, out: { type: 'string' }, steps: { type: 'string' }, set: { type: 'string', multiple: true },
    json: { type: 'boolean' }, recipe: { type: 'string' },
  } as const, USAGE);
  if (positionals.length > 1) throw new MoekitError(`expected at most one config file (--help for usage)`);
  const file = positionals[0];
  if (file && values.recipe) throw new MoekitError('give a config file or --recipe, not both');
  const raw: Record<string, unknown> = file ? readConfigFile(file) : values.recipe ? recipe(values.recipe) : {};
  if (values.out) raw.out = values.out;
  if (values.steps) setField(raw, `train.steps=${values.steps}`);
  for (const kv of (values.set as unknown as string[] | undefined) ?? []) setField(raw, kv);
  let cfg;
  try {
    cfg = resolveConfig(raw, file ? path.dirname(path.resolve(file)) : process.cwd());
  } catch (e) {
    // a value's error names its key; name the config it came from too (or the flags / recipe)
    if (e instanceof MoekitError && !e.file) throw new MoekitError(e.message, file ?? (values.recipe ? `--recipe ${values.recipe}` : 'train flags'));
    throw e;
  }
  const trainer = new Trainer(cfg, { resume: values.resume });
  // the metrics log: on resume, lines past the resumed step are dropped (they are about to be recomputed)
  const log = path.join(cfg.out, 'metrics.jsonl');
  if (values.resume && fs.existsSync(log)) {
    const keep = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= trainer.step);
    fs.writeFileSync(log, keep.map((l) => l + '\n').join(''));
  } else if (!values.resume) {
    fs.rmSync(log, { force: true });
  }
  const tty = !values.json && process.stderr.isTTY === true;
  const bar = tty ? new cliProgress.SingleBar({
    stream: process.stderr, hideCursor: true, clearOnComplete: false,
    format: 'train [{bar}] {value}/{total} loss {loss} | {tps} tok/s | load max/mean {bal} | ETA {eta_h}',
  }, cliProgress.Presets.shades_classic) : null;
  const onEvent = (ev: TrainEvent) => {
    if (values.json) process.stdout.write(JSON.stringify(ev) + '\n');
    if (ev.type === 'start') bar?.start(ev.steps, ev.step, { loss: '-', tps: '-', bal: '-', eta_h: '-' });
    if (ev.type === 'step') {
      fs.appendFileSync(log, JSON.stringify(ev) + '\n');
      const bal = ev.balance.length ? Math.max(...ev.balance.map((b) => b.max_over_mean)).toFixed(2) : '-';
      const eta = ev.eta_s >= 3600 ? `${(ev.eta_s / 3600).toFixed(1)}h` : ev.eta_s >= 60 ? `${(ev.eta_s / 60).toFixed(1)}m` : `${ev.eta_s.toFixed(0)}s`;
      bar?.update(ev.step, { loss: ev.loss.toFixed(4), tps: ev.tokens_per_s.toFixed(0), bal, eta_h: eta });
    }
    if (ev.type === 'done') {
      bar?.stop();
      if (!values.json) process.stdout.write(`trained ${ev.step} steps in ${ev.seconds.toFixed(1)} s: ${ev.dir}\n`);
    }
  };
  await trainer.run(onEvent);
  return 0;
}
