/** Entry point of the `moekit` command; returns the exit code. */
import { MoekitError } from '../util/errors.js';
import { HelpRequested } from './args.js';

const HELP = `moekit: Mixture-of-Experts toolkit

  moekit inspect MODEL_DIR [--json]              architecture, experts, parameters, memory
  moekit forward MODEL_DIR --input IDS.safetensors --out OUT.safetensors [--json]
                 [--experts eager|lazy] [--expert-budget SIZE]
                                                 logits and router logits of a batch
  moekit generate MODEL_DIR (--ids 1,2,3 | --prompt TEXT) [--max-new-tokens N]
                 [--greedy | --temperature T --top-k K --top-p P --seed S] [--json]
  moekit train [CONFIG.yaml] [--resume] [--out DIR] [--set key=value ...]
                                                 train a MoE (elastic sub-models, balance losses)
  moekit extract MODEL_DIR [--layers 0,1,3] [--keep KEEP.json | --experts N] [--top-k K] --out DIR
                                                 a sub-model as a standalone checkpoint
  moekit quantize MODEL_DIR --type q8_0|q4_0 --out DIR
                                                 weight matrices as llama.cpp blocks (docs/quantization.md)
  moekit grad MODEL_DIR --input IDS.safetensors --out GRADS.safetensors
                                                 loss and every parameter's gradient
  moekit eval MODEL_DIR [--tasks a,b|text|image|all] [--n N] [--json]
                                                 exact match on the built-in tasks' held-out prompts
  moekit experts profile|prune|retrieve|eval ...  PreMoe: per-task expert scores, a pattern store,
                                                 pruned checkpoints, retrieval (moekit experts --help)
  moekit plan simulate|search|sweep|export|op ...  MoE training planner (moekit plan --help)
  moekit native [--build]                        which native kernel core loaded; --build builds it from source
  moekit serve [MODEL_DIR] [--host H] [--port 8080] [--api-key KEY] [--slots N] [--queue N]
                                                 OpenAI-compatible server and dashboard (default: the demo model)

  MODEL_DIR may be 'demo': the demo model moekit ships (examples/demo-moe).

  --debug (or MOEKIT_DEBUG=1) shows stack traces; MOEKIT_KERNELS=reference|native picks kernels.
`;

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug') || process.env.MOEKIT_DEBUG === '1';
  const args = argv.filter((a) => a !== '--debug');
  try {
    const [cmd, ...rest] = args;
    if (COMPUTES.has(cmd)) await warnWithoutNative();
    switch (cmd) {
      case 'inspect': return await (await import('./inspect.js')).runInspect(rest);
      case 'forward': return await (await import('./forward.js')).runForward(rest);
      case 'generate': return await (await import('./generate.js')).runGenerate(rest);
      case 'train': return await (await import('./train.js')).runTrain(rest);
      case 'extract': return await (await import('./extract.js')).runExtract(rest);
      case 'quantize': return await (await import('./quantize.js')).runQuantize(rest);
      case 'grad': return await (await import('./grad.js')).runGrad(rest);
      case 'experts': return await (await import('./experts.js')).runExperts(rest);
      case 'eval': return await (await import('./eval.js')).runEval(rest);
      case 'native': return await (await import('./native.js')).runNative(rest);
      case 'serve': return await (await import('./serve.js')).runServe(rest);
      case 'plan': {
        const { runPlanCommand } = await import('./plan.js');
        return await runPlanCommand(rest);
      }
      case undefined: case 'help': case '--help': case '-h':
        process.stdout.write(HELP);
        return cmd === undefined ? 2 : 0;
      case '--version': case 'version':
        process.stdout.write('moekit 0.1.0\n');
        return 0;
      default:
        throw new MoekitError(`unknown command '${cmd}' (try: inspect, forward, generate, train, eval, extract, quantize, grad, experts, plan, serve, native; moekit --help)`);
    }
  } catch (e) {
    if (e instanceof HelpRequested) {
      process.stdout.write(`usage: ${e.usage}\n`);
      return 0;
    }
    if (e instanceof MoekitError && !debug) {
      process.stderr.write(`moekit: ${e.oneLine()}\n`);
      return 1;
    }
    if (!debug && isFsError(e)) {
      process.stderr.write(`moekit: ${e.path ? `${e.path}: ` : ''}${fsMessage(e)}\n`);
      return 1;
    }
    process.stderr.write(`moekit: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}

/** the commands that run a model: without the native core they run on the (much slower) reference kernels */
const COMPUTES = new Set(['forward', 'generate', 'train', 'extract', 'grad', 'eval', 'quantize']);

async function warnWithoutNative(): Promise<void> {
  const { kernelsInfo } = await import('../tensor/index.js');
  if ((process.env.MOEKIT_KERNELS ?? '').trim().toLowerCase() === 'reference') return;
  const k = kernelsInfo();
  if (k.nativeError) process.stderr.write(`moekit: warning: running on the TypeScript reference kernels (exact, much slower): ${k.nativeError}\n`);
}

interface FsError extends Error { code: string; path?: string }
function isFsError(e: unknown): e is FsError {
  return e instanceof Error && typeof (e as FsError).code === 'string' && /^E[A-Z]+$/.test((e as FsError).code);
}
function fsMessage(e: FsError): string {
  const m: Record<string, string> = { ENOENT: 'no such file or directory', EACCES: 'permission denied', EISDIR: 'is a directory', ENOTDIR: 'not a directory', ENOSPC: 'no space left on device' };
  return m[e.code] ?? e.message;
}
