/**
 * Splits long reductions into two (or more) stages before planning.
 *
 * Why: a kernel reduces each output in one invocation's loop, and Mesa's
 * llvmpipe silently stops any shader loop after 65535 iterations (a
 * 65536-element sum came out as 65535). A long reduction is also slow on
 * one invocation. Reducing chunks of at most {@link REDUCE_CHUNK} elements
 * first, then the partial results, keeps every loop short and spreads the
 * work over many invocations. The rewrite is exact up to summation order.
 *
 * @module
 */

import { concat, full, reshape } from "../ir/builders.ts";
import { type Expr, isOp, mk, toposort, withSrc } from "../ir/expr.ts";
import { numel } from "../ir/shape.ts";

/** Longest reduction left in one stage (elements per output). */
export const REDUCE_CHUNK = 4096;

function splitOne(e: Expr, x: Expr, axes: readonly number[], op: "sum" | "rmax"): Expr {
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  // bring the reduced axes last and flatten them: [kept..., L]
  const perm = [...kept, ...axes];
  let y: Expr = perm.every((p, i) => p === i) ? x : mk("permute", [x], { perm });
  const keptShape = kept.map((i) => x.shape[i]!);
  const len = numel(axes.map((a) => x.shape[a]!));
  y = reshape(y, [...keptShape, len]);
  while (y.shape[y.shape.length - 1]! > REDUCE_CHUNK) {
    const n = y.shape[y.shape.length - 1]!;
    const chunks = Math.ceil(n / REDUCE_CHUNK);
    const padded = chunks * REDUCE_CHUNK;
    if (padded > n) {
      // pad with the reduction's identity: 0 for sums, the lowest value for max
      const lowest = y.dtype === "i32" ? -2147483648 : y.dtype === "u32" ? 0 : -Infinity;
      const fill = full([...keptShape, padded - n], op === "sum" ? 0 : lowest, y.dtype);
      y = concat([y, fill], -1);
    }
    y = reshape(y, [...keptShape, chunks, REDUCE_CHUNK]);
    y = mk(op, [y], { axes: [keptShape.length + 1] });
    y = reshape(y, [...keptShape, chunks]);
  }
  y = mk(op, [y], { axes: [keptShape.length] });
  // back to the original keepdims shape (reduced axes of size 1)
  return reshape(y, e.shape);
}

/**
 * Rewrites every `sum`/`rmax` whose reduction is longer than
 * {@link REDUCE_CHUNK} elements into chunked stages, in all roots at once
 * (so nodes shared between outputs and updates stay shared).
 *
 * @param roots output and update expressions
 * @returns the rewritten roots, in order (the same nodes when nothing is long)
 */
export function splitLongReductions(roots: readonly Expr[]): Expr[] {
  const memo = new Map<Expr, Expr>();
  for (const e of toposort(roots)) {
    const src = e.src.map((s) => memo.get(s)!);
    let out = e.src.length ? withSrc(e, src) : e;
    if (isOp(out, "sum") || isOp(out, "rmax")) {
      const x = out.src[0]!;
      const len = numel(out.arg.axes.map((a) => x.shape[a]!));
      if (len > REDUCE_CHUNK) {
        out = splitOne(out, x, out.arg.axes, out.op === "sum" ? "sum" : "rmax");
      }
    }
    memo.set(e, out);
  }
  return roots.map((r) => memo.get(r)!);
}
