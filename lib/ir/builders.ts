/**
 * The public builder functions users write blocks with.
 *
 * Builders add what primitives leave out: NumPy broadcasting (explicit
 * `reshape` + `expand` nodes), numbers as weakly typed operands, negative
 * axes, `keepdims`, and composite helpers (softmax, GELU, norms). Every
 * error names the op and the user's shapes.
 *
 * @example Build a tiny expression
 * ```ts
 * import * as nx from "../../mod.ts";
 * const x = nx.input("x", [2, 3]);
 * const y = nx.mul(nx.add(x, 1), 2); // f32[2,3]
 * ```
 *
 * @module
 */

import { type DType, type FloatDType, isFloat, type Promote, promote } from "./dtype.ts";
import { type Expr, mk, mkLeaf, type NormKind, substitute } from "./expr.ts";
import {
  broadcastShapes,
  fmtShape,
  normAxes,
  normAxis,
  numel,
  type Shape,
  shapeEq,
} from "./shape.ts";

/** An operand: an expression, or a number taking the other operand's dtype. */
export type Operand<D extends DType = DType> = Expr<D> | number;

/** The dtype of an operand (numbers are weak: they adopt the other side's). */
export type DTypeOf<X, Other extends DType = "f32"> = X extends Expr<infer D> ? D : Other;

// ---------------------------------------------------------------------------
// Leaves

/**
 * A named runtime input (data fed each call, e.g. token ids).
 *
 * @param name the name it is bound by
 * @param shape its shape
 * @param dtype its element type (default f32)
 * @returns the input node
 */
export function input<D extends DType = "f32">(
  name: string,
  shape: readonly number[],
  dtype: D = "f32" as D,
): Expr<D> {
  return mkLeaf("input", dtype, shape, { name });
}

/**
 * A named parameter (weights), bound by name from a parameter map.
 *
 * @param name a stable name such as `blocks.0.attn.q.weight`
 * @param shape its shape
 * @param dtype its element type (default f32)
 * @returns the parameter node
 */
export function param<D extends DType = "f32">(
  name: string,
  shape: readonly number[],
  dtype: D = "f32" as D,
): Expr<D> {
  return mkLeaf("param", dtype, shape, { name });
}

/**
 * A constant of a given shape filled with one value.
 *
 * @param shape the shape
 * @param value the fill value
 * @param dtype its element type (default f32)
 * @returns the constant node
 */
export function full<D extends DType = "f32">(
  shape: readonly number[],
  value: number,
  dtype: D = "f32" as D,
): Expr<D> {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot make a constant from ${typeof value}; pass a number`);
  }
  const range = unrepresentable(dtype, value);
  if (range) {
    throw new RangeError(
      `Cannot make ${/^[if]/.test(dtype) ? "an" : "a"} ${dtype} constant of ${value}: ` +
        `it is not representable as ${dtype} (${range})`,
    );
  }
  return mkLeaf("const", dtype, shape, { value });
}

// Integer and bool constants would otherwise truncate or wrap silently
// (e.g. `add(i32, 0.5)` adding 0). Returns the dtype's range when `v` is outside it.
function unrepresentable(d: DType, v: number): string | undefined {
  switch (d) {
    case "i32":
      return Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31
        ? undefined
        : "integers in [-2147483648, 2147483647]";
    case "u32":
      return Number.isInteger(v) && v >= 0 && v < 2 ** 32
        ? undefined
        : "integers in [0, 4294967295]";
    case "bool":
      return v === 0 || v === 1 ? undefined : "0 or 1";
    default:
      return undefined;
  }
}

/**
 * A scalar constant (shape `[]`).
 *
 * @param value the value
 * @param dtype its element type (default f32)
 * @returns the constant node
 */
export function scalar<D extends DType = "f32">(value: number, dtype: D = "f32" as D): Expr<D> {
  return full([], value, dtype);
}

/**
 * Indices `0, 1, 2, …` along one axis, broadcast over the others.
 *
 * @param shape the shape
 * @param axis the axis that counts
 * @param dtype i32 by default; a float dtype gives float positions
 * @returns the iota node
 */
export function iota<D extends DType = "i32">(
  shape: readonly number[],
  axis: number,
  dtype: D = "i32" as D,
): Expr<D> {
  const a = normAxis(axis, shape.length, `Cannot make iota ${fmtShape(shape)}`);
  return mkLeaf("iota", dtype, shape, { axis: a });
}

/**
 * A placeholder used inside a rewrite body (see {@link residual}).
 *
 * @param name a unique name
 * @param shape its shape
 * @param dtype its element type
 * @returns the hole node
 */
export function hole<D extends DType = "f32">(
  name: string,
  shape: readonly number[],
  dtype: D = "f32" as D,
): Expr<D> {
  return mkLeaf("hole", dtype, shape, { name });
}

// ---------------------------------------------------------------------------
// Broadcasting

/**
 * Broadcasts an expression to a shape (NumPy rules), adding `reshape` and
 * `expand` nodes only where needed.
 *
 * @param x an expression
 * @param shape the target shape
 * @returns `x` viewed with the target shape
 * @throws {TypeError} when `x` does not broadcast to `shape`
 */
export function broadcastTo<D extends DType>(x: Expr<D>, shape: readonly number[]): Expr<D> {
  if (shapeEq(x.shape, shape)) return x;
  const b = broadcastShapes(x.shape, shape);
  if (!b || !shapeEq(b, shape)) {
    const what = `Cannot broadcast ${x.dtype}${fmtShape(x.shape)} to ${fmtShape(shape)}`;
    const off = shape.length - x.shape.length;
    if (off < 0) {
      throw new TypeError(
        `${what}: the target has lower rank (${x.shape.length} > ${shape.length})`,
      );
    }
    const a = x.shape.findIndex((d, i) => d !== 1 && d !== shape[i + off]);
    throw new TypeError(
      `${what}: axis ${a} has size ${x.shape[a]}, not 1 or ${shape[a + off]} ` +
        `(sizes must match or be 1, aligned from the right)`,
    );
  }
  let y: Expr = x;
  if (x.shape.length < shape.length) {
    y = mk("reshape", [y], {
      shape: [...new Array(shape.length - x.shape.length).fill(1), ...x.shape],
    });
  }
  if (!shapeEq(y.shape, shape)) y = mk("expand", [y], { shape: [...shape] });
  return y as Expr<D>;
}

// Names the first axis (from the right) on which shapes do not broadcast.
function badAxis(shapes: readonly Shape[]): string {
  const n = Math.max(...shapes.map((s) => s.length));
  for (let i = 1; i <= n; i++) {
    const sizes = [...new Set(shapes.map((s) => s[s.length - i] ?? 1).filter((d) => d !== 1))];
    if (sizes.length > 1) return `axis -${i}: ${sizes.join(" vs ")}`;
  }
  return "";
}

function lift(v: Operand, dtype: DType, shape: Shape): Expr {
  return typeof v === "number" ? full(shape, v, dtype) : v;
}

// A weak number must fit the dtype it adopts.
function checkWeak(op: string, operands: readonly unknown[], sep: string, dtype: DType): void {
  for (const v of operands) {
    if (typeof v !== "number") continue;
    const range = unrepresentable(dtype, v);
    if (!range) continue;
    const list = operands.map((o) =>
      typeof o === "number" ? String(o) : `${(o as Expr).dtype}${fmtShape((o as Expr).shape)}`
    ).join(sep);
    throw new RangeError(
      `Cannot ${op} ${list}: ${v} is not representable as ${dtype} (${range}); ` +
        `cast the expression first, e.g. nx.cast(x, "f32")`,
    );
  }
}

function checkOperand(op: string, v: unknown): void {
  if (typeof v === "number") return;
  if (!v || typeof v !== "object" || typeof (v as Expr).id !== "number") {
    throw new TypeError(`Cannot ${op}: operand ${String(v)} is not an expression or a number`);
  }
}

function binop(
  op: "add" | "sub" | "mul" | "div" | "max" | "min" | "lt" | "le" | "eq",
  a: Operand,
  b: Operand,
  name: string,
): Expr {
  checkOperand(name, a);
  checkOperand(name, b);
  if (typeof a === "number" && typeof b === "number") {
    throw new TypeError(`Cannot ${name} two numbers; make one an expression (nx.scalar)`);
  }
  const ea = typeof a === "number" ? undefined : a;
  const eb = typeof b === "number" ? undefined : b;
  const dtype = ea && eb ? promote(ea.dtype, eb.dtype) : (ea ?? eb)!.dtype;
  const shape = ea && eb ? broadcastShapes(ea.shape, eb.shape) : (ea ?? eb)!.shape;
  if (!shape) {
    const ra = ea!.shape, rb = eb!.shape;
    throw new TypeError(
      `Cannot ${name} ${ea!.dtype}${fmtShape(ra)} and ${eb!.dtype}${
        fmtShape(rb)
      }: shapes do not broadcast (${badAxis([ra, rb])}); ` +
        `reshape one so each axis is equal or 1`,
    );
  }
  checkWeak(name, [a, b], " and ", dtype);
  const x = broadcastTo(castTo(lift(a, dtype, shape), dtype), shape);
  const y = broadcastTo(castTo(lift(b, dtype, shape), dtype), shape);
  return mk(op, [x, y], null);
}

function castTo(x: Expr, d: DType): Expr {
  return x.dtype === d ? x : mk("cast", [x], { dtype: d });
}

/**
 * Elementwise `a + b` with broadcasting.
 *
 * @param a left operand
 * @param b right operand
 * @returns the sum, in the promoted dtype
 */
export function add<A extends Operand, B extends Operand>(
  a: A,
  b: B,
): Expr<Promote<DTypeOf<A, DTypeOf<B>>, DTypeOf<B, DTypeOf<A>>>> {
  return binop("add", a, b, "add") as never;
}

/**
 * Elementwise `a - b` with broadcasting.
 *
 * @param a left operand
 * @param b right operand
 * @returns the difference
 */
export function sub<A extends Operand, B extends Operand>(
  a: A,
  b: B,
): Expr<Promote<DTypeOf<A, DTypeOf<B>>, DTypeOf<B, DTypeOf<A>>>> {
  return binop("sub", a, b, "sub") as never;
}

/**
 * Elementwise `a · b` with broadcasting.
 *
 * @param a left operand
 * @param b right operand
 * @returns the product
 */
export function mul<A extends Operand, B extends Operand>(
  a: A,
  b: B,
): Expr<Promote<DTypeOf<A, DTypeOf<B>>, DTypeOf<B, DTypeOf<A>>>> {
  return binop("mul", a, b, "mul") as never;
}

/**
 * Elementwise `a / b` with broadcasting.
 *
 * @param a left operand
 * @param b right operand
 * @returns the quotient
 */
export function div<A extends Operand, B extends Operand>(
  a: A,
  b: B,
): Expr<Promote<DTypeOf<A, DTypeOf<B>>, DTypeOf<B, DTypeOf<A>>>> {
  return binop("div", a, b, "div") as never;
}

/**
 * Elementwise maximum with broadcasting.
 *
 * @param a left operand
 * @param b right operand
 * @returns `max(a, b)`
 */
export function maximum<A extends Operand, B extends Operand>(
  a: A,
  b: B,
): Expr<Promote<DTypeOf<A, DTypeOf<B>>, DTypeOf<B, DTypeOf<A>>>> {
  return binop("max", a, b, "maximum") as never;
}

/**
 * Elementwise minimum with broadcasting.
 *
 * @param a left operand
 * @param b right operand
 * @returns `min(a, b)`
 */
export function minimum<A extends Operand, B extends Operand>(
  a: A,
  b: B,
): Expr<Promote<DTypeOf<A, DTypeOf<B>>, DTypeOf<B, DTypeOf<A>>>> {
  return binop("min", a, b, "minimum") as never;
}

/**
 * Elementwise `a < b`.
 *
 * @param a left operand
 * @param b right operand
 * @returns a bool expression
 */
export function less(a: Operand, b: Operand): Expr<"bool"> {
  return binop("lt", a, b, "compare (<)") as Expr<"bool">;
}

/**
 * Elementwise `a <= b`.
 *
 * @param a left operand
 * @param b right operand
 * @returns a bool expression
 */
export function lessEqual(a: Operand, b: Operand): Expr<"bool"> {
  return binop("le", a, b, "compare (<=)") as Expr<"bool">;
}

/**
 * Elementwise `a > b`.
 *
 * @param a left operand
 * @param b right operand
 * @returns a bool expression
 */
export function greater(a: Operand, b: Operand): Expr<"bool"> {
  return binop("lt", b, a, "compare (>)") as Expr<"bool">;
}

/**
 * Elementwise `a >= b`.
 *
 * @param a left operand
 * @param b right operand
 * @returns a bool expression
 */
export function greaterEqual(a: Operand, b: Operand): Expr<"bool"> {
  return binop("le", b, a, "compare (>=)") as Expr<"bool">;
}

/**
 * Elementwise `a == b`.
 *
 * @param a left operand
 * @param b right operand
 * @returns a bool expression
 */
export function equal(a: Operand, b: Operand): Expr<"bool"> {
  return binop("eq", a, b, "compare (==)") as Expr<"bool">;
}

/**
 * Elementwise select `cond ? a : b`, broadcasting all three.
 *
 * @param cond a bool expression
 * @param a value where true
 * @param b value where false
 * @returns the selection
 */
export function where<A extends Operand, B extends Operand>(
  cond: Expr<"bool">,
  a: A,
  b: B,
): Expr<Promote<DTypeOf<A, DTypeOf<B>>, DTypeOf<B, DTypeOf<A>>>> {
  checkOperand("where", cond);
  checkOperand("where", a);
  checkOperand("where", b);
  if (cond.dtype !== "bool") {
    throw new TypeError(
      `Cannot where ${cond.dtype}${
        fmtShape(cond.shape)
      }: the condition must be bool (use nx.less etc.)`,
    );
  }
  const ea = typeof a === "number" ? undefined : a as Expr;
  const eb = typeof b === "number" ? undefined : b as Expr;
  const dtype = ea && eb ? promote(ea.dtype, eb.dtype) : (ea ?? eb)?.dtype ?? "f32";
  let shape: Shape | undefined = cond.shape;
  for (const e of [ea, eb]) if (e && shape) shape = broadcastShapes(shape, e.shape);
  if (!shape) {
    const es = [cond, ea, eb].filter((e): e is Expr => e !== undefined);
    throw new TypeError(
      `Cannot where ${es.map((e) => `${e.dtype}${fmtShape(e.shape)}`).join(", ")}: ` +
        `shapes do not broadcast (${badAxis(es.map((e) => e.shape))}); ` +
        `reshape one so each axis is equal or 1`,
    );
  }
  checkWeak("where", [cond, a, b], ", ", dtype);
  return mk("where", [
    broadcastTo(cond, shape),
    broadcastTo(castTo(lift(a, dtype, shape), dtype), shape),
    broadcastTo(castTo(lift(b, dtype, shape), dtype), shape),
  ], null) as never;
}

// ---------------------------------------------------------------------------
// Unary

function un<D extends DType>(
  op: "neg" | "recip" | "exp" | "log" | "sqrt" | "rsqrt" | "sin" | "cos" | "tanh" | "abs",
  x: Expr<D>,
): Expr<D> {
  checkOperand(op, x);
  return mk(op, [x], null) as Expr<D>;
}

/**
 * Elementwise negation.
 * @param x an expression
 * @returns `-x`
 */
export function neg<D extends DType>(x: Expr<D>): Expr<D> {
  return un("neg", x);
}
/**
 * Elementwise reciprocal.
 * @param x a float expression
 * @returns `1/x`
 */
export function recip<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return un("recip", x);
}
/**
 * Elementwise exponential.
 * @param x a float expression
 * @returns `e^x`
 */
export function exp<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return un("exp", x);
}
/**
 * Elementwise natural logarithm.
 * @param x a float expression
 * @returns `ln x`
 */
export function log<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return un("log", x);
}
/**
 * Elementwise square root.
 * @param x a float expression
 * @returns `√x`
 */
export function sqrt<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return un("sqrt", x);
}
/**
 * Elementwise reciprocal square root.
 * @param x a float expression
 * @returns `1/√x`
 */
export function rsqrt<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return un("rsqrt", x);
}
/**
 * Elementwise sine.
 * @param x a float expression
 * @returns `sin x`
 */
export function sin<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return un("sin", x);
}
/**
 * Elementwise cosine.
 * @param x a float expression
 * @returns `cos x`
 */
export function cos<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return un("cos", x);
}
/**
 * Elementwise hyperbolic tangent.
 * @param x a float expression
 * @returns `tanh x`
 */
export function tanh<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return un("tanh", x);
}
/**
 * Elementwise absolute value.
 * @param x an expression
 * @returns `|x|`
 */
export function abs<D extends DType>(x: Expr<D>): Expr<D> {
  return un("abs", x);
}

/**
 * Converts to another dtype as WGSL does: floats truncate toward zero and
 * saturate into integers (NaN gives 0), integers wrap into each other, and
 * bool is `x != 0`.
 *
 * @param x an expression
 * @param dtype the target dtype
 * @returns `x` as `dtype` (the same node when it already is)
 */
export function cast<T extends DType>(x: Expr, dtype: T): Expr<T> {
  checkOperand("cast", x);
  return castTo(x, dtype) as Expr<T>;
}

/**
 * Elementwise square.
 * @param x an expression
 * @returns `x·x`
 */
export function square<D extends DType>(x: Expr<D>): Expr<D> {
  return mk("mul", [x, x], null) as Expr<D>;
}

/**
 * ReLU, `max(x, 0)`.
 * @param x an expression
 * @returns the rectified values
 */
export function relu<D extends DType>(x: Expr<D>): Expr<D> {
  return maximum(x, 0) as Expr<D>;
}

/**
 * Logistic sigmoid `1/(1+e^{-x})`.
 * @param x a float expression
 * @returns the sigmoid
 */
export function sigmoid<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return recip(add(exp(neg(x)), 1) as Expr<D>);
}

/**
 * SiLU (swish), `x·σ(x)`.
 * @param x a float expression
 * @returns the SiLU
 */
export function silu<D extends FloatDType>(x: Expr<D>): Expr<D> {
  return mul(x, sigmoid(x)) as Expr<D>;
}

/**
 * GELU, tanh approximation as in GPT-2:
 * `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
 *
 * @param x a float expression
 * @returns the GELU
 */
export function gelu<D extends FloatDType>(x: Expr<D>): Expr<D> {
  const inner = mul(add(x, mul(mul(square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner as Expr<D>), 1)) as Expr<D>;
}

// ---------------------------------------------------------------------------
// Reductions

/** Options for reductions. */
export interface ReduceOptions {
  /** Keep reduced axes with size 1 (default false). */
  keepdims?: boolean;
}

function reduceOp<D extends DType>(
  op: "sum" | "rmax",
  name: string,
  x: Expr<D>,
  axes: number | readonly number[] | undefined,
  opts: ReduceOptions,
): Expr<D> {
  checkOperand(name, x);
  const list = axes === undefined
    ? x.shape.map((_, i) => i)
    : typeof axes === "number"
    ? [axes]
    : axes;
  const ax = normAxes(list, x.shape.length, `Cannot ${name} ${x.dtype}${fmtShape(x.shape)}`);
  if (ax.length === 0) return x;
  const r = mk(op, [x], { axes: ax });
  if (opts.keepdims) return r as Expr<D>;
  return mk("reshape", [r], { shape: x.shape.filter((_, i) => !ax.includes(i)) }) as Expr<D>;
}

/**
 * Sum over axes (all axes by default).
 *
 * @param x an expression
 * @param axes one axis or a list (negative counts from the end)
 * @param opts `keepdims`
 * @returns the sum
 */
export function sum<D extends DType>(
  x: Expr<D>,
  axes?: number | readonly number[],
  opts: ReduceOptions = {},
): Expr<D> {
  return reduceOp("sum", "sum", x, axes, opts);
}

/**
 * Maximum over axes (all axes by default).
 *
 * @param x an expression
 * @param axes one axis or a list
 * @param opts `keepdims`
 * @returns the maximum
 */
export function max<D extends DType>(
  x: Expr<D>,
  axes?: number | readonly number[],
  opts: ReduceOptions = {},
): Expr<D> {
  return reduceOp("rmax", "max", x, axes, opts);
}

/**
 * Mean over axes (all axes by default).
 *
 * @param x a float expression
 * @param axes one axis or a list
 * @param opts `keepdims`
 * @returns the mean
 */
export function mean<D extends FloatDType>(
  x: Expr<D>,
  axes?: number | readonly number[],
  opts: ReduceOptions = {},
): Expr<D> {
  checkOperand("mean", x);
  if (!isFloat(x.dtype)) {
    throw new TypeError(
      `Cannot mean ${x.dtype}${
        fmtShape(x.shape)
      }: needs a float operand; cast it first (nx.cast(x, "f32"))`,
    );
  }
  const s = sum(x, axes, opts);
  const n = numel(x.shape) / Math.max(1, numel(s.shape));
  return mul(s, 1 / n) as Expr<D>;
}

/**
 * Softmax along an axis, computed stably (`x - max(x)` first).
 *
 * @param x a float expression
 * @param axis the axis (default last)
 * @returns probabilities summing to 1 along `axis`
 */
export function softmax<D extends FloatDType>(x: Expr<D>, axis = -1): Expr<D> {
  const m = max(x, axis, { keepdims: true });
  const e = exp(sub(x, m) as Expr<D>);
  return div(e, sum(e, axis, { keepdims: true })) as Expr<D>;
}

/**
 * Log-softmax along an axis, computed stably.
 *
 * @param x a float expression
 * @param axis the axis (default last)
 * @returns `x - logsumexp(x)`
 */
export function logSoftmax<D extends FloatDType>(x: Expr<D>, axis = -1): Expr<D> {
  const m = max(x, axis, { keepdims: true });
  const z = sub(x, m) as Expr<D>;
  return sub(z, log(sum(exp(z), axis, { keepdims: true }))) as Expr<D>;
}

// ---------------------------------------------------------------------------
// Movement

/**
 * Reshape (same elements, row-major). One size may be -1 (inferred).
 *
 * @param x an expression
 * @param shape the new shape
 * @returns the reshaped expression
 */
export function reshape<D extends DType>(x: Expr<D>, shape: readonly number[]): Expr<D> {
  checkOperand("reshape", x);
  const s = [...shape];
  const free = s.filter((d) => d === -1).length;
  if (free > 1) {
    throw new TypeError(
      `Cannot reshape ${x.dtype}${fmtShape(x.shape)} to ${fmtShape(shape)}: at most one -1`,
    );
  }
  if (free === 1) {
    const known = s.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const n = numel(x.shape);
    if (known === 0 || n % known !== 0) {
      throw new TypeError(
        `Cannot reshape ${x.dtype}${fmtShape(x.shape)} to ${
          fmtShape(shape)
        }: ${n} elements do not divide into ${known}`,
      );
    }
    s[s.indexOf(-1)] = n / known;
  }
  if (shapeEq(s, x.shape)) return x;
  return mk("reshape", [x], { shape: s }) as Expr<D>;
}

/**
 * Permutes axes: output axis `i` is input axis `perm[i]`.
 *
 * @param x an expression
 * @param perm a permutation (negative axes allowed)
 * @returns the permuted expression
 */
export function permute<D extends DType>(x: Expr<D>, perm: readonly number[]): Expr<D> {
  checkOperand("permute", x);
  const what = `Cannot permute ${x.dtype}${fmtShape(x.shape)}`;
  if (perm.length !== x.shape.length) {
    throw new RangeError(
      `${what} by [${perm.join(",")}]: needs ${x.shape.length} axes, got ${perm.length}`,
    );
  }
  normAxes(perm, x.shape.length, what); // range and repeats, in the user's terms
  const p = perm.map((a) => normAxis(a, x.shape.length, what));
  if (p.every((v, i) => v === i) && p.length === x.shape.length) return x;
  return mk("permute", [x], { perm: p }) as Expr<D>;
}

/**
 * Swaps the last two axes (matrix transpose, batched).
 *
 * @param x an expression of rank >= 2
 * @returns `x` with its last two axes swapped
 */
export function transpose<D extends DType>(x: Expr<D>): Expr<D> {
  const r = x.shape.length;
  if (r < 2) {
    throw new RangeError(`Cannot transpose ${x.dtype}${fmtShape(x.shape)}: needs rank >= 2`);
  }
  const p = x.shape.map((_, i) => i);
  p[r - 1] = r - 2;
  p[r - 2] = r - 1;
  return permute(x, p);
}

/**
 * Slices one axis to `[start, end)`.
 *
 * @param x an expression
 * @param axis the axis
 * @param start first index kept
 * @param end one past the last index kept
 * @returns the slice
 */
export function slice<D extends DType>(
  x: Expr<D>,
  axis: number,
  start: number,
  end: number,
): Expr<D> {
  checkOperand("slice", x);
  const a = normAxis(axis, x.shape.length, `Cannot slice ${x.dtype}${fmtShape(x.shape)}`);
  const starts = x.shape.map((_, i) => (i === a ? start : 0));
  const ends = x.shape.map((d, i) => (i === a ? end : d));
  if (start === 0 && end === x.shape[a]) return x;
  return mk("slice", [x], { starts, ends }) as Expr<D>;
}

/**
 * Zero-pads each axis.
 *
 * @param x an expression
 * @param before padding before each axis
 * @param after padding after each axis
 * @returns the padded expression
 */
export function pad<D extends DType>(
  x: Expr<D>,
  before: readonly number[],
  after: readonly number[],
): Expr<D> {
  checkOperand("pad", x);
  return mk("pad", [x], { before, after }) as Expr<D>;
}

/**
 * Concatenates along an axis.
 *
 * @param xs expressions of the same dtype and rank
 * @param axis the axis
 * @returns the concatenation
 */
export function concat<D extends DType>(xs: readonly Expr<D>[], axis: number): Expr<D> {
  if (xs.length === 0) throw new TypeError("Cannot concat nothing: pass at least one expression");
  xs.forEach((x) => checkOperand("concat", x));
  const a = normAxis(
    axis,
    xs[0]!.shape.length,
    `Cannot concat ${xs.map((x) => `${x.dtype}${fmtShape(x.shape)}`).join(", ")}`,
  );
  if (xs.length === 1) return xs[0]!;
  return mk("concat", xs, { axis: a }) as Expr<D>;
}

// ---------------------------------------------------------------------------
// Contractions and indexing

/**
 * Matrix product with NumPy semantics for rank >= 2: `[..., m, k] @ [..., k, n]`,
 * batch dims broadcast. A rank-2 right operand is applied to every row of
 * the left one without materialising a broadcast copy.
 *
 * @param a left operand
 * @param b right operand
 * @returns the product `[..., m, n]`
 * @throws {TypeError} when inner dims differ, e.g.
 *   `Cannot matmul f32[4,128,256] by f32[512,64]: inner dims 256 and 512 differ`
 */
export function matmul<D extends DType>(a: Expr<D>, b: Expr<NoInfer<D>>): Expr<D> {
  // NoInfer: D comes from `a` alone, so f32 @ i32 is a type error, not D = "f32" | "i32".
  checkOperand("matmul", a);
  checkOperand("matmul", b);
  const sa = a.shape, sb = b.shape;
  const what = `Cannot matmul ${a.dtype}${fmtShape(sa)} by ${b.dtype}${fmtShape(sb)}`;
  if (sa.length < 2 || sb.length < 2) throw new TypeError(`${what}: both operands need rank >= 2`);
  const k = sa[sa.length - 1]!, k2 = sb[sb.length - 2]!;
  if (k !== k2) throw new TypeError(`${what}: inner dims ${k} and ${k2} differ`);
  if (a.dtype !== b.dtype) throw new TypeError(`${what}: dtypes differ; cast one`);
  if (sb.length === 2 && sa.length > 2) {
    const rows = numel(sa.slice(0, -1));
    const flat = mk("dot", [reshape(a, [rows, k]), b], null);
    return reshape(flat as Expr<D>, [...sa.slice(0, -1), sb[1]!]);
  }
  const ba = sa.slice(0, -2), bb = sb.slice(0, -2);
  const batch = broadcastShapes(ba, bb);
  if (!batch) {
    throw new TypeError(`${what}: batch dims ${fmtShape(ba)} and ${fmtShape(bb)} do not broadcast`);
  }
  const ea = broadcastTo(a, [...batch, ...sa.slice(-2)]);
  const eb = broadcastTo(b, [...batch, ...sb.slice(-2)]);
  return mk("dot", [ea, eb], null) as Expr<D>;
}

/**
 * Selects rows of a table by integer indices (embedding lookup). Indices out
 * of range read zeros on every backend (the interpreter checks and throws).
 *
 * @param table `[V, ...rest]`
 * @param indices integer indices of any shape `S`
 * @returns `[...S, ...rest]`
 */
export function gather<D extends DType>(table: Expr<D>, indices: Expr<"i32" | "u32">): Expr<D> {
  checkOperand("gather", table);
  checkOperand("gather", indices);
  return mk("gather", [table, indices], null) as Expr<D>;
}

// ---------------------------------------------------------------------------
// Composites

/** Options for normalisation builders. */
export interface NormOptions {
  /** ε added to the variance / mean square (default 1e-5). */
  eps?: number;
}

function normNode<D extends FloatDType>(
  x: Expr<D>,
  kind: NormKind,
  arg: { eps: number; sigma?: number; dim?: number },
): Expr<D> {
  checkOperand(`norm (${kind})`, x);
  if (!isFloat(x.dtype)) {
    throw new TypeError(
      `Cannot norm (${kind}) ${x.dtype}${fmtShape(x.shape)}: needs a float operand`,
    );
  }
  return mk("norm", [x], { kind, ...arg }) as Expr<D>;
}

/**
 * LayerNorm over the last axis without affine parameters:
 * `(x − μ)/√(var + ε)`, population variance.
 *
 * @param x a float expression
 * @param opts `eps`
 * @returns the normalised expression
 */
export function layerNorm<D extends FloatDType>(x: Expr<D>, opts: NormOptions = {}): Expr<D> {
  return normNode(x, "layer", { eps: opts.eps ?? 1e-5 });
}

/**
 * RMSNorm over the last axis without affine parameters: `x/√(mean(x²) + ε)`.
 *
 * @param x a float expression
 * @param opts `eps`
 * @returns the normalised expression
 */
export function rmsNorm<D extends FloatDType>(x: Expr<D>, opts: NormOptions = {}): Expr<D> {
  return normNode(x, "rms", { eps: opts.eps ?? 1e-5 });
}

/**
 * Compressed RMSNorm over the last axis (d−1 features standing for a
 * zero-mean d-vector): `x/√((Σx² + (Σx)²)/d + ε)`.
 *
 * @param x a float expression with d−1 features
 * @param opts `eps`
 * @returns the normalised expression
 */
export function crmsNorm<D extends FloatDType>(x: Expr<D>, opts: NormOptions = {}): Expr<D> {
  const dm1 = x.shape[x.shape.length - 1] ?? 0;
  return normNode(x, "crms", { eps: opts.eps ?? 1e-5, dim: dm1 + 1 });
}

/**
 * L2 normalisation over the last axis: `x/√(Σx² + ε)` (QK-norm of Henry et al.).
 *
 * @param x a float expression
 * @param opts `eps` (default 1e-12 here, since Σx² is not a mean)
 * @returns unit-norm rows
 */
export function l2Norm<D extends FloatDType>(x: Expr<D>, opts: NormOptions = {}): Expr<D> {
  return normNode(x, "l2", { eps: opts.eps ?? 1e-12 });
}

/**
 * FakeLN with a frozen σ̄: `(x − μ)/σ̄` (affine, so it folds into the next
 * linear layer).
 *
 * @param x a float expression
 * @param sigma the frozen standard deviation σ̄ > 0
 * @returns the centred, scaled expression
 */
export function fakeNorm<D extends FloatDType>(x: Expr<D>, sigma: number): Expr<D> {
  return normNode(x, "fake", { eps: 0, sigma });
}

/** Options for {@link attention}. */
export interface AttentionOptions {
  /** Mask future positions (query i sees keys j <= i + (Tk − Tq)). */
  causal?: boolean;
  /** Logit scale; default `1/√d_head`. */
  scale?: number;
}

/**
 * Scaled dot-product attention `softmax(q kᵀ·scale + mask) v` over
 * `[..., T, d]` operands, as one composite node (compiled to one fused kernel).
 *
 * @param q queries `[..., Tq, dk]`
 * @param k keys `[..., Tk, dk]`
 * @param v values `[..., Tk, dv]`
 * @param opts `causal`, `scale`
 * @returns `[..., Tq, dv]`
 */
export function attention<D extends FloatDType>(
  q: Expr<D>,
  k: Expr<NoInfer<D>>,
  v: Expr<NoInfer<D>>,
  opts: AttentionOptions = {},
): Expr<D> {
  const dk = q.shape[q.shape.length - 1] ?? 1;
  return mk("attention", [q, k, v], {
    causal: opts.causal ?? false,
    scale: opts.scale ?? 1 / Math.sqrt(dk),
  }) as Expr<D>;
}

/** Options for {@link residual}. */
export interface ResidualOptions {
  /** The sublayer's role, e.g. "attn" or "mlp". */
  role: string;
  /** 0-based block index. */
  layer: number;
}

/**
 * A residual sublayer `x + f(x)` kept as one node, so normalisation
 * placements can rewrite it. `f` is traced once on a hole.
 *
 * @param x the residual stream
 * @param f the sublayer body
 * @param opts role and layer
 * @returns the residual node
 */
export function residual<D extends FloatDType>(
  x: Expr<D>,
  f: (h: Expr<D>) => Expr<D>,
  opts: ResidualOptions,
): Expr<D> {
  const name = `${opts.role}.${opts.layer}`;
  const h = hole(name, x.shape, x.dtype);
  const body = f(h);
  return mk("residual", [x, body], { hole: name, role: opts.role, layer: opts.layer }) as Expr<D>;
}

/**
 * Instantiates a residual body: replaces its hole by `v`.
 *
 * @param body an expression containing the hole
 * @param holeNode the hole to replace
 * @param v the value
 * @returns the body with `v` in place of the hole
 */
export function fill<D extends DType>(body: Expr<D>, holeNode: Expr, v: Expr): Expr<D> {
  return substitute([body], new Map([[holeNode, v]]))[0] as Expr<D>;
}
