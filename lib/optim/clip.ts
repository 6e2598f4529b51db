/**
 * Gradient norms and global-norm clipping, as graph fragments.
 *
 * @module
 */

import { add, cast, div, minimum, mul, scalar, sqrt, sum } from "../ir/builders.ts";
import type { Expr } from "../ir/expr.ts";

/**
 * The sum of squares of every element of some tensors, in f32.
 *
 * @param xs float expressions
 * @returns an f32 scalar (0 for an empty list)
 */
export function sumOfSquares(xs: readonly Expr[]): Expr<"f32"> {
  let acc: Expr<"f32"> | undefined;
  for (const x of xs) {
    // Square in f32 so f16 gradients do not overflow.
    const x32 = cast(x, "f32");
    const s = sum(mul(x32, x32));
    acc = acc === undefined ? s : add(acc, s);
  }
  return acc ?? scalar(0);
}

/**
 * The global L2 norm of a set of tensors: `√Σ‖x‖²`.
 *
 * @param xs float expressions
 * @returns an f32 scalar
 */
export function globalNorm(xs: readonly Expr[]): Expr<"f32"> {
  return sqrt(sumOfSquares(xs));
}

/** Gradients after clipping, with the norm measured before. */
export interface Clipped {
  /** The clipped gradients, by name. */
  readonly grads: Record<string, Expr>;
  /** The global norm before clipping (an f32 scalar). */
  readonly norm: Expr<"f32">;
  /** The factor applied, `min(1, maxNorm/(norm + 1e-6))`. */
  readonly scale: Expr<"f32">;
}

/**
 * Scales gradients so their global norm is at most `maxNorm` (PyTorch's
 * `clip_grad_norm_`: factor `min(1, maxNorm/(norm + 1e-6))`).
 *
 * @param grads gradients by name
 * @param maxNorm the largest allowed global norm (> 0)
 * @param norm a precomputed global norm of `grads` (computed when omitted)
 * @returns the clipped gradients, the norm and the factor
 * @throws {RangeError} when `maxNorm` is not positive
 */
export function clipByGlobalNorm(
  grads: Record<string, Expr>,
  maxNorm: number,
  norm?: Expr<"f32">,
): Clipped {
  if (!(maxNorm > 0)) {
    throw new RangeError(`Cannot clip gradients to norm ${maxNorm}: maxNorm must be > 0`);
  }
  const n = norm ?? globalNorm(Object.values(grads));
  const scale = minimum(div(scalar(maxNorm), add(n, 1e-6)), 1);
  const out: Record<string, Expr> = {};
  for (const [k, g] of Object.entries(grads)) {
    out[k] = cast(mul(g, scale), g.dtype);
  }
  return { grads: out, norm: n, scale };
}
