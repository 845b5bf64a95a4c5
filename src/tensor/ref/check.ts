/**
 * Argument validation shared by the reference kernels. The native addon performs the same
 * checks in C++ (native/check.h) with the same messages, so both implementations fail alike:
 * a RangeError naming the argument whenever a dimension is not a non-negative integer, a
 * leading dimension is too small, or a buffer is too short for the given dims.
 */

/** Throw a RangeError unless `v` is a non-negative safe integer. */
export function dim(kernel: string, name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${kernel}: ${name} must be a non-negative integer, got ${v}`);
  }
}

/** Throw a RangeError unless leading dimension `ld` >= max(1, cols). */
export function lead(kernel: string, name: string, ld: number, cols: number): void {
  dim(kernel, name, ld);
  if (ld < Math.max(1, cols)) {
    throw new RangeError(`${kernel}: ${name}=${ld} must be >= max(1, ${cols})`);
  }
}

/** Elements a strided matrix [rows, cols] with row stride ld touches: (rows-1)·ld + cols. */
export function span(rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
}

/** Throw a RangeError unless buffer `name` holds at least `need` elements. */
export function len(kernel: string, name: string, buf: { length: number }, need: number): void {
  if (buf.length < need) {
    throw new RangeError(`${kernel}: ${name} has ${buf.length} elements, needs ${need}`);
  }
}

/** Throw a TypeError unless `buf` is a Float32Array (a Float64Array would silently misbehave). */
export function f32(kernel: string, name: string, buf: unknown): asserts buf is Float32Array {
  if (!(buf instanceof Float32Array)) {
    throw new TypeError(`${kernel}: ${name} must be a Float32Array`);
  }
}

/** Throw a TypeError unless `buf` is a Uint16Array (bfloat16 bit patterns). */
export function u16(kernel: string, name: string, buf: unknown): asserts buf is Uint16Array {
  if (!(buf instanceof Uint16Array)) {
    throw new TypeError(`${kernel}: ${name} must be a Uint16Array`);
  }
}
