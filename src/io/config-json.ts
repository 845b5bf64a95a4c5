/**
 * config.json text as Hugging Face writes it: a float field keeps its float literal (`0.0`, `10000.0`), which
 * JSON.parse → JSON.stringify loses (`0`). transformers 5 validates config fields by their declared type and refuses
 * an int where a float is declared (e.g. Mixtral's `router_jitter_noise: 0` — "expected float, got int"), so every
 * config moekit writes goes through here: a number whose literal in the source config was a float (a `.`, `e` or `E`
 * in it), or whose key is one of the float fields below, is written with a fraction when it is integral.
 */

/** config keys transformers declares as float (integral values are written `X.0`), wherever they appear */
export const FLOAT_KEYS: ReadonlySet<string> = new Set([
  'rms_norm_eps', 'layer_norm_eps', 'layer_norm_epsilon', 'norm_eps', 'rope_theta', 'router_jitter_noise', 'initializer_range',
  'attention_dropout', 'hidden_dropout', 'embd_pdrop', 'resid_pdrop', 'attn_pdrop', 'routed_scaling_factor',
  'router_aux_loss_coef', 'router_z_loss_coef', 'partial_rotary_factor', 'swiglu_limit', 'attention_multiplier',
  'embedding_multiplier', 'residual_multiplier', 'logits_scaling', 'moe_norm_min', 'factor', 'beta_fast', 'beta_slow',
  'mscale', 'mscale_all_dim', 'attention_factor', 'low_freq_factor', 'high_freq_factor',
]);

type Path = (string | number)[];

/** the paths of the number literals in JSON text that are written as floats */
export function floatLiteralPaths(text: string): Set<string> {
  const out = new Set<string>();
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (p: Path): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        const k = str();
        ws(); i++; // ':'
        value([...p, k]);
        ws();
        if (text[i++] === '}') return;
      }
    } else if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (let n = 0; ; n++) {
        value([...p, n]);
        ws();
        if (text[i++] === ']') return;
      }
    } else if (c === '"') {
      str();
    } else {
      const start = i;
      while (i < text.length && !',}] \t\n\r'.includes(text[i])) i++;
      if (/^-?\d/.test(text.slice(start, i)) && /[.eE]/.test(text.slice(start, i))) out.add(JSON.stringify(p));
    }
  };
  try {
    value([]);
  } catch {
    return new Set(); // not JSON (the caller parsed it already, so this does not happen): no float literals known
  }
  return out;
}

const MARK = '\u0000float:';

/** JSON text (2-space indent, trailing newline) of `config`, float fields kept as floats (see above) */
export function hfConfigJson(config: unknown, sourceText?: string): string {
  const floats = sourceText ? floatLiteralPaths(sourceText) : new Set<string>();
  const mark = (v: unknown, p: Path): unknown => {
    if (Array.isArray(v)) return v.map((x, n) => mark(x, [...p, n]));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mark(x, [...p, k])]));
    if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 1e21) {
      const key = p[p.length - 1];
      if (floats.has(JSON.stringify(p)) || (typeof key === 'string' && FLOAT_KEYS.has(key))) return `${MARK}${v}`;
    }
    return v;
  };
  const text = JSON.stringify(mark(config, []), null, 2);
  return text.replace(/"\\u0000float:(-?\d+)"/g, '$1.0') + '\n';
}
