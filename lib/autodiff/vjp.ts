/**
 * Vector–Jacobian products of every primitive op, plus closed-form
 * backward rules for the `norm` composite.
 *
 * The table {@link VJP} is typed `{ [K in PrimitiveOp]: VjpRule<K> }`, so a
 * new primitive without a rule does not compile. A rule receives the node,
 * its output cotangent and which operands need one, and returns one
 * cotangent per operand (`undefined` for none/zero). Rules build with the
 * simplifying constructors of `simplify.ts`, so backward graphs carry no
 * `·1`, `+0` or folded-away constants.
 *
 * Choices at non-differentiable points (documented, tested away from them):
 * - `abs'(0) = 0`;
 * - `max`/`min` with `a == b` split the cotangent evenly between operands;
 * - `rmax` splits the cotangent evenly among all tied maxima of a slice;
 * - compares, casts to integers and integer operands get no cotangent.
 *
 * @module
 */

import { full, iota } from "../ir/builders.ts";
import { isFloat } from "../ir/dtype.ts";
import { type CompositeOp, type Expr, type ExprOf, mk, type Op, type OpArgs } from "../ir/expr.ts";
import { numel } from "../ir/shape.ts";
import {
  constLike,
  sCast,
  sDiv,
  sDot,
  sExpand,
  sMul,
  sNeg,
  sPad,
  sPermute,
  sReshape,
  sSlice,
  sSub,
  sSum,
  sWhere,
} from "./simplify.ts";

/** Ops that have a VJP rule of their own (everything but composites). */
export type PrimitiveOp = Exclude<Op, CompositeOp>;

/**
 * A reverse-mode rule: operand cotangents from the output cotangent.
 *
 * @param e the node being differentiated
 * @param ct the cotangent of `e` (same shape and dtype)
 * @param need `need[i]` is true when operand `i` needs a cotangent
 * @returns one cotangent per operand (`undefined` where none is needed or it is zero)
 */
export type VjpRule<K extends PrimitiveOp> = (
  e: ExprOf<K>,
  ct: Expr,
  need: readonly boolean[],
) => readonly (Expr | undefined)[];

const none = (): readonly (Expr | undefined)[] => [];

// Swaps the last two axes.
function mT(x: Expr): Expr {
  const r = x.shape.length;
  const p = x.shape.map((_, i) => i);
  p[r - 1] = r - 2;
  p[r - 2] = r - 1;
  return sPermute(x, p);
}

function lt(a: Expr, b: Expr): Expr {
  return mk("lt", [a, b], null);
}

function eq(a: Expr, b: Expr): Expr {
  return mk("eq", [a, b], null);
}

/** An operand's cotangent for max/min: all of it where it wins, half at a tie. */
function pick(ct: Expr, win: Expr, tie: Expr): Expr {
  const zero = constLike(ct, 0);
  return sWhere(win, ct, sWhere(tie, sMul(ct, 0.5), zero));
}

/**
 * The VJP of every primitive op. Leaves have no operands, so their rules
 * return nothing; the gradient of a leaf is the cotangent reaching it.
 */
export const VJP: { readonly [K in PrimitiveOp]: VjpRule<K> } = {
  input: none,
  param: none,
  const: none,
  iota: none,
  hole: none,
  neg: (_e, ct) => [sNeg(ct)],
  recip: (e, ct) => [sNeg(sMul(ct, sMul(e, e)))],
  exp: (e, ct) => [sMul(ct, e)],
  log: (e, ct) => [sDiv(ct, e.src[0]!)],
  sqrt: (e, ct) => [sDiv(sMul(ct, 0.5), e)],
  // d/dx x^(-1/2) = -y³/2
  rsqrt: (e, ct) => [sMul(sMul(ct, -0.5), sMul(e, sMul(e, e)))],
  sin: (e, ct) => [sMul(ct, mk("cos", [e.src[0]!], null))],
  cos: (e, ct) => [sNeg(sMul(ct, mk("sin", [e.src[0]!], null)))],
  tanh: (e, ct) => [sMul(ct, sSub(constLike(e, 1), sMul(e, e)))],
  abs: (e, ct) => {
    const x = e.src[0]!;
    const zero = constLike(x, 0);
    return [sWhere(lt(x, zero), sNeg(ct), sWhere(lt(zero, x), ct, constLike(ct, 0)))];
  },
  cast: (e, ct) => {
    const x = e.src[0]!;
    return [isFloat(x.dtype) && isFloat(e.dtype) ? sCast(ct, x.dtype) : undefined];
  },
  add: (_e, ct) => [ct, ct],
  sub: (_e, ct, need) => [ct, need[1] ? sNeg(ct) : undefined],
  mul: (e, ct, need) => {
    const [a, b] = e.src as [Expr, Expr];
    return [need[0] ? sMul(ct, b) : undefined, need[1] ? sMul(ct, a) : undefined];
  },
  div: (e, ct, need) => {
    const b = e.src[1]!;
    const ca = sDiv(ct, b);
    return [need[0] ? ca : undefined, need[1] ? sNeg(sMul(ca, e)) : undefined];
  },
  max: (e, ct, need) => {
    const [a, b] = e.src as [Expr, Expr];
    const tie = eq(a, b);
    return [
      need[0] ? pick(ct, lt(b, a), tie) : undefined,
      need[1] ? pick(ct, lt(a, b), tie) : undefined,
    ];
  },
  min: (e, ct, need) => {
    const [a, b] = e.src as [Expr, Expr];
    const tie = eq(a, b);
    return [
      need[0] ? pick(ct, lt(a, b), tie) : undefined,
      need[1] ? pick(ct, lt(b, a), tie) : undefined,
    ];
  },
  lt: none,
  le: none,
  eq: none,
  where: (e, ct, need) => {
    const c = e.src[0]!;
    const zero = constLike(ct, 0);
    return [
      undefined,
      need[1] ? sWhere(c, ct, zero) : undefined,
      need[2] ? sWhere(c, zero, ct) : undefined,
    ];
  },
  sum: (e, ct) => [sExpand(ct, e.src[0]!.shape)],
  rmax: (e, ct) => {
    const x = e.src[0]!;
    const hit = eq(x, sExpand(e, x.shape));
    // Ties share the cotangent evenly: divide by the number of maxima.
    const count = sSum(sCast(hit, x.dtype), e.arg.axes);
    const share = sDiv(ct, count);
    return [sWhere(hit, sExpand(share, x.shape), constLike(x, 0))];
  },
  reshape: (e, ct) => [sReshape(ct, e.src[0]!.shape)],
  permute: (e, ct) => {
    const inv = new Array<number>(e.arg.perm.length);
    e.arg.perm.forEach((p, i) => (inv[p] = i));
    return [sPermute(ct, inv)];
  },
  expand: (e, ct) => {
    const x = e.src[0]!;
    const axes = x.shape.flatMap((d, i) => (d === 1 && e.shape[i] !== 1 ? [i] : []));
    return [sSum(ct, axes)];
  },
  slice: (e, ct) => {
    const x = e.src[0]!;
    return [sPad(ct, e.arg.starts, x.shape.map((d, i) => d - e.arg.ends[i]!))];
  },
  pad: (e, ct) => {
    const x = e.src[0]!;
    const b = e.arg.before;
    return [sSlice(ct, b, x.shape.map((d, i) => b[i]! + d))];
  },
  concat: (e, ct, need) => {
    const ax = e.arg.axis;
    let off = 0;
    return e.src.map((s, i) => {
      const start = off;
      off += s.shape[ax]!;
      if (!need[i]) return undefined;
      return sSlice(
        ct,
        e.shape.map((_, j) => (j === ax ? start : 0)),
        e.shape.map((d, j) => (j === ax ? start + s.shape[ax]! : d)),
      );
    });
  },
  dot: (e, ct, need) => {
    const [a, b] = e.src as [Expr, Expr];
    return [need[0] ? sDot(ct, mT(b)) : undefined, need[1] ? sDot(mT(a), ct) : undefined];
  },
  gather: (e, ct, need) => {
    if (!need[0]) return [undefined, undefined];
    const [table, idx] = e.src as [Expr, Expr];
    // Scatter-add as a one-hot matmul: onehot[v, n] = (idx[n] == v), then
    // dtable = onehotᵀ-shaped [V, N] · ct[N, W]. Out-of-range indices match
    // no row (matching the GPU's zero reads).
    const v = table.shape[0]!;
    const n = numel(idx.shape);
    const w = numel(table.shape.slice(1));
    const rows = iota([v, n], 0, idx.dtype);
    const ids = sExpand(sReshape(idx, [1, n]), [v, n]);
    const onehot = sCast(eq(rows, ids), table.dtype);
    const d = sDot(onehot, sReshape(ct, [n, w]));
    return [sReshape(d, table.shape), undefined];
  },
};

/**
 * A closed-form backward rule for a composite node, given its decomposed
 * value (so forward intermediates are shared, not recomputed).
 *
 * @param x the composite's (decomposed) operand
 * @param y the composite's decomposed value
 * @param arg the composite's argument
 * @param ct the cotangent of `y`
 * @returns the cotangent of `x`
 */
export type FusedVjpRule<K extends CompositeOp> = (
  x: Expr,
  y: Expr,
  arg: OpArgs[K],
  ct: Expr,
) => Expr;

function meanLastKeep(x: Expr): Expr {
  const r = x.shape.length;
  return sMul(sSum(x, [r - 1]), 1 / x.shape[r - 1]!);
}

function sumLastKeep(x: Expr): Expr {
  return sSum(x, [x.shape.length - 1]);
}

function bc(s: Expr, like: Expr): Expr {
  return sExpand(s, like.shape);
}

// The per-row scale r of a norm, rebuilt with the same primitives the
// decomposition uses so interning shares it with the forward pass.
function rowScale(x: Expr, arg: OpArgs["norm"]): Expr {
  const d = x.shape[x.shape.length - 1]!;
  const sq = (t: Expr) => mk("mul", [t, t], null);
  const rs = (t: Expr) => mk("rsqrt", [t], null);
  const plusEps = (t: Expr) => mk("add", [t, full(t.shape, arg.eps, t.dtype)], null);
  const mean = (t: Expr) =>
    mk("mul", [
      mk("sum", [t], { axes: [t.shape.length - 1] }),
      full(
        [...t.shape.slice(0, -1), 1],
        1 / d,
        t.dtype,
      ),
    ], null);
  switch (arg.kind) {
    case "layer": {
      const xc = mk("sub", [x, bc(mean(x), x)], null);
      return rs(plusEps(mean(sq(xc))));
    }
    case "rms":
      return rs(plusEps(mean(sq(x))));
    case "l2":
      return rs(plusEps(mk("sum", [sq(x)], { axes: [x.shape.length - 1] })));
    case "crms": {
      const s2 = mk("sum", [sq(x)], { axes: [x.shape.length - 1] });
      const s1 = mk("sum", [x], { axes: [x.shape.length - 1] });
      const dim = arg.dim!;
      const v = mk("mul", [mk("add", [s2, sq(s1)], null), full(s2.shape, 1 / dim, x.dtype)], null);
      return rs(plusEps(v));
    }
    case "fake":
      return full([...x.shape.slice(0, -1), 1], 1 / arg.sigma!, x.dtype);
  }
}

/**
 * Closed-form backward rules for composites, used in place of
 * differentiating their decomposition. Each is checked against the
 * decomposed gradient in tests. With `g` the cotangent, `y` the output and
 * `r` the row scale:
 * - layer: `r·(g − mean(g) − y·mean(g·y))`
 * - rms:   `r·(g − y·mean(g·y))`
 * - l2:    `r·(g − y·Σ(g·y))`
 * - crms:  `r·(g − (y + r·Σx)·Σ(g·y)/d)` with `d` the uncompressed width
 * - fake:  `(g − mean(g))/σ̄`
 */
export const FUSED_VJP: { readonly norm: FusedVjpRule<"norm"> } = {
  norm: (x, y, arg, ct) => {
    const r = bc(rowScale(x, arg), x);
    const g = ct;
    switch (arg.kind) {
      case "layer": {
        const t = sSub(sSub(g, bc(meanLastKeep(g), g)), sMul(y, bc(meanLastKeep(sMul(g, y)), y)));
        return sMul(r, t);
      }
      case "rms":
        return sMul(r, sSub(g, sMul(y, bc(meanLastKeep(sMul(g, y)), y))));
      case "l2":
        return sMul(r, sSub(g, sMul(y, bc(sumLastKeep(sMul(g, y)), y))));
      case "crms": {
        const s1 = bc(sumLastKeep(x), x);
        const gy = bc(sMul(sumLastKeep(sMul(g, y)), 1 / arg.dim!), y);
        return sMul(r, sSub(g, sMul(mk("add", [y, sMul(r, s1)], null), gy)));
      }
      case "fake":
        return sMul(sSub(g, bc(meanLastKeep(g), g)), 1 / arg.sigma!);
    }
  },
};
