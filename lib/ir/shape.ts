/**
 * Shapes, broadcasting and axis normalisation.
 *
 * Shapes are plain frozen arrays of non-negative integers. Errors raised
 * here are generic; callers prefix them with the op and the user's shapes.
 *
 * @module
 */

/** A tensor shape: sizes of each axis, outermost first (row-major). */
export type Shape = readonly number[];

/**
 * Formats a shape as `[2,3,4]` for error messages and printers.
 *
 * @param s a shape
 * @returns the shape as text
 */
export function fmtShape(s: Shape): string {
  return `[${s.join(",")}]`;
}

/**
 * Number of elements of a shape (1 for a scalar `[]`).
 *
 * @param s a shape
 * @returns the product of the sizes
 */
export function numel(s: Shape): number {
  let n = 1;
  for (const d of s) n *= d;
  return n;
}

/**
 * Row-major strides of a shape, in elements.
 *
 * @param s a shape
 * @returns strides such that element `i` is at `Σ i_k·stride_k`
 */
export function stridesOf(s: Shape): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i]!;
  }
  return st;
}

/**
 * Whether two shapes are equal.
 *
 * @param a a shape
 * @param b another shape
 * @returns true when they have the same rank and sizes
 */
export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Checks that a value is a valid shape and returns a frozen copy.
 *
 * @param s candidate shape
 * @param what what the shape is, for the error message
 * @returns the frozen shape
 * @throws {TypeError} when a size is not a non-negative safe integer
 */
export function checkShape(s: readonly number[], what: string): Shape {
  if (!Array.isArray(s)) {
    throw new TypeError(`${what}: expected a shape array, got ${String(s)}`);
  }
  for (const d of s) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new TypeError(
        `${what}: shape ${fmtShape(s)} has size ${d}; sizes must be non-negative integers`,
      );
    }
  }
  return Object.freeze([...s]);
}

/**
 * NumPy broadcasting of two shapes: align on the right; sizes must be equal
 * or one of them 1.
 *
 * @param a a shape
 * @param b another shape
 * @returns the broadcast shape, or undefined when they do not broadcast
 */
export function broadcastShapes(a: Shape, b: Shape): Shape | undefined {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out[i] = da === 1 ? db : da;
  }
  return Object.freeze(out);
}

/**
 * Normalises one axis (negative counts from the end).
 *
 * @param axis the axis as given by a user
 * @param rank the rank of the shape it indexes
 * @param what the op and shape, for the error message
 * @returns an axis in `[0, rank)`
 * @throws {RangeError} when the axis is out of range
 */
export function normAxis(axis: number, rank: number, what: string): number {
  if (!Number.isInteger(axis)) {
    throw new RangeError(`${what}: axis ${axis} is not an integer`);
  }
  if (rank === 0) {
    throw new RangeError(
      `${what}: axis ${axis} is out of range: a rank-0 (scalar) shape has no axes`,
    );
  }
  if (axis < -rank || axis >= rank) {
    throw new RangeError(
      `${what}: axis ${axis} is out of range for rank ${rank} (valid: ${-rank}..${rank - 1})`,
    );
  }
  return axis < 0 ? axis + rank : axis;
}

/**
 * Normalises a list of axes: each in range, no duplicates, sorted.
 *
 * @param axes axes as given by a user
 * @param rank the rank of the shape they index
 * @param what the op and shape, for the error message
 * @returns sorted, distinct axes in `[0, rank)`
 * @throws {RangeError} on out-of-range or repeated axes
 */
export function normAxes(
  axes: readonly number[],
  rank: number,
  what: string,
): number[] {
  const out = axes.map((a) => normAxis(a, rank, what));
  const sorted = [...out].sort((x, y) => x - y);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) {
      throw new RangeError(
        `${what}: axis ${sorted[i]} is repeated in [${axes.join(",")}]`,
      );
    }
  }
  return sorted;
}
