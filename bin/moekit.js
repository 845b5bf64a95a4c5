#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// `moekit ... | head`: a closed pipe ends the command quietly, as Unix tools do
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
