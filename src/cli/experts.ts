/**
 * `moekit experts profile|prune|retrieve|eval`: PreMoe's pipeline (src/experts/): per-task expert scores
 * into a pattern store, pruned checkpoints, retrieval of a prompt's pattern, and the evaluation grid.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readConfig } from '../io/config.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { describeModel } from '../models/registry.js';
import { MoeModel } from '../models/model.js';
import { evaluatePatterns, type PatternEvalReport } from '../experts/evaluate.js';
import { retrievePattern, patternBudget } from '../experts/pattern.js';
import { builtinSource, fileSource, profileTasks, type CalibrationSource } from '../experts/profile.js';
import { pruneCheckpoint } from '../experts/prune.js';
import { SCORES, type ScoreName } from '../experts/scores.js';
import { checkBudget } from '../experts/select.js';
import { keepOf, newStore, patternOf, readStore, type StoreFile } from '../experts/store.js';
import { selectTasks } from '../tasks/registry.js';
import { MoekitError } from '../util/errors.js';
import { terminalProgress } from './bar.js';
import { intList, readKeep } from './extract.js';
import { numFlag, onePositional, parse } from './args.js';
import { plotSvg } from './experts-plot.js';

const USAGE = {
  profile: 'moekit experts profile MODEL_DIR --store STORE [--tasks a,b|text|image|all] [--data NAME=FILE ...] [--n N] [--r R] [--no-answers] [--retrieval-layers L,L] [--json]',
  prune: 'moekit experts prune MODEL_DIR (--task T --keep-experts M --score tcess|frequency|soft|reap --store STORE | --keep KEEP.json) [--top-k K] --out DIR [--json]',
  retrieve: 'moekit experts retrieve STORE MODEL_DIR --prompt TEXT [--threshold D] [--fallback general|full] [--json]',
  eval: 'moekit experts eval MODEL_DIR --store STORE [--n N] [--scores tcess,frequency,soft,reap] [--no-rss] [--svg FILE] [--json]',
};

export async function runExperts(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'profile': return runProfile(rest);
    case 'prune': return runPrune(rest);
    case 'retrieve': return runRetrieve(rest);
    case 'eval': return runEval(rest);
    case undefined: case '--help': case '-h': case 'help':
      process.stdout.write(`usage:\n  ${Object.values(USAGE).join('\n  ')}\n`);
      return sub === undefined ? 2 : 0;
    default:
      throw new MoekitError(`unknown experts command '${sub}' (profile, prune, retrieve, eval; moekit experts --help)`);
  }
}

export function scoreFlag(v: string | undefined): ScoreName {
  const s = v ?? 'tcess';
  if (!(SCORES as readonly string[]).includes(s)) throw new MoekitError(`--score must be one of ${SCORES.join(', ')}, got '${s}'`);
  return s as ScoreName;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;

/** the bytes each budget's pattern needs, one line each */
export function budgetLines(s: StoreFile): string[] {
  return s.bytes.budgets.map((b) => `  keep ${String(b.keep).padStart(4)}/${s.model.experts} experts per layer (top-${b.topK}): ${mib(b.bytes)}` +
    ` (non-expert ${mib(s.bytes.nonExpert)} + experts ${mib(b.keep * s.bytes.perExpertAllLayers)})`);
}

async function runProfile(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    store: { type: 'string' }, tasks: { type: 'string' }, data: { type: 'string', multiple: true }, n: { type: 'string' },
    r: { type: 'string' }, 'no-answers': { type: 'boolean' }, 'retrieval-layers': { type: 'string' }, json: { type: 'boolean' },
  }, USAGE.profile);
  const dir = onePositional(positionals, 'model directory', USAGE.profile);
  if (!values.store) throw new MoekitError('--store STORE is required (the pattern store to write or resume)');
  const n = numFlag(values.n, 'n', { int: true, min: 1 }) ?? 64;
  const r = numFlag(values.r, 'r', { min: 0, max: 1 });
  const retrievalLayers = values['retrieval-layers'] !== undefined ? intList(values['retrieval-layers'], 'retrieval-layers') : undefined;
  const model = MoeModel.load(dir, { onProgress: terminalProgress() });
  let s: StoreFile;
  if (fs.existsSync(values.store)) {
    s = readStore(values.store, dir);
    if (r !== undefined && r !== s.settings.r) throw new MoekitError(`the store was profiled with --r ${s.settings.r}; use that or a new store`, values.store);
    if (retrievalLayers && retrievalLayers.join() !== s.settings.retrievalLayers.join()) throw new MoekitError(`the store's retrieval layers are ${s.settings.retrievalLayers.join(',')}; use those or a new store`, values.store);
  } else {
    s = newStore(dir, { r, retrievalLayers });
  }
  const answers = !values['no-answers'];
  const sources: CalibrationSource[] = [];
  if (values.tasks !== undefined || values.data === undefined) for (const t of selectTasks(values.tasks ?? 'all')) sources.push(builtinSource(t, answers));
  for (const spec of values.data ?? []) {
    const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(spec);
    if (!m) throw new MoekitError(`--data must be NAME=FILE, got '${spec}'`);
    const tok = loadTokenizer(dir);
    if (!tok) throw new MoekitError('--data needs the model\'s tokenizer.json', path.join(dir, 'tokenizer.json'));
    sources.push(fileSource(m[1], m[2], tok, answers));
  }
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  let res;
  try {
    res = await profileTasks(model, model.desc, values.store, s, sources, { n, signal: ac.signal, onProgress: terminalProgress() });
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
  const status = Object.entries(s.tasks).map(([k, t]) => `${k} ${t.examples}/${t.target}${t.complete ? '' : ' (incomplete)'}`);
  if (values.json) {
    process.stdout.write(JSON.stringify({ store: values.store, interrupted: res.interrupted, examples: res.examples, tokens: res.tokens,
      tasks: Object.fromEntries(Object.entries(s.tasks).map(([k, t]) => [k, { examples: t.examples, target: t.target, complete: t.complete, tokens: t.tokens }])),
      retrieval: { layers: s.settings.retrievalLayers, threshold: s.retrieval.threshold }, bytes: s.bytes }) + '\n');
  } else {
    process.stdout.write([`${values.store}: ${res.examples} examples, ${res.tokens} tokens profiled now; ${status.join(', ')}`,
      `retrieval: MoE layers ${s.settings.retrievalLayers.join(', ')}, threshold ${s.retrieval.threshold.toPrecision(4)}`,
      'bytes per pattern:', ...budgetLines(s)].join('\n') + '\n');
  }
  if (res.interrupted) {
    process.stderr.write(`moekit: interrupted; the store keeps what was profiled (run the same command to resume)\n`);
    return 130;
  }
  return 0;
}

async function runPrune(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    task: { type: 'string' }, 'keep-experts': { type: 'string' }, score: { type: 'string' }, store: { type: 'string' },
    keep: { type: 'string' }, 'top-k': { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
  }, USAGE.prune);
  const dir = onePositional(positionals, 'model directory', USAGE.prune);
  if (!values.out) throw new MoekitError('--out DIR is required');
  const fromStore = values.task !== undefined || values['keep-experts'] !== undefined || values.store !== undefined || values.score !== undefined;
  if (fromStore === (values.keep !== undefined)) throw new MoekitError('give either --keep KEEP.json or --task T --keep-experts M --store STORE [--score S] (--help for usage)');
  let keep: Record<number, number[]>;
  let what: string;
  if (values.keep !== undefined) {
    keep = readKeep(values.keep);
    what = values.keep;
  } else {
    if (!values.task || !values.store || values['keep-experts'] === undefined) throw new MoekitError('pruning by score needs --task T, --keep-experts M and --store STORE');
    const s = readStore(values.store, dir);
    const t = patternOf(s, values.task, values.store);
    const d = describeModel(readConfig(dir)).desc;
    const b = checkBudget(d, numFlag(values['keep-experts'], 'keep-experts', { int: true, min: 1 })!);
    const score = scoreFlag(values.score);
    keep = keepOf(s, d, t, score, b.keep);
    what = `${values.task} by ${score}`;
  }
  const r = pruneCheckpoint(dir, values.out, keep, numFlag(values['top-k'], 'top-k', { int: true, min: 1 }));
  if (values.json) process.stdout.write(JSON.stringify({ out: values.out, keep: r.keep, top_k: r.topK, layers: keep, files: r.files }) + '\n');
  else process.stdout.write(`wrote ${values.out}: ${r.keep} experts per MoE layer (${what}), top-${r.topK}, ${r.files.length} files\n`);
  return 0;
}

async function runRetrieve(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    prompt: { type: 'string' }, threshold: { type: 'string' }, fallback: { type: 'string' }, json: { type: 'boolean' },
  }, USAGE.retrieve);
  if (positionals.length !== 2) throw new MoekitError(`expected STORE and MODEL_DIR, got ${positionals.length} arguments (--help for usage)`);
  const [file, dir] = positionals;
  if (values.prompt === undefined) throw new MoekitError('--prompt TEXT is required');
  const fallback = values.fallback ?? 'general';
  if (fallback !== 'general' && fallback !== 'full') throw new MoekitError(`--fallback must be 'general' or 'full', got '${fallback}'`);
  const s = readStore(file, dir);
  const tok = loadTokenizer(dir);
  if (!tok) throw new MoekitError('--prompt needs the model\'s tokenizer.json', path.join(dir, 'tokenizer.json'));
  const model = MoeModel.load(dir);
  const p = retrievePattern(model, s, tok.encode(values.prompt, true), 'tcess', patternBudget(model.desc),
    { threshold: numFlag(values.threshold, 'threshold', { min: 0 }), fallback });
  const m = p.match!;
  if (values.json) {
    process.stdout.write(JSON.stringify({ match: m.nearest, distance: m.distance, threshold: m.threshold, pattern: m.pattern ?? 'full', ranking: m.ranking.slice(0, 5), bytes: p.bytes }) + '\n');
  } else {
    const use = m.pattern === m.nearest ? '' : `; beyond the threshold: ${m.pattern ? 'the general pattern' : 'the full model'}`;
    process.stdout.write(`match ${m.nearest}, distance ${m.distance.toPrecision(4)} (threshold ${m.threshold.toPrecision(4)})${use}; next: ${m.ranking.slice(1, 3).map((x) => `${x.task} ${x.distance.toPrecision(4)}`).join(', ')}\n`);
  }
  return 0;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** the report as markdown tables (docs/premoe.md holds this output) */
export function reportMarkdown(r: PatternEvalReport, experts: number): string {
  const L: string[] = [];
  L.push(`| score | keep | top-k | ${r.tasks.join(' | ')} | mean | vs full | weight bytes loaded | decode tok/s |`);
  L.push(`|---|---|---|${r.tasks.map(() => '---|').join('')}---|---|---|---|`);
  for (const g of r.grid) {
    L.push(`| ${g.score} | ${g.keep}/${experts} | ${g.topK} | ${r.tasks.map((t) => pct(g.tasks[t])).join(' | ')} | ${pct(g.mean)} | ${pct(g.relative)} | ${mib(g.bytesLoaded)} | ${g.decodeTokS.toFixed(0)} |`);
  }
  L.push('', `Retrieval (MoE layers ${r.retrieval.layers.join(', ')}, threshold ${r.retrieval.threshold.toPrecision(3)}): ${pct(r.retrieval.accuracy)} of held-out prompts matched their own task` +
    ` (${r.tasks.map((t) => `${t} ${pct(r.retrieval.tasks[t])}`).join(', ')}); ${r.retrieval.fallbacks} fell back.`, '');
  if (r.endToEnd.length) {
    L.push(`| end to end (retrieved pattern) | keep | ${r.tasks.join(' | ')} | mean | vs full |`);
    L.push(`|---|---|${r.tasks.map(() => '---|').join('')}---|---|`);
    for (const e of r.endToEnd) L.push(`| ${e.score} | ${e.keep}/${experts} | ${r.tasks.map((t) => pct(e.tasks[t])).join(' | ')} | ${pct(e.mean)} | ${pct(e.relative)} |`);
  }
  if (r.rss.length) {
    L.push('', '| run | peak RSS | runtime (smallest pattern\'s peak − its experts) | of which non-expert weights, KV cache | experts held | runtime + experts | peak vs that |', '|---|---|---|---|---|---|---|');
    for (const m of r.rss) {
      L.push(`| ${m.label} | ${mib(m.peakRss)} | ${mib(m.runtimeRss)} | ${mib(m.nonExpertBytes)}, ${(m.kvBytes / 1024).toFixed(1)} KiB | ${mib(m.expertBytes)} | ${mib(m.predicted)} | ${m.withinPct >= 0 ? '+' : ''}${m.withinPct.toFixed(1)}% |`);
    }
  }
  return L.join('\n') + '\n';
}

async function runEval(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    store: { type: 'string' }, n: { type: 'string' }, scores: { type: 'string' }, 'no-rss': { type: 'boolean' }, svg: { type: 'string' }, json: { type: 'boolean' },
  }, USAGE.eval);
  const dir = onePositional(positionals, 'model directory', USAGE.eval);
  if (!values.store) throw new MoekitError('--store STORE is required');
  const s = readStore(values.store, dir);
  const tok = loadTokenizer(dir);
  if (!tok) throw new MoekitError('experts eval needs the model\'s tokenizer.json', path.join(dir, 'tokenizer.json'));
  const scores = values.scores !== undefined ? values.scores.split(',').map((x) => scoreFlag(x.trim())) : undefined;
  const model = MoeModel.load(dir);
  const r = evaluatePatterns(dir, s, model.desc, tok, model, {
    n: numFlag(values.n, 'n', { int: true, min: 1 }) ?? 50, scores, rss: !values['no-rss'], onProgress: terminalProgress(),
  });
  if (values.svg) {
    const tmp = `${values.svg}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, plotSvg(r, model.desc.moe.experts));
    fs.renameSync(tmp, values.svg);
  }
  process.stdout.write(values.json ? JSON.stringify(r) + '\n' : reportMarkdown(r, model.desc.moe.experts));
  return 0;
}
