/**
 * Simplifying constructors used by the backward pass.
 *
 * Each helper builds the same value as the corresponding primitive but
 * folds what reverse mode produces in bulk: constants (zeros, ones and
 * broadcast constants), `x·1`, `x+0`, `−(−x)`, reshape/permute/expand
 * chains, `slice(pad(x))` and `sum(expand(x))`. Constants are recognised
 * through movement ops, so a broadcast `1` seeded by `mean` stays a
 * constant all the way down. Keeping backward graphs small this way lets
 * them fuse and compile like forward ones.
 *
 * @module
 */

import { broadcastTo, full } from "../ir/builders.ts";
import type { DType } from "../ir/dtype.ts";
import { type Expr, isOp, mk } from "../ir/expr.ts";
import { broadcastShapes, fmtShape, numel, type Shape, shapeEq } from "../ir/shape.ts";

/**
 * The value of an expression that is one constant everywhere: a `const`
 * leaf, possibly seen through reshape/expand/permute/slice or a float cast.
 *
 * @param e an expression
 * @returns the constant, or undefined when `e` is not known to be constant
 */
export function constValue(e: Expr): number | undefined {
  let x = e;
  for (;;) {
    if (isOp(x, "const")) return x.arg.value;
    if (
      x.op === "reshape" || x.op === "expand" || x.op === "permute" || x.op === "slice" ||
      (isOp(x, "cast") && x.dtype === x.src[0]!.dtype)
    ) {
      x = x.src[0]!;
      continue;
    }
    return undefined;
  }
}

/**
 * Whether an expression is known to be zero everywhere.
 *
 * @param e an expression
 * @returns true for (views of) a constant 0
 */
export function isZero(e: Expr | undefined): boolean {
  return e !== undefined && constValue(e) === 0;
}

/**
 * A constant shaped and typed like another expression.
 *
 * @param like the expression whose shape and dtype to copy
 * @param value the fill value
 * @returns the constant leaf
 */
export function constLike(like: { shape: Shape; dtype: DType }, value: number): Expr {
  return full(like.shape, value, like.dtype);
}

function resultShape(a: Expr, b: Expr, what: string): Shape {
  const s = broadcastShapes(a.shape, b.shape);
  if (!s) {
    throw new TypeError(
      `Cannot ${what} ${a.dtype}${fmtShape(a.shape)} and ${b.dtype}${
        fmtShape(b.shape)
      }: shapes do not broadcast`,
    );
  }
  return s;
}

function lift(v: Expr | number, like: Expr): Expr {
  return typeof v === "number" ? constLike(like, v) : v;
}

function binary(op: "add" | "sub" | "mul" | "div", a: Expr, b: Expr): Expr {
  const s = resultShape(a, b, op);
  return mk(op, [broadcastTo(a, s), broadcastTo(b, s)], null);
}

/**
 * `a + b` with zero and constant folding (broadcasting like the builders).
 *
 * @param a left operand
 * @param b right operand (a number takes `a`'s dtype)
 * @returns the simplified sum
 */
export function sAdd(a: Expr, b: Expr | number): Expr {
  const e = lift(b, a);
  const s = resultShape(a, e, "add");
  const ca = constValue(a), cb = constValue(e);
  if (ca !== undefined && cb !== undefined) return full(s, ca + cb, a.dtype);
  if (ca === 0) return sExpand(e, s);
  if (cb === 0) return sExpand(a, s);
  if (a === e) return sMul(a, 2);
  return binary("add", a, e);
}

/**
 * `a − b` with zero and constant folding.
 *
 * @param a left operand
 * @param b right operand
 * @returns the simplified difference
 */
export function sSub(a: Expr, b: Expr | number): Expr {
  const e = lift(b, a);
  const s = resultShape(a, e, "sub");
  const ca = constValue(a), cb = constValue(e);
  if (ca !== undefined && cb !== undefined) return full(s, ca - cb, a.dtype);
  if (cb === 0) return sExpand(a, s);
  if (ca === 0) return sExpand(sNeg(e), s);
  return binary("sub", a, e);
}

/**
 * `a · b` folding multiplication by 0, 1 and −1 and constant products.
 *
 * @param a left operand
 * @param b right operand (a number takes `a`'s dtype)
 * @returns the simplified product
 */
export function sMul(a: Expr, b: Expr | number): Expr {
  const e = lift(b, a);
  const s = resultShape(a, e, "mul");
  const ca = constValue(a), cb = constValue(e);
  if (ca !== undefined && cb !== undefined) return full(s, ca * cb, a.dtype);
  if (ca === 0 || cb === 0) return full(s, 0, a.dtype);
  if (ca === 1) return sExpand(e, s);
  if (cb === 1) return sExpand(a, s);
  if (ca === -1) return sExpand(sNeg(e), s);
  if (cb === -1) return sExpand(sNeg(a), s);
  // Fold c1·(c2·x) into (c1·c2)·x so scale factors from chains merge.
  const [k, x] = ca !== undefined ? [ca, e] : cb !== undefined ? [cb, a] : [undefined, undefined];
  if (k !== undefined && x !== undefined && isOp(x, "mul")) {
    const [p, q] = x.src as [Expr, Expr];
    const cp = constValue(p), cq = constValue(q);
    if (cq !== undefined) return sExpand(sMul(p, cq * k), s);
    if (cp !== undefined) return sExpand(sMul(q, cp * k), s);
  }
  return binary("mul", a, e);
}

/**
 * `a / b` folding `0/b`, `a/1` and constant quotients.
 *
 * @param a numerator
 * @param b denominator
 * @returns the simplified quotient
 */
export function sDiv(a: Expr, b: Expr | number): Expr {
  const e = lift(b, a);
  const s = resultShape(a, e, "div");
  const ca = constValue(a), cb = constValue(e);
  if (ca !== undefined && cb !== undefined) return full(s, ca / cb, a.dtype);
  if (ca === 0) return full(s, 0, a.dtype);
  if (cb !== undefined) return sMul(sExpand(a, s), 1 / cb);
  return binary("div", a, e);
}

/**
 * `−x`, folding constants and double negation.
 *
 * @param x an expression
 * @returns the simplified negation
 */
export function sNeg(x: Expr): Expr {
  const c = constValue(x);
  if (c !== undefined) return constLike(x, c === 0 ? 0 : -c);
  if (isOp(x, "neg")) return x.src[0]!;
  return mk("neg", [x], null);
}

/**
 * `cond ? a : b`, folding equal branches and an all-zero pair.
 *
 * @param cond a bool expression of the same shape
 * @param a value where true
 * @param b value where false
 * @returns the simplified select
 */
export function sWhere(cond: Expr, a: Expr, b: Expr): Expr {
  if (a === b) return a;
  const ca = constValue(a), cb = constValue(b);
  if (ca !== undefined && ca === cb && !Number.isNaN(ca)) return a;
  return mk("where", [cond, a, b], null);
}

/**
 * Converts to a dtype (no node when it already has it).
 *
 * @param x an expression
 * @param dtype the target dtype
 * @returns `x` as `dtype`
 */
export function sCast(x: Expr, dtype: DType): Expr {
  if (x.dtype === dtype) return x;
  const c = constValue(x);
  if (c !== undefined) return full(x.shape, c, dtype);
  return mk("cast", [x], { dtype });
}

/**
 * Reshape, collapsing reshape chains and folding constants.
 *
 * @param x an expression
 * @param shape the new shape (same element count)
 * @returns the reshaped expression
 */
export function sReshape(x: Expr, shape: Shape): Expr {
  if (shapeEq(x.shape, shape)) return x;
  const c = constValue(x);
  if (c !== undefined && numel(x.shape) === numel(shape)) return full(shape, c, x.dtype);
  if (isOp(x, "reshape")) return sReshape(x.src[0]!, shape);
  return mk("reshape", [x], { shape: [...shape] });
}

/**
 * Broadcast of size-1 axes (same rank), collapsing chains and constants.
 *
 * @param x an expression
 * @param shape the target shape
 * @returns the expanded expression
 */
export function sExpand(x: Expr, shape: Shape): Expr {
  if (shapeEq(x.shape, shape)) return x;
  const c = constValue(x);
  if (c !== undefined) return full(shape, c, x.dtype);
  if (x.shape.length !== shape.length) return broadcastTo(x, shape);
  if (isOp(x, "expand")) return sExpand(x.src[0]!, shape);
  return mk("expand", [x], { shape: [...shape] });
}

/**
 * Axis permutation, composing permutation chains and folding constants.
 *
 * @param x an expression
 * @param perm output axis `i` is input axis `perm[i]`
 * @returns the permuted expression
 */
export function sPermute(x: Expr, perm: readonly number[]): Expr {
  if (perm.every((p, i) => p === i)) return x;
  const shape = perm.map((p) => x.shape[p]!);
  const c = constValue(x);
  if (c !== undefined) return full(shape, c, x.dtype);
  if (isOp(x, "permute")) return sPermute(x.src[0]!, perm.map((p) => x.arg.perm[p]!));
  return mk("permute", [x], { perm: [...perm] });
}

/**
 * Sum over axes keeping them with size 1, folding constants and
 * `sum(expand(y))` over broadcast axes into a scaled broadcast.
 *
 * @param x an expression
 * @param axes distinct axes in `[0, rank)`
 * @returns the reduced expression
 */
export function sSum(x: Expr, axes: readonly number[]): Expr {
  if (axes.length === 0) return x;
  const ax = [...axes].sort((a, b) => a - b);
  const shape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const n = ax.reduce((acc, a) => acc * x.shape[a]!, 1);
  if (ax.every((a) => x.shape[a] === 1)) return sReshape(x, shape);
  const c = constValue(x);
  if (c !== undefined) return full(shape, c * n, x.dtype);
  if (isOp(x, "expand")) {
    const y = x.src[0]!;
    if (ax.every((a) => y.shape[a] === 1)) return sMul(sExpand(y, shape), n);
  }
  return mk("sum", [x], { axes: ax });
}

/**
 * Zero padding, folding constant zeros and no-op pads.
 *
 * @param x an expression
 * @param before padding before each axis
 * @param after padding after each axis
 * @returns the padded expression
 */
export function sPad(x: Expr, before: readonly number[], after: readonly number[]): Expr {
  const shape = x.shape.map((d, i) => d + before[i]! + after[i]!);
  if (before.every((v) => v === 0) && after.every((v) => v === 0)) return x;
  if (isZero(x)) return full(shape, 0, x.dtype);
  return mk("pad", [x], { before: [...before], after: [...after] });
}

/**
 * A sub-range per axis, folding full ranges, constants, and slices that
 * exactly undo a pad or pick one operand of a concat.
 *
 * @param x an expression
 * @param starts first index per axis
 * @param ends one past the last index per axis
 * @returns the sliced expression
 */
export function sSlice(x: Expr, starts: readonly number[], ends: readonly number[]): Expr {
  if (starts.every((s, i) => s === 0 && ends[i] === x.shape[i])) return x;
  const shape = starts.map((s, i) => ends[i]! - s);
  const c = constValue(x);
  if (c !== undefined) return full(shape, c, x.dtype);
  if (isOp(x, "pad")) {
    const y = x.src[0]!;
    const b = x.arg.before;
    if (starts.every((s, i) => s === b[i] && ends[i] === b[i]! + y.shape[i]!)) return y;
    // A slice entirely inside the padding reads zeros.
    const outside = starts.some((s, i) => ends[i]! <= b[i]! || s >= b[i]! + y.shape[i]!);
    if (outside) return full(shape, 0, x.dtype);
  }
  if (isOp(x, "concat")) {
    const ax = x.arg.axis;
    const others = starts.every((s, i) => i === ax || (s === 0 && ends[i] === x.shape[i]));
    if (others) {
      let off = 0;
      for (const part of x.src) {
        const len = part.shape[ax]!;
        if (starts[ax]! >= off && ends[ax]! <= off + len) {
          return sSlice(
            part,
            starts.map((s, i) => (i === ax ? s - off : s)),
            ends.map((e, i) => (i === ax ? e - off : e)),
          );
        }
        off += len;
      }
    }
  }
  return mk("slice", [x], { starts: [...starts], ends: [...ends] });
}

/**
 * Batched matmul of equal-batch operands, folding a zero operand.
 *
 * @param a `[..., m, k]`
 * @param b `[..., k, n]`
 * @returns `[..., m, n]`
 */
export function sDot(a: Expr, b: Expr): Expr {
  if (isZero(a) || isZero(b)) {
    return full([...a.shape.slice(0, -1), b.shape[b.shape.length - 1]!], 0, a.dtype);
  }
  return mk("dot", [a, b], null);
}

/**
 * Adds a list of same-shaped terms once, dropping zeros.
 *
 * @param terms expressions of one shape and dtype
 * @returns their sum, or undefined when every term is zero (or none)
 */
export function sAddAll(terms: readonly Expr[]): Expr | undefined {
  let acc: Expr | undefined;
  for (const t of terms) {
    if (isZero(t)) continue;
    acc = acc === undefined ? t : sAdd(acc, t);
  }
  return acc;
}
