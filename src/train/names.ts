/**
 * Checkpoint names ↔ transformers 5 parameter names. Checkpoints store one tensor per expert and
 * projection (`…experts.<e>.gate_proj.weight`, Mixtral's `…block_sparse_moe.experts.<e>.w1.weight`);
 * transformers 5 holds a layer's experts fused: `…mlp.experts.gate_up_proj` [E, 2I, H] (gate rows,
 * then up rows) and `…mlp.experts.down_proj` [E, H, I]. The training references name gradients
 * the transformers 5 way; the trainer keys them by checkpoint name. gpt-oss is the other way round: its checkpoint
 * is fused and interleaved (`gate_up_proj` [E, H, 2I] with gate and up in alternate columns, `down_proj` [E, I, H],
 * biases `gate_up_proj_bias` [E, 2I], `down_proj_bias` [E, H]); the engine de-interleaves it into per-expert
 * copies, which the trainer names `…mlp.experts.<e>.{gate,up,down}_proj.{weight,bias}` and fuses back here; Aria's
 * fused experts stored (in, out) (`…mlp.experts.fc1.weight` [E, H, 2I], `fc2.weight` [E, I, H]) are transposed into
 * per-expert copies the same way and fused back by toCheckpoint.
 */

import { deinterleaveExpert } from '../models/gpt_oss.js';

export const EXPERT = /^(model\.layers\.\d+)\.(?:mlp|block_sparse_moe)\.experts\.(\d+)\.(gate_proj|up_proj|down_proj|w1|w3|w2)\.(weight|bias)$/;
const ROLE: Record<string, 'gate' | 'up' | 'down'> = {
  gate_proj: 'gate', w1: 'gate', up_proj: 'up', w3: 'up', down_proj: 'down', w2: 'down',
};

/**
 * the transformers 5 name of a checkpoint tensor that is not a per-expert projection: Mixtral's block_sparse_moe is
 * `mlp`; Granite keeps `block_sparse_moe` but names its fused experts and router the transformers 5 way
 * (input_linear [E, 2I, H] = experts.gate_up_proj, gate rows first; output_linear [E, H, I] = experts.down_proj)
 */
export function t5Name(name: string): string {
  const g = /^(model\.layers\.\d+\.block_sparse_moe)\.(input_linear\.weight|output_linear\.weight|router\.layer\.weight)$/.exec(name);
  if (g) return `${g[1]}.${{ 'input_linear.weight': 'experts.gate_up_proj', 'output_linear.weight': 'experts.down_proj', 'router.layer.weight': 'router.weight' }[g[2]]}`;
  return name.replace('.block_sparse_moe.', '.mlp.');
}

/** tensors by checkpoint name → tensors by transformers 5 parameter name (experts fused) */
export function toTransformers5(byName: Map<string, Float32Array>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  // layer prefix → role → expert → tensor
  const experts = new Map<string, Map<string, Map<number, Float32Array>>>();
  for (const [name, t] of byName) {
    const m = EXPERT.exec(name);
    if (!m) {
      out.set(t5Name(name), t);
      continue;
    }
    const [, layer, e, proj, kind] = m;
    let roles = experts.get(layer);
    if (!roles) { roles = new Map(); experts.set(layer, roles); }
    const role = kind === 'bias' ? `${ROLE[proj]}.bias` : ROLE[proj];
    let per = roles.get(role);
    if (!per) { per = new Map(); roles.set(role, per); }
    per.set(Number(e), t);
  }
  for (const [layer, roles] of experts) {
    const gate = roles.get('gate')!, up = roles.get('up')!, down = roles.get('down')!;
    if (roles.has('gate.bias')) {
      for (const [n, t] of fuseGptOss(layer, gate, up, down, roles.get('gate.bias')!, roles.get('up.bias')!, roles.get('down.bias')!)) out.set(n, t);
      continue;
    }
    const E = gate.size, gi = gate.get(0)!.length, di = down.get(0)!.length;
    const gu = new Float32Array(E * 2 * gi); // [E, 2I, H]
    const dn = new Float32Array(E * di); // [E, H, I]
    for (let e = 0; e < E; e++) {
      gu.set(gate.get(e)!, e * 2 * gi);
      gu.set(up.get(e)!, e * 2 * gi + gi);
      dn.set(down.get(e)!, e * di);
    }
    out.set(`${layer}.mlp.experts.gate_up_proj`, gu);
    out.set(`${layer}.mlp.experts.down_proj`, dn);
  }
  return out;
}

type PerExpert = Map<number, Float32Array>;

/** per-expert gate/up [I, H], down [H, I] and their biases → gpt-oss's fused, interleaved tensors */
function fuseGptOss(layer: string, gate: PerExpert, up: PerExpert, down: PerExpert, gb: PerExpert, ub: PerExpert, db: PerExpert): [string, Float32Array][] {
  const E = gate.size, I = gb.get(0)!.length, H = db.get(0)!.length;
  const gu = new Float32Array(E * H * 2 * I), gub = new Float32Array(E * 2 * I); // [E, H, 2I], [E, 2I]
  const dn = new Float32Array(E * I * H), dnb = new Float32Array(E * H); // [E, I, H], [E, H]
  for (let e = 0; e < E; e++) {
    const g = gate.get(e)!, u = up.get(e)!, d = down.get(e)!;
    for (let i = 0; i < I; i++) {
      for (let h = 0; h < H; h++) {
        gu[e * H * 2 * I + h * 2 * I + 2 * i] = g[i * H + h];
        gu[e * H * 2 * I + h * 2 * I + 2 * i + 1] = u[i * H + h];
        dn[e * I * H + i * H + h] = d[h * I + i];
      }
      gub[e * 2 * I + 2 * i] = gb.get(e)![i];
      gub[e * 2 * I + 2 * i + 1] = ub.get(e)![i];
    }
    dnb.set(db.get(e)!, e * H);
  }
  const x = `${layer}.mlp.experts`;
  return [[`${x}.gate_up_proj`, gu], [`${x}.gate_up_proj_bias`, gub], [`${x}.down_proj`, dn], [`${x}.down_proj_bias`, dnb]];
}

/**
 * Copy tensors named the transformers 5 way into `params` (by checkpoint name, in place: the engine model shares
 * these arrays), slicing fused experts back apart. Every checkpoint parameter must be present with its size.
 */
export function loadTransformers5(params: Map<string, Float32Array>, get: (name: string) => Float32Array | undefined): void {
  const fused = new Map<string, Float32Array | undefined>();
  const maybe = (n: string) => {
    if (!fused.has(n)) fused.set(n, get(n));
    return fused.get(n);
  };
  const tensor = (n: string) => {
    const t = maybe(n);
    if (!t) throw new Error(`missing ${n}`);
    return t;
  };
  const gptOss = new Map<string, ReturnType<typeof deinterleaveExpert>>();
  for (const [name, p] of params) {
    const m = EXPERT.exec(name);
    if (!m) {
      const t = tensor(t5Name(name));
      if (t.length !== p.length) throw new Error(`${name}: ${t.length} elements, want ${p.length}`);
      p.set(t);
      continue;
    }
    const [, layer, es, proj, kind] = m;
    const e = Number(es), role = ROLE[proj];
    if (maybe(`${layer}.mlp.experts.gate_up_proj_bias`)) {
      // gpt-oss: de-interleave the fused tensors as the engine's loader does (once per expert)
      const key = `${layer}#${e}`;
      let t = gptOss.get(key);
      if (!t) {
        const x = `${layer}.mlp.experts`;
        const gu = tensor(`${x}.gate_up_proj`), gub = tensor(`${x}.gate_up_proj_bias`), dnb = tensor(`${x}.down_proj_bias`);
        const H = gu.length / gub.length, I = gub.length / (2 * (dnb.length / H));
        t = deinterleaveExpert(gu, gub, tensor(`${x}.down_proj`), dnb, e, H, I);
        gptOss.set(key, t);
      }
      const pick = kind === 'bias' ? { gate: t.gateBias, up: t.upBias, down: t.downBias }[role] : { gate: t.gate, up: t.up, down: t.down }[role];
      p.set(pick);
      continue;
    }
    if (role === 'down') {
      const t = tensor(`${layer}.mlp.experts.down_proj`); // [E, H, I]
      p.set(t.subarray(e * p.length, (e + 1) * p.length));
    } else {
      const t = tensor(`${layer}.mlp.experts.gate_up_proj`); // [E, 2I, H]: gate rows, then up rows
      const off = e * 2 * p.length + (role === 'up' ? p.length : 0);
      p.set(t.subarray(off, off + p.length));
    }
  }
}

/**
 * Aria's per-expert copies (gate, up [I, H], down [H, I]) → its fused tensors stored (in, out): fc1 [E, H, 2I] (gate
 * columns, then up columns) and fc2 [E, I, H]; the inverse of models/common.ts inOutExpert
 */
function fuseInOut(layer: string, gate: PerExpert, up: PerExpert, down: PerExpert, H: number): [string, Float32Array][] {
  const E = gate.size, I = gate.get(0)!.length / H;
  const fc1 = new Float32Array(E * H * 2 * I), fc2 = new Float32Array(E * I * H); // [E, H, 2I], [E, I, H]
  for (let e = 0; e < E; e++) {
    const g = gate.get(e)!, u = up.get(e)!, d = down.get(e)!;
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < I; i++) {
        fc1[(e * H + h) * 2 * I + i] = g[i * H + h];
        fc1[(e * H + h) * 2 * I + I + i] = u[i * H + h];
        fc2[(e * I + i) * H + h] = d[h * I + i];
      }
    }
  }
  const x = `${layer}.mlp.experts`;
  return [[`${x}.fc1.weight`, fc1], [`${x}.fc2.weight`, fc2]];
}

/**
 * The trainer's parameters under their checkpoint names and layouts: unchanged, except the per-expert copies of fused
 * experts, which go back into their checkpoint tensors: gpt-oss's fused, interleaved ones (the copies with biases),
 * Aria's fc1 / fc2 (the layers whose checkpoint, `has`, holds `…mlp.experts.fc1.weight`).
 */
export function toCheckpoint(params: Map<string, Float32Array>, has: (name: string) => boolean = () => false): Map<string, Float32Array> {
  const inOut = (n: string) => { const m = EXPERT.exec(n); return m !== null && has(`${m[1]}.mlp.experts.fc1.weight`); };
  const hasCopies = [...params.keys()].some((n) => EXPERT.exec(n)?.[4] === 'bias' || inOut(n));
  if (!hasCopies) return params;
  const out = new Map<string, Float32Array>();
  const experts = new Map<string, Float32Array>();
  const aria = new Map<string, Map<string, PerExpert>>(); // layer prefix → role → expert → tensor
  for (const [n, t] of params) {
    if (inOut(n)) {
      const [, layer, e, proj] = EXPERT.exec(n)!;
      let roles = aria.get(layer);
      if (!roles) { roles = new Map(); aria.set(layer, roles); }
      let per = roles.get(ROLE[proj]);
      if (!per) { per = new Map(); roles.set(ROLE[proj], per); }
      per.set(Number(e), t);
    } else (EXPERT.test(n) ? experts : out).set(n, t);
  }
  for (const [n, t] of toTransformers5(experts)) out.set(n, t);
  for (const [layer, roles] of aria) {
    const gate = roles.get('gate')!;
    const H = params.get(`${layer}.mlp.router.weight`)!.length / gate.size; // router [E, H]
    for (const [n, t] of fuseInOut(layer, gate, roles.get('up')!, roles.get('down')!, H)) out.set(n, t);
  }
  return out;
}
