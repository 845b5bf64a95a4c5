/**
 * Kernel selection. getKernels() returns the native kernels when the addon loaded, else the
 * TypeScript reference. MOEKIT_KERNELS overrides: `reference` forces the reference, `native`
 * makes a missing addon a MoekitError, `auto` (or unset) is the default.
 */
import { MoekitError } from '../util/errors.js';
import type { Kernels } from './kernels.js';
import { nativeAddon, nativeKernels, nativeLoadError, nativeThreadsError } from './native.js';
import { referenceKernels } from './ref/index.js';

export type { Kernels } from './kernels.js';
export { referenceKernels } from './ref/index.js';
export { nativeKernels, nativeLoadError } from './native.js';

function mode(): 'auto' | 'native' | 'reference' {
  const v = (process.env.MOEKIT_KERNELS ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'native' || v === 'reference') return v;
  throw new MoekitError(
    `MOEKIT_KERNELS must be 'native', 'reference' or 'auto', got '${process.env.MOEKIT_KERNELS}'`,
    'MOEKIT_KERNELS');
}

/** The kernels to use (reads MOEKIT_KERNELS on every call; the addon is loaded once). */
export function getKernels(): Kernels {
  const m = mode();
  if (m === 'reference') return referenceKernels;
  if (nativeKernels) {
    if (nativeThreadsError) throw new MoekitError(nativeThreadsError, 'MOEKIT_THREADS');
    return nativeKernels;
  }
  if (m === 'native') {
    throw new MoekitError(`native kernels requested but unavailable: ${nativeLoadError}`,
      'MOEKIT_KERNELS');
  }
  return referenceKernels;
}

export interface KernelsInfo {
  /** the kernels getKernels() returns now */
  name: 'native' | 'reference';
  /** why the native addon is not loaded (null when it is) */
  nativeError: string | null;
  /** OpenBLAS threads (null without the addon; the reference is single-threaded) */
  threads: number | null;
  /** native row-kernel instruction set: 'avx2' | 'scalar' (null without the addon) */
  simd: string | null;
  /** OpenBLAS build string, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... SkylakeX" */
  blas: string | null;
}

/**
 * What getKernels() picks and why; for `moekit --version`-style reports and bench headers.
 * Never throws for a missing addon: `name` is then 'reference' and `nativeError` says why
 * (an invalid MOEKIT_KERNELS value still throws, as getKernels() does).
 */
export function kernelsInfo(): KernelsInfo {
  const i = nativeAddon?.info();
  return {
    name: mode() === 'reference' || !nativeKernels ? 'reference' : 'native',
    nativeError: nativeLoadError,
    threads: i ? i.threads : null,
    simd: i ? i.simd : null,
    blas: i ? i.blasConfig : null,
  };
}
