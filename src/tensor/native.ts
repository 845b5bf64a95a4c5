/**
 * The native kernels (binding.gyp, native/*.cc): OpenBLAS sgemm/sgemv plus hand-written C++ row
 * kernels with a run-time AVX2/FMA dispatch. Loaded once, at import, from the first of
 * nativeAddonCandidates that loads: the prebuilt addon the package ships for this platform
 * (prebuilds/linux-x64/moekit.node, put there by `npm run pack`), then a build from source
 * (build/Release, `npm run build:native`). `nativeKernels` is null when none loads, and
 * `nativeLoadError` then says why, naming what to install. The addon validates every argument itself (RangeError naming
 * the argument for too-small buffers), so the wrapper passes calls straight through.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Kernels } from './kernels.js';
import { bf16ToF32, sgemmBf16, sgemvBf16 } from './ref/bf16.js';
import { dequantize, qgemm, quantize } from './ref/quant.js';
import * as train from './ref/train.js';

/** What the addon exports (native/addon.cc). */
export interface NativeAddon extends Omit<Kernels, 'name' | BF16Kernel | TrainKernel>,
  Partial<Pick<Kernels, BF16Kernel | TrainKernel>> {
  info(): { simd: 'avx2' | 'scalar'; avx2: boolean; threads: number; blasConfig: string;
            blasCore: string; amx?: boolean; amxOn?: boolean;
            avx512bf16?: boolean; avx512vnni?: boolean; avx512On?: boolean };
  /** OpenBLAS thread count (>= 1); returns the count now in effect */
  setThreads(n: number): number;
  /** row-kernel set: 'avx2' | 'scalar' | 'auto'; throws RangeError if the CPU lacks it */
  setSimd(which: 'avx2' | 'scalar' | 'auto'): 'avx2' | 'scalar';
  /** sgemmBf16 on AMX tiles (native/amx.cc) on or off; returns whether it is now in use (an older build lacks it) */
  setAmx?(on: boolean): boolean;
  /** the AVX-512 paths (sgemmBf16 on VDPBF16PS, qgemm on VNNI) on or off (force: sgemmBf16 on VDPBF16PS at every
   * M >= 2, not only where it wins); returns whether any is now in use */
  setAvx512?(on: boolean, force?: boolean): boolean;
  /** bytes [offset − skew, offset + length) of a file as a private copy-on-write mapping, skew = offset mod the page
   * size; an older build lacks it */
  mapFile?(path: string, offset: number, length: number): ArrayBuffer;
}

/**
 * The bf16 and block-quantised kernels (native/bf16.cc, quant.cc). An addon built before they existed lacks them; the
 * wrapper then uses the reference implementations (test/kernels.test.ts requires the addon's).
 */
type BF16Kernel = 'bf16ToF32' | 'sgemvBf16' | 'sgemmBf16' | 'quantize' | 'dequantize' | 'qgemm';
/** The training kernels (native/train.cc); an older addon lacks them and the wrapper uses ref/train.ts. */
type TrainKernel = keyof typeof train;

/** Where the addon is looked for, in order (this file is src/tensor/native.ts or dist/tensor/native.js). */
export const nativeAddonCandidates: readonly string[] = [
  fileURLToPath(new URL(`../../prebuilds/${process.platform}-${process.arch}/moekit.node`, import.meta.url)),
  fileURLToPath(new URL('../../build/Release/moekit_native.node', import.meta.url)),
];

/** The addon that loaded, or (none loaded) the from-source build's path. */
export let nativeAddonPath = nativeAddonCandidates[1];

/**
 * Why an addon that exists did not load, and what to do: the shared OpenBLAS library is the usual
 * missing piece (the addon links it dynamically).
 */
export function loadFailureHint(message: string): string {
  if (/libopenblas/.test(message)) {
    return 'the OpenBLAS runtime library is missing or unreadable: install it (Debian/Ubuntu: apt install libopenblas0; Fedora: dnf install openblas; Arch: pacman -S openblas)';
  }
  if (/GLIBC|GLIBCXX/.test(message)) return 'this system\'s C/C++ runtime is older than the prebuilt addon\'s: build it from source with `npx moekit native --build`';
  return 'build it from source with `npx moekit native --build` (in a clone: npm run build:native)';
}

/**
 * The OpenBLAS kernel set for this CPU when OpenBLAS would not recognise it. A DYNAMIC_ARCH OpenBLAS picks its
 * kernels by CPU model when it loads, and falls back to the SSE3 'Prescott' set for a model it does not know (0.3.21
 * on a virtualised Sapphire/Emerald Rapids Xeon, family 6 model 207: sgemm ~10× below what the core does). On Intel
 * CPUs whose flags show AVX-512 (F, BW, VL, DQ) this names 'SkylakeX', with AVX2 + FMA 'Haswell'; elsewhere nothing
 * (OpenBLAS's own choice). A set OPENBLAS_CORETYPE always wins.
 */
export function blasCoreFor(cpuinfo: string): string | null {
  if (!/^vendor_id\s*:\s*GenuineIntel/m.test(cpuinfo)) return null;
  const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '').trim().split(/\s+/));
  if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.has(f))) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return null;
}

function load(): { addon: NativeAddon | null; error: string | null; threadsError: string | null } {
  if (!process.env.OPENBLAS_CORETYPE && process.platform === 'linux') {
    let info = '';
    try { info = fs.readFileSync('/proc/cpuinfo', 'utf8'); } catch { /* no cpuinfo: OpenBLAS decides */ }
    const core = blasCoreFor(info);
    if (core) process.env.OPENBLAS_CORETYPE = core; // read by OpenBLAS when the addon loads it, just below
  }
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  let found: NativeAddon | null = null;
  for (const file of nativeAddonCandidates) {
    if (!fs.existsSync(file)) continue;
    try {
      found = require(file) as NativeAddon;
      nativeAddonPath = file;
      break;
    } catch (e) {
      const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
      failures.push(`cannot load ${file}: ${msg}. ${loadFailureHint(msg)}`);
    }
  }
  if (!found) {
    return {
      addon: null, threadsError: null,
      error: failures.join('; ') || `no native addon for ${process.platform}-${process.arch} at ${nativeAddonCandidates.join(' or ')}: ` +
        'build it from source with `npx moekit native --build` (in a clone: npm run build:native)',
    };
  }
  const addon = found;
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
    attnDecodeBatch: a.attnDecodeBatch,
    expertsForward: a.expertsForward,
    rmsnorm: a.rmsnorm,
    rope: a.rope,
    swiglu: a.swiglu,
    swigluClamped: a.swigluClamped,
    topk: a.topk,
    bf16ToF32: a.bf16ToF32 ?? bf16ToF32,
    sgemvBf16: a.sgemvBf16 ?? sgemvBf16,
    sgemmBf16: a.sgemmBf16 ?? sgemmBf16,
    quantize: a.quantize ?? quantize,
    dequantize: a.dequantize ?? dequantize,
    qgemm: a.qgemm ?? qgemm,
    rmsnormBackward: a.rmsnormBackward ?? train.rmsnormBackward,
    swigluBackward: a.swigluBackward ?? train.swigluBackward,
    softmaxBackward: a.softmaxBackward ?? train.softmaxBackward,
    adamw: a.adamw ?? train.adamw,
    addTo: a.addTo ?? train.addTo,
    sumSquares: a.sumSquares ?? train.sumSquares,
    scale: a.scale ?? train.scale,
    gatherRows: a.gatherRows ?? train.gatherRows,
    scatterRows: a.scatterRows ?? train.scatterRows,
    combineRows: a.combineRows ?? train.combineRows,
    combineRowsBackward: a.combineRowsBackward ?? train.combineRowsBackward,
  });
}

/** The native Kernels, or null when the addon is missing (see nativeLoadError). */
export const nativeKernels: Kernels | null = nativeAddon ? wrap(nativeAddon) : null;
