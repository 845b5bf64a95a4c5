import { MoekitError } from '../util/errors.js';

/** Entry point of the `moekit` command; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug') || process.env.MOEKIT_DEBUG === '1';
  const args = argv.filter((a) => a !== '--debug');
  try {
    const [cmd, ...rest] = args;
    switch (cmd) {
      case 'plan': {
        const { runPlanCommand } = await import('./plan.js');
        return await runPlanCommand(rest);
      }
      default:
        throw new MoekitError(`unknown command '${cmd ?? ''}' (try: inspect, forward, generate, plan)`);
    }
  } catch (e) {
    if (e instanceof MoekitError && !debug) {
      process.stderr.write(`moekit: ${e.oneLine()}\n`);
      return 1;
    }
    process.stderr.write(`moekit: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}
