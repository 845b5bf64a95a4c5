/** Flag parsing shared by the commands: node:util parseArgs, with errors as MoekitErrors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolveModelDir } from '../io/model-dir.js';
import { LOAD_DTYPES, type LoadDtype } from '../models/model.js';
import { MoekitError } from '../util/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

type Values<O extends Options> = { [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : string };

/** thrown by parse() for --help / -h: main prints the usage and exits 0 */
export class HelpRequested extends Error {
  constructor(readonly usage: string) { super('help'); }
}

export function parse<O extends Options>(argv: string[], options: O, usage: string): { values: Values<O>; positionals: string[] } {
  if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequested(usage);
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values as Values<O>, positionals: r.positionals };
  } catch (e) {
    throw new MoekitError(`${(e as Error).message.split('\n')[0]} (--help for usage)`);
  }
}

/** a number flag, checked */
export function numFlag(v: string | undefined, flag: string, o: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (o.int && !Number.isInteger(x)) ||
      (o.min !== undefined && x < o.min) || (o.max !== undefined && x > o.max)) {
    const range = o.min !== undefined ? ` ≥ ${o.min}` : '';
    throw new MoekitError(`--${flag} must be a${o.int ? 'n integer' : ' number'}${range}${o.max !== undefined ? ` and ≤ ${o.max}` : ''}, got '${v}'`);
  }
  return x;
}

/** the one positional argument; a 'model directory' may be `demo`, the bundled demo model (io/model-dir.ts) */
export function onePositional(positionals: string[], what: string, usage: string): string {
  if (positionals.length !== 1) throw new MoekitError(`expected one ${what}, got ${positionals.length} (--help for usage)`);
  return what === 'model directory' ? resolveModelDir(positionals[0]) : positionals[0];
}

/** --dtype: 'auto' keeps bf16 (and stored q8_0/q4_0) weights as they are, 'f32' upcasts at load, q8_0 / q4_0 quantise at load */
export function dtypeFlag(v: string | undefined): LoadDtype {
  if (v === undefined) return 'auto';
  if ((LOAD_DTYPES as readonly string[]).includes(v)) return v as LoadDtype;
  throw new MoekitError(`--dtype must be one of ${LOAD_DTYPES.join(', ')}, got '${v}'`);
}

/** a byte count: an integer or decimal, optionally with K, M, G or T (powers of 1024, also written KiB, MiB, GiB, TiB) */
export function sizeFlag(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([KMGT])(?:iB)?|B)?\s*$/i.exec(v);
  if (!m) throw new MoekitError(`--${flag} must be a size in bytes ≥ 0, e.g. 1048576, 512K, 1.5G (K, M, G, T: powers of 1024), got '${v}'`);
  const unit = m[2] ? 1024 ** ('KMGT'.indexOf(m[2].toUpperCase()) + 1) : 1;
  return Math.floor(Number(m[1]) * unit);
}

/** the flags saying how routed experts are held, for parse() (forward, generate) */
export const EXPERT_OPTIONS = { experts: { type: 'string' }, 'expert-budget': { type: 'string' } } as const;
export const EXPERT_USAGE = '[--experts eager|lazy] [--expert-budget SIZE]';

/**
 * --experts eager|lazy (default eager: every expert read at load) and --expert-budget SIZE (lazy: the most
 * bytes of experts held at once; alone it implies --experts lazy) → MoeModel.load options
 */
export function expertFlags(v: { experts?: string; 'expert-budget'?: string }): { experts: 'eager' | 'lazy'; expertBudgetBytes?: number } {
  const budget = sizeFlag(v['expert-budget'], 'expert-budget');
  const mode = v.experts ?? (budget !== undefined ? 'lazy' : 'eager');
  if (mode !== 'eager' && mode !== 'lazy') throw new MoekitError(`--experts must be 'eager' or 'lazy', got '${mode}'`);
  if (budget !== undefined && mode !== 'lazy') throw new MoekitError(`--expert-budget needs --experts lazy`);
  return budget === undefined ? { experts: mode } : { experts: mode, expertBudgetBytes: budget };
}
