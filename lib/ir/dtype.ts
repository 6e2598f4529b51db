/**
 * Element types of tensor expressions and their promotion rules.
 *
 * The dtype is part of an expression's TypeScript type (`Expr<"f32">`), so
 * the promotion table exists twice: as a type ({@link Promote}) and as a
 * value ({@link promote}). A test checks the two agree.
 *
 * @module
 */

/** Every element type an expression can have. */
export type DType = "f32" | "f16" | "i32" | "u32" | "bool";

/** Floating-point element types. */
export type FloatDType = "f32" | "f16";

/** Integer element types (bool is not an integer here). */
export type IntDType = "i32" | "u32";

/** Numeric element types: everything but bool. */
export type NumericDType = FloatDType | IntDType;

/** All dtypes, in promotion order (a later dtype wins). */
export const DTYPES: readonly DType[] = Object.freeze([
  "bool",
  "u32",
  "i32",
  "f16",
  "f32",
]);

const RANK: Readonly<Record<DType, number>> = Object.freeze({
  bool: 0,
  u32: 1,
  i32: 2,
  f16: 3,
  f32: 4,
});

/**
 * The dtype two operands promote to: the later one in
 * `bool < u32 < i32 < f16 < f32`. Mixing u32 and i32 gives i32, as in
 * WGSL's most common use (indices); values above 2^31 would wrap, so
 * avoid mixing them.
 */
export type Promote<A extends DType, B extends DType> = A extends B ? A
  : "f32" extends A | B ? "f32"
  : "f16" extends A | B ? "f16"
  : "i32" extends A | B ? "i32"
  : "u32" extends A | B ? "u32"
  : "bool";

/**
 * Promotes two dtypes (value-level twin of {@link Promote}).
 *
 * @param a the first dtype
 * @param b the second dtype
 * @returns the dtype both promote to
 */
export function promote<A extends DType, B extends DType>(
  a: A,
  b: B,
): Promote<A, B> {
  return (RANK[a] >= RANK[b] ? a : b) as Promote<A, B>;
}

/**
 * Whether a dtype is floating point.
 *
 * @param d a dtype
 * @returns true for f32 and f16
 */
export function isFloat(d: DType): d is FloatDType {
  return d === "f32" || d === "f16";
}

/**
 * Whether a dtype is an integer type (i32 or u32).
 *
 * @param d a dtype
 * @returns true for i32 and u32
 */
export function isInt(d: DType): d is IntDType {
  return d === "i32" || d === "u32";
}

/**
 * Whether a string names a dtype.
 *
 * @param s any string
 * @returns true when `s` is one of {@link DTYPES}
 */
export function isDType(s: string): s is DType {
  return Object.hasOwn(RANK, s);
}

/**
 * Bytes per element when stored in a GPU buffer or a safetensors file.
 * bool is stored as one u32 per element on the GPU (WGSL has no bool
 * storage), but as one byte in files; this returns the GPU width.
 *
 * @param d a dtype
 * @returns the element size in bytes on the GPU
 */
export function byteSize(d: DType): number {
  return d === "f16" ? 2 : 4;
}

/**
 * Rounds a float64 value to what the dtype can hold, as a cast would
 * (f32/f16 rounding, integer truncation toward zero and wrap, bool as 0/1).
 * Used by the interpreter for casts and constants.
 *
 * @param d the target dtype
 * @param v a number
 * @returns `v` represented in `d`, as a float64
 */
export function roundTo(d: DType, v: number): number {
  switch (d) {
    case "f32":
      return Math.fround(v);
    case "f16":
      return Math.f16round(v);
    case "i32":
      return Number.isFinite(v) ? Math.trunc(v) | 0 : 0;
    case "u32":
      return Number.isFinite(v) ? Math.trunc(v) >>> 0 : 0;
    case "bool":
      return v !== 0 && !Number.isNaN(v) ? 1 : 0;
  }
}
