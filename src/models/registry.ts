/** The architectures moekit runs, found by config.json `model_type`. */
import { MoekitError } from '../util/errors.js';
import type { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import { aria, ariaText } from './aria.js';
import { dbrx } from './dbrx.js';
import { deepseekV2, deepseekV3 } from './deepseek.js';
import { dots1 } from './dots1.js';
import { flexOlmo } from './flex_olmo.js';
import { ernie45Moe } from './ernie.js';
import { glm4Moe } from './glm4_moe.js';
import { gptOss } from './gpt_oss.js';
import { graniteMoe, graniteMoeShared } from './granite.js';
import { graniteMoeHybrid } from './granitemoehybrid.js';
import { hunyuanMoe } from './hunyuan.js';
import { jetmoe } from './jetmoe.js';
import { llama4, llama4Text } from './llama4.js';
import { minimax } from './minimax.js';
import { longcatFlash } from './longcat_flash.js';
import { mixtral } from './mixtral.js';
import { olmoe } from './olmoe.js';
import { phimoe } from './phimoe.js';
import { qwen2Moe, qwen3Moe } from './qwen_moe.js';
import { qwen3Next } from './qwen3_next.js';
import type { ModelDesc } from './desc.js';
import { validateDesc } from './validate.js';

export const ARCHS: ArchSpec[] = [mixtral, qwen2Moe, qwen3Moe, olmoe, deepseekV3, deepseekV2, ernie45Moe, gptOss, graniteMoe, glm4Moe, dots1, graniteMoeShared, hunyuanMoe, phimoe, llama4Text, llama4, qwen3Next, minimax, longcatFlash, flexOlmo, ariaText, aria, graniteMoeHybrid, dbrx, jetmoe];

export function archFor(c: ConfigReader): ArchSpec {
  const mt = c.has('model_type') ? c.str('model_type') : '';
  const spec = ARCHS.find((a) => a.modelTypes.includes(mt));
  if (!spec) {
    const cls = (c.arr('architectures') ?? [])[0];
    const supported = ARCHS.flatMap((a) => a.modelTypes).join(', ');
    throw new MoekitError(
      mt ? `unsupported architecture '${mt}'${cls ? ` (${String(cls)})` : ''}; supported: ${supported}`
         : `missing key 'model_type'; supported: ${supported}`, c.file);
  }
  return spec;
}

/** the one way a description is built: the config's architecture, its describe(), then validateDesc (ranges, cross-field rules) */
export function describeModel(c: ConfigReader): { arch: ArchSpec; desc: ModelDesc } {
  const arch = archFor(c);
  return { arch, desc: validateDesc(arch.describe(c), c.file) };
}
