/**
 * The fixture architectures the per-architecture tests run over: every folder of fixtures/hf-tiny-moe with a
 * config.json (a new family's fixture joins every such test by being there). The first nine are the engine's
 * original families (fixtures/hf-tiny-moe/make_fixtures.py); the rest came with issue 16 (make_fixtures_more.py).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const FIXTURE_ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
export const ORIGINAL_ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'deepseek_v3', 'deepseek_v2', 'ernie4_5_moe', 'gpt_oss', 'granitemoe'];

const present = fs.readdirSync(FIXTURE_ROOT, { withFileTypes: true })
  .filter((e) => e.isDirectory() && fs.existsSync(path.join(FIXTURE_ROOT, e.name, 'config.json')))
  .map((e) => e.name);
for (const a of ORIGINAL_ARCHS) if (!present.includes(a)) throw new Error(`fixtures/hf-tiny-moe/${a} is missing`);

/** the families of issue 16, in a fixed (alphabetical) order */
export const NEW_ARCHS = present.filter((a) => !ORIGINAL_ARCHS.includes(a)).sort();
export const FIXTURE_ARCHS = [...ORIGINAL_ARCHS, ...NEW_ARCHS];

/**
 * Where the fixtures' router logits sit when a layer has more than one router. JetMoE routes its attention experts
 * and its MLP experts (moekit: `Tracer.moa` and `Tracer.moe`, the MLP's as router_logits.<L> of `moekit forward`,
 * the attention's as attention_router_logits.<L>). transformers' output_router_logits lists three per layer for it
 * (the attention router's twice: its gating's and its attention module's, then the MLP's); the hooks of
 * router_reference.safetensors one per router linear in parameter order, the MLP's then the attention's. Entry
 * `per`: tensors per layer, `mlp` / `attention`: the index of each within the layer's.
 */
export interface RouterSlots { per: number; mlp: number; attention?: number }
export const ROUTER_LAYOUT: Record<string, { reference: RouterSlots; hooks: RouterSlots }> = {
  jetmoe: { reference: { per: 3, mlp: 2, attention: 0 }, hooks: { per: 2, mlp: 0, attention: 1 } },
};
const ONE: RouterSlots = { per: 1, mlp: 0 };
/** the name of MoE layer L's router logits (its MLP's, or its attention experts') in a fixture file */
export function routerName(arch: string, file: 'reference' | 'hooks', L: number, which: 'mlp' | 'attention' = 'mlp'): string {
  const s = ROUTER_LAYOUT[arch]?.[file] ?? ONE;
  return `router_logits.${L * s.per + (which === 'mlp' ? s.mlp : s.attention!)}`;
}
/** router logits tensors per MoE layer in a fixture file */
export const routersPerLayer = (arch: string, file: 'reference' | 'hooks'): number => (ROUTER_LAYOUT[arch]?.[file] ?? ONE).per;
