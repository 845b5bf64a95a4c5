// The dashboard's build (npm run build:web, part of npm ci through `prepare`): src/server/web → dist/web,
// everything bundled (chart.js included), no CDN; the server serves dist/web at /.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
export default defineConfig({
  root: here,
  base: './',
  logLevel: 'warn',
  build: { outDir: fileURLToPath(new URL('../../../dist/web', import.meta.url)), emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1024 },
});
