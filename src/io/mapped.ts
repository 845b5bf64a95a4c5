/**
 * Tensor bytes as views into file mappings (the native addon's mapFile: a private, copy-on-write mapping of one
 * range), as llama.cpp maps its files: loading reads nothing up front, pages come in on first touch and stay shared
 * with the page cache, and writes into a view never reach the file. Used by the safetensors and GGUF readers for
 * tensors of MAP_MIN_BYTES or more; smaller ones, tensors over Node 20's 4 GiB ArrayBuffers, builds without the
 * addon and MOEKIT_MMAP=0 take positional reads.
 */
import { nativeAddon } from '../tensor/native.js';

/** MOEKIT_MMAP=0: positional reads only */
const MAP_FILES = process.env.MOEKIT_MMAP !== '0';
/** from this size a tensor is mapped (a mapping costs a page and a system call) */
export const MAP_MIN_BYTES = 1 << 16;
/** Node 20's ArrayBuffers stop at 4 GiB (the mapping starts up to a page before the range) */
const MAP_MAX_BYTES = 2 ** 32 - 2 ** 16;

/** whether this process maps tensors at all */
export const mapsFiles = (): boolean => MAP_FILES && typeof nativeAddon?.mapFile === 'function';

/**
 * Bytes [offset, offset + length) of `file` as a view into a mapping of that range, or null where it is not mapped
 * (too small or too large, no addon, MOEKIT_MMAP=0, or the range not inside the file: the caller's positional read
 * then reports what is wrong).
 */
export function mapRange(file: string, offset: number, length: number): Uint8Array | null {
  if (!mapsFiles() || length < MAP_MIN_BYTES || length > MAP_MAX_BYTES) return null;
  try {
    const ab = nativeAddon!.mapFile!(file, offset, length);
    return new Uint8Array(ab, ab.byteLength - length, length);
  } catch {
    return null;
  }
}
