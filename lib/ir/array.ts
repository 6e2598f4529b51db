/**
 * Host arrays: the values fed to and returned from programs.
 *
 * An {@link NDArray} is a plain frozen record (dtype, shape, row-major data)
 * so it crosses every boundary (interpreter, GPU runtime, checkpoints)
 * without classes or disposal.
 *
 * @module
 */

import { type DType, isDType, roundTo } from "./dtype.ts";
import { checkShape, fmtShape, numel, type Shape } from "./shape.ts";

/** Row-major element storage. The interpreter uses Float64Array. */
export type ArrayData =
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Uint8Array;

/** A host tensor value. */
export interface NDArray<D extends DType = DType> {
  /** Element type the data represents. */
  readonly dtype: D;
  /** Shape. */
  readonly shape: Shape;
  /** Row-major values; length equals the number of elements. */
  readonly data: ArrayData;
}

/** Anything {@link array} accepts as data. */
export type ArrayLikeData = ArrayData | readonly number[] | number;

/**
 * Makes a host array, checking that the data fits the shape.
 *
 * @param data values (flat, row-major), or one number for a filled array
 * @param shape the shape (default: 1-D of the data's length)
 * @param dtype the element type (default f32)
 * @returns the array (data copied into a typed array when given as a list)
 * @throws {TypeError} when the data is not numbers or its length does not match the shape
 */
export function array<D extends DType = "f32">(
  data: ArrayLikeData,
  shape?: readonly number[],
  dtype: D = "f32" as D,
): NDArray<D> {
  if (!isDType(dtype)) throw new TypeError(`Cannot make an array: unknown dtype "${dtype}"`);
  const s = checkShape(
    shape ?? [typeof data === "number" ? 1 : data.length],
    "Cannot make an array",
  );
  const n = numel(s);
  let d: ArrayData;
  if (typeof data === "number") d = new Float64Array(n).fill(data);
  else if (Array.isArray(data)) {
    // Float64Array.from would turn nested lists and strings into NaN silently.
    const bad = (data as unknown[]).findIndex((v) => typeof v !== "number");
    if (bad >= 0) {
      throw new TypeError(
        `Cannot make an array: data[${bad}] is ${typeof (data as unknown[])[bad]}, not a number; ` +
          `pass flat row-major numbers (e.g. data.flat())`,
      );
    }
    d = Float64Array.from(data as number[]);
  } else if (ArrayBuffer.isView(data) && !(data instanceof DataView)) d = data as ArrayData;
  else {
    throw new TypeError(
      `Cannot make an array: data must be a number, a number list or a typed array, got ${typeof data}`,
    );
  }
  if (d.length !== n) {
    throw new TypeError(
      `Cannot make an array of shape ${fmtShape(s)}: it needs ${n} values, got ${d.length}`,
    );
  }
  return Object.freeze({ dtype, shape: s, data: d });
}

/**
 * Copies an array's values into float64, rounded to its dtype.
 *
 * @param a a host array
 * @returns a fresh Float64Array
 */
export function toFloat64(a: NDArray): Float64Array {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = roundTo(a.dtype, a.data[i]!);
  return out;
}

/**
 * Converts an array to nested JS arrays (for printing and tests).
 *
 * @param a a host array
 * @returns nested arrays, or a number for a scalar
 */
export function toNested(a: NDArray): unknown {
  const rec = (off: number, dim: number): unknown => {
    if (dim === a.shape.length) return a.data[off];
    const stride = numel(a.shape.slice(dim + 1));
    return Array.from({ length: a.shape[dim]! }, (_, i) => rec(off + i * stride, dim + 1));
  };
  return rec(0, 0);
}
