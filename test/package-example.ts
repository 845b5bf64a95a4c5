/** The README's library example (the js block after `<!-- package-example`), which the package tests run as it is. */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..');

export function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- package-example[^\n]*-->\n```js\n([\s\S]*?)\n```/.exec(readme);
  if (!m) throw new Error('README.md: no ```js block after <!-- package-example -->');
  return m[1] + '\n';
}

/** what the example prints, checked line by line (the demo model's architecture, a drawing, the plan) */
export function checkExampleOutput(out: string): string[] {
  const problems: string[] = [];
  const want: [RegExp, string][] = [
    [/^Qwen3MoeForCausalLM: 4 MoE layers of 16 experts, top-2$/m, 'inspect'],
    [/^loaded in [\d.]+ s$/m, 'the ready progress event'],
    [/<img>[░█\n]+<\/img>/, 'a generated 8×8 drawing'],
    [/^logits \[1,\d+,104\], router logits of 4 MoE layers, \d+ values$/m, 'forward with router logits'],
    [/^DeepSeek-V3 on 2048 H800s: [\d.]+ s per step, MFU [\d.]+ %$/m, 'simulatePlan'],
  ];
  for (const [re, what] of want) if (!re.test(out)) problems.push(`${what}: no match for ${re}`);
  return problems;
}
