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
