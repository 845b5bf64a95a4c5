#!/usr/bin/env node
// The prebuilt addon the package ships: copies the addon built here (build/Release/moekit_native.node) to
// prebuilds/<platform>-<arch>/moekit.node, where src/tensor/native.ts looks first. `npm pack` runs it (prepack)
// and removes the copy after (postpack, `--clean`), so that in a clone the from-source build is the one loaded.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (process.argv.includes('--clean')) {
  fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  process.exit(0);
}
const built = path.join(root, 'build', 'Release', 'moekit_native.node');
if (!fs.existsSync(built)) {
  process.stderr.write(`moekit prebuild: ${built} is missing: run npm run build:native first\n`);
  process.exit(1);
}
fs.mkdirSync(dir, { recursive: true });
const tmp = path.join(dir, `.moekit.node.${process.pid}`);
fs.copyFileSync(built, tmp);
fs.renameSync(tmp, path.join(dir, 'moekit.node')); // atomic: a process loading it never sees half a file
process.stdout.write(`prebuilds/${process.platform}-${process.arch}/moekit.node (${fs.statSync(path.join(dir, 'moekit.node')).size} bytes)\n`);
