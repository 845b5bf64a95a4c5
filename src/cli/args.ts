/** Flag parsing shared by the commands: node:util parseArgs, with errors as MoekitErrors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MoekitError } from '../util/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

type Values<O extends Options> = { [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : string };

export function parse<O extends Options>(argv: string[], options: O, usage: string): { values: Values<O>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values as Values<O>, positionals: r.positionals };
  } catch (e) {
    throw new MoekitError(`${(e as Error).message.split('\n')[0]}\nusage: ${usage}`);
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

export function onePositional(positionals: string[], what: string, usage: string): string {
  if (positionals.length !== 1) throw new MoekitError(`expected one ${what}, got ${positionals.length}\nusage: ${usage}`);
  return positionals[0];
}

/** --dtype: 'auto' keeps bf16 weights as bf16 (half the memory), 'f32' upcasts at load */
export function dtypeFlag(v: string | undefined): 'auto' | 'f32' {
  if (v === undefined || v === 'auto') return 'auto';
  if (v === 'f32') return 'f32';
  throw new MoekitError(`--dtype must be 'auto' or 'f32', got '${v}'`);
}
