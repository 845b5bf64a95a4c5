#!/usr/bin/env node
// `npm run pack [-- --out DIR] [-- --no-build]`: the npm package, as users install it. Builds the TypeScript (unless
// --no-build), then packs a staging copy of what package.json's `files` selects (the list `npm pack --dry-run` gives)
// with this machine's addon as prebuilds/<platform>-<arch>/moekit.node (src/tensor/native.ts loads it first) and a
// manifest without the clone's lifecycle scripts: `prepare` builds the addon from source on `npm ci` here, and
// shipped it would make npm's install-script approval list the package. Prints npm pack's JSON summary.
// A plain `npm pack` is refused (prepack) because it would ship neither.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);

function fail(msg) {
  process.stderr.write(`moekit pack: ${msg}\n`);
  process.exit(1);
}
if (args.includes('--refuse')) {
  fail('pack with `npm run pack` (it ships the prebuilt addon and a manifest without the build scripts), then `npm publish moekit-<version>.tgz`');
}

function npm(cmdArgs, cwd) {
  const r = spawnSync('npm', cmdArgs, { cwd, encoding: 'utf8' });
  if (r.status !== 0) fail(`npm ${cmdArgs.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

const outIdx = args.indexOf('--out');
const out = path.resolve(outIdx >= 0 ? args[outIdx + 1] : root);
if (!args.includes('--no-build')) {
  const r = spawnSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const addon = path.join(root, 'build', 'Release', 'moekit_native.node');
if (!fs.existsSync(addon)) fail(`${addon} is missing: run npm run build:native first`);
if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) fail('dist/ is missing: run npm run build:ts first');

const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-pack-'));
try {
  const listed = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], root))[0].files.map((f) => f.path);
  for (const f of listed) {
    fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(stage, f));
  }
  const pre = path.join(stage, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.mkdirSync(pre, { recursive: true });
  fs.copyFileSync(addon, path.join(pre, 'moekit.node'));
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  // what an installed package runs: `moekit native --build` calls build:native; nothing runs at install
  pkg.scripts = { 'build:native': pkg.scripts['build:native'] };
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  fs.mkdirSync(out, { recursive: true });
  process.stdout.write(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', out], stage));
} finally {
  fs.rmSync(stage, { recursive: true, force: true });
}
