/**
 * The native kernels: build/Release/moekit_native.node (binding.gyp, native/*.cc), OpenBLAS
 * sgemm/sgemv plus hand-written C++ row kernels with a run-time AVX2/FMA dispatch. Loaded once,
 * at import; `nativeKernels` is null when the binary is absent or will not load, and
 * `nativeLoadError` then says why. The addon validates every argument itself (RangeError naming
 * the argument for too-small buffers), so the wrapper passes calls straight through.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Kernels } from './kernels.js';
import { bf16ToF32, sgemmBf16, sgemvBf16 } from './ref/bf16.js';

/** What the addon exports (native/addon.cc). */
export interface NativeAddon extends Omit<Kernels, 'name' | BF16Kernel>,
  Partial<Pick<Kernels, BF16Kernel>> {
  info(): { simd: 'avx2' | 'scalar'; avx2: boolean; threads: number; blasConfig: string;
            blasCore: string };
  /** OpenBLAS thread count (>= 1); returns the count now in effect */
  setThreads(n: number): number;
  /** row-kernel set: 'avx2' | 'scalar' | 'auto'; throws RangeError if the CPU lacks it */
  setSimd(which: 'avx2' | 'scalar' | 'auto'): 'avx2' | 'scalar';
}

/**
 * The bf16 kernels (native/bf16.cc). An addon built before they existed lacks them; the
 * wrapper then uses the reference implementations (test/kernels.test.ts requires the addon's).
 */
type BF16Kernel = 'bf16ToF32' | 'sgemvBf16' | 'sgemmBf16';

/** Absolute path of the addon: this file is src/tensor/native.ts or dist/tensor/native.js. */
export const nativeAddonPath = fileURLToPath(
  new URL('../../build/Release/moekit_native.node', import.meta.url));

function load(): { addon: NativeAddon | null; error: string | null; threadsError: string | null } {
  let addon: NativeAddon;
  try {
    const require = createRequire(import.meta.url);
    addon = require(nativeAddonPath) as NativeAddon;
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return {
      addon: null, threadsError: null,
      error: `cannot load ${nativeAddonPath}: ${msg} (run \`npm run build:native\`)`,
    };
  }
  // OpenBLAS itself reads OPENBLAS_NUM_THREADS when it loads; MOEKIT_THREADS overrides it.
  const threads = process.env.MOEKIT_THREADS;
  if (threads !== undefined && threads.trim() !== '') {
    const n = Number(threads);
    if (!Number.isInteger(n) || n < 1 || n > 4096) {
      return { addon, error: null,
        threadsError: `MOEKIT_THREADS must be an integer in [1, 4096], got '${threads}'` };
    }
    addon.setThreads(n);
  }
  return { addon, error: null, threadsError: null };
}

const loaded = load();

/** The raw addon (with info/setThreads/setSimd), or null. */
export const nativeAddon: NativeAddon | null = loaded.addon;

/** Why the addon did not load, or null when it did. */
export const nativeLoadError: string | null = loaded.error;

/** A bad MOEKIT_THREADS value (getKernels() turns it into a MoekitError), or null. */
export const nativeThreadsError: string | null = loaded.threadsError;

function wrap(a: NativeAddon): Kernels {
  return Object.freeze({
    name: 'native' as const,
    sgemm: a.sgemm,
    sgemv: a.sgemv,
    softmax: a.softmax,
    attnDecode: a.attnDecode,
    rmsnorm: a.rmsnorm,
    rope: a.rope,
    swiglu: a.swiglu,
    swigluClamped: a.swigluClamped,
    topk: a.topk,
    bf16ToF32: a.bf16ToF32 ?? bf16ToF32,
    sgemvBf16: a.sgemvBf16 ?? sgemvBf16,
    sgemmBf16: a.sgemmBf16 ?? sgemmBf16,
  });
}

/** The native Kernels, or null when the addon is missing (see nativeLoadError). */
export const nativeKernels: Kernels | null = nativeAddon ? wrap(nativeAddon) : null;
