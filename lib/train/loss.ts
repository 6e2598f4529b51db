/**
 * Losses for training: softmax cross-entropy over integer targets.
 *
 * @module
 */

import { cast, equal, iota, logSoftmax, mean, mul, neg, reshape, sum } from "../ir/builders.ts";
import { isInt } from "../ir/dtype.ts";
import type { Expr } from "../ir/expr.ts";
import { fmtShape, shapeEq } from "../ir/shape.ts";

/**
 * Mean softmax cross-entropy `−mean(log softmax(logits)[target])` over
 * every position. The target's log-probability is picked with a one-hot
 * mask (`iota == target`), which fuses and differentiates without a scatter.
 *
 * @param logits `[..., V]` float logits
 * @param targets `[...]` integer class ids in `[0, V)` (others contribute 0)
 * @returns an f32/f16 scalar (shape `[]`)
 * @throws {TypeError} when shapes or dtypes do not fit
 *
 * @example
 * ```ts
 * import * as nx from "../../mod.ts";
 * import { crossEntropyLoss } from "./loss.ts";
 * const logits = nx.input("logits", [8, 5]);
 * const y = nx.input("y", [8], "i32");
 * const loss = crossEntropyLoss(logits, y); // f32[]
 * ```
 */
export function crossEntropyLoss(logits: Expr, targets: Expr): Expr {
  const r = logits.shape.length;
  const what = `Cannot take the cross-entropy of ${logits.dtype}${fmtShape(logits.shape)} ` +
    `against ${targets.dtype}${fmtShape(targets.shape)}`;
  if (r < 1) throw new TypeError(`${what}: logits need a class axis`);
  if (!isInt(targets.dtype)) throw new TypeError(`${what}: targets must be i32 or u32`);
  if (!shapeEq(targets.shape, logits.shape.slice(0, -1))) {
    throw new TypeError(`${what}: targets must have the logits' shape without the last axis`);
  }
  if (logits.dtype !== "f32" && logits.dtype !== "f16") {
    throw new TypeError(`${what}: logits must be float`);
  }
  const lp = logSoftmax(logits as Expr<"f32">, -1);
  const ids = iota(logits.shape, r - 1, targets.dtype);
  const hit = cast(equal(ids, reshape(targets, [...targets.shape, 1])), logits.dtype);
  return neg(mean(sum(mul(lp, hit), -1)));
}
