#!/usr/bin/env node
// Builds the native kernel core from source (binding.gyp, native/*.cc) with node-gyp, after checking for what
// the build needs, so that a missing piece is named with the package to install instead of a compiler error:
// OpenBLAS's headers (cblas.h) and a C++ compiler. Run through npm (`npm run build:native`: npm puts its own
// node-gyp on the PATH) or `npx moekit native --build` in an installed package.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

function fail(msg) {
  process.stderr.write(`moekit: cannot build the native addon: ${msg}\n`);
  process.exit(1);
}

function onPath(cmd) {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, cmd)));
}

/** cblas.h where binding.gyp's include dirs and the compiler's defaults find it */
function hasCblas() {
  const dirs = ['/usr/include', '/usr/local/include', '/usr/include/openblas', '/opt/homebrew/opt/openblas/include', '/usr/local/opt/openblas/include'];
  try {
    for (const d of fs.readdirSync('/usr/include')) dirs.push(path.join('/usr/include', d)); // multiarch: /usr/include/x86_64-linux-gnu
  } catch { /* no /usr/include */ }
  return dirs.some((d) => fs.existsSync(path.join(d, 'cblas.h')));
}

if (process.platform === 'win32') fail('Windows is not supported (Linux and macOS are)');
if (!hasCblas()) {
  fail('the OpenBLAS headers (cblas.h) are missing: install them (Debian/Ubuntu: apt install libopenblas-dev; ' +
    'Fedora: dnf install openblas-devel; Arch: pacman -S openblas; macOS: brew install openblas), then run this again');
}
if (!['c++', 'g++', 'clang++'].some(onPath)) {
  fail('no C++ compiler (c++, g++ or clang++) on the PATH: install one (Debian/Ubuntu: apt install build-essential; ' +
    'Fedora: dnf install gcc-c++; macOS: xcode-select --install), then run this again');
}
if (!['python3', 'python'].some(onPath)) fail('node-gyp needs Python 3: install it (Debian/Ubuntu: apt install python3)');
if (!onPath('node-gyp')) fail('node-gyp is not on the PATH: run this through npm (`npm run build:native`) or install it (npm install -g node-gyp)');

const r = spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
if (r.error) fail(r.error.message);
process.exit(r.status ?? 1);
