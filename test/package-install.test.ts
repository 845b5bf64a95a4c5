/**
 * The package as a user gets it: `npm run pack` (the files list, the prebuilt addon, a manifest without scripts), the tarball installed into an
 * empty project in a temp directory (dependencies from the npm cache, else the registry; no install script runs),
 * then `npx moekit inspect` on a fixture, the native core loaded from the package's prebuild, and the README's
 * library example, all run there. The tarball's size is printed and held under 10 MB.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkExampleOutput, readmeExample, ROOT } from './package-example.js';

const MAX_TARBALL_BYTES = 10 * 1024 * 1024;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-install-'));
const project = path.join(tmp, 'project');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** the environment of `npm test` minus what describes moekit's own package to npm */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(package|lifecycle)_|^INIT_CWD$/.test(k)));

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 110_000 });
}
const said = (r: SpawnSyncReturns<string>) => `${r.stdout}\n${r.stderr}${r.error ? `\n${r.error.message}` : ''}`;

interface Packed { filename: string; size: number; unpackedSize: number; entryCount: number; files: { path: string; size: number }[] }
let packed: Packed;
let installSeconds = 0;

beforeAll(() => {
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'build/Release/moekit_native.node']) {
    if (!fs.existsSync(path.join(ROOT, f))) throw new Error(`${f} is missing: run npm run build (npm test builds the TypeScript)`);
  }
  // `npm run pack` without its TypeScript build (npm test has just built dist/; other tests are running on it)
  const r = run(process.execPath, ['scripts/pack.mjs', '--no-build', '--out', tmp], ROOT);
  if (r.status !== 0) throw new Error(`npm run pack: ${said(r)}`);
  packed = (JSON.parse(r.stdout) as Packed[])[0];
  console.log(`moekit tarball: ${packed.filename}, ${(packed.size / 2 ** 20).toFixed(2)} MiB (${packed.size} bytes; ` +
    `${(packed.unpackedSize / 2 ** 20).toFixed(2)} MiB unpacked, ${packed.entryCount} files)`);

  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'moekit-install-check', private: true, type: 'module' }, null, 2));
  const t0 = performance.now();
  const inst = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(tmp, packed.filename)], project);
  installSeconds = (performance.now() - t0) / 1000;
  if (inst.status !== 0) throw new Error(`npm install: ${said(inst)}`);
  console.log(`npm install of the tarball: ${installSeconds.toFixed(1)} s`);
  if (/allow-scripts|install-scripts/.test(said(inst))) throw new Error(`npm asked about install scripts: ${said(inst)}`);
}, 240_000);

describe('the package', () => {
  it('is under 10 MB and holds the build, the types, the prebuilt addon, the native sources and the demo model, not the tests', () => {
    expect(packed.size).toBeLessThan(MAX_TARBALL_BYTES);
    const files = packed.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/moekit.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js',
      'dist/runtime/worker.js', 'prebuilds/linux-x64/moekit.node', 'binding.gyp', 'native/addon.cc', 'scripts/build-native.mjs',
      'examples/demo-moe/model.safetensors', 'dist/web/index.html', 'dist/server/app.js']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /^(test|fixtures|docs|bench|src|build|tmp)\//.test(f) || f.endsWith('.map'))).toEqual([]);
    const pkg = JSON.parse(fs.readFileSync(path.join(project, 'node_modules/moekit/package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(Object.keys(pkg.scripts).filter((s) => ['preinstall', 'install', 'postinstall'].includes(s))).toEqual([]);
  });

  it('installs without building anything and loads its prebuilt native core', () => {
    expect(fs.existsSync(path.join(project, 'node_modules/moekit/build'))).toBe(false);
    const r = run('npx', ['--no', 'moekit', 'native', '--json'], project);
    expect(r.status, said(r)).toBe(0);
    const info = JSON.parse(r.stdout) as { name: string; addon: string | null; nativeError: string | null };
    expect(info.nativeError).toBeNull();
    expect(info.addon).toBe(path.join(fs.realpathSync(project), 'node_modules/moekit/prebuilds/linux-x64/moekit.node'));
  });

  it('npx moekit inspect works on a fixture and on the bundled demo model', () => {
    const fixture = path.join(ROOT, 'fixtures/hf-tiny-moe/qwen3_moe');
    const r = run('npx', ['--no', 'moekit', 'inspect', fixture, '--json'], project);
    expect(r.status, said(r)).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ architecture: 'Qwen3MoeForCausalLM', arch: 'qwen3_moe' });
    const demo = run('npx', ['--no', 'moekit', 'inspect', 'demo'], project);
    expect(demo.status, said(demo)).toBe(0);
    expect(demo.stdout).toMatch(/Qwen3MoeForCausalLM/);
    const missing = run('npx', ['--no', 'moekit', 'inspect', 'examples/demo-moe'], project);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/ships the demo model as 'demo'/);
  });

  it("runs the README's library example", () => {
    fs.writeFileSync(path.join(project, 'example.mjs'), readmeExample());
    const r = run(process.execPath, ['example.mjs'], project);
    expect(r.status, said(r)).toBe(0);
    expect(checkExampleOutput(r.stdout)).toEqual([]);
  });

  it('types resolve for a TypeScript user', () => {
    fs.writeFileSync(path.join(project, 'typed.ts'), [
      "import { loadModel, type Completion, type InspectReport } from 'moekit';",
      "const m = await loadModel('demo', { onProgress: (ev) => { if (ev.status === 'progress') console.log(ev.loaded / ev.total); } });",
      "const c: Completion = await m.complete('sort 3 1 2=', { maxNewTokens: 4 });",
      'const n: number = c.newIds.length + m.desc.vocab;',
      "const r: InspectReport | null = null;",
      'console.log(n, r);',
      '',
    ].join('\n'));
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true,
        // a Node user's @types/node (moekit's types name Buffer); this repository's copy, nothing to install
        typeRoots: [path.join(ROOT, 'node_modules/@types')], types: ['node'] },
      files: ['typed.ts'],
    }));
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    const r = run(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
    expect(r.status, said(r)).toBe(0);
  });
});
