/**
 * Numerical gradient checking on the float64 interpreter.
 *
 * Perturbations are applied inside the graph (`leaf + s·t` with `s` a
 * float64 constant), not by re-binding inputs, because bound f32 inputs
 * are rounded to f32: a step of 1e-5 would lose about two digits.
 *
 * - {@link checkVjp}: the inner-product identity `⟨vjp(c), t⟩ = ⟨c, jvp(t)⟩`,
 *   with `jvp(t)` by central differences along a random direction `t`
 *   (3 evaluations, whatever the sizes).
 * - {@link numericGradient}: the full gradient of a scalar by central
 *   differences, one element at a time (2 evaluations per element).
 *
 * @module
 */

import { type Bindings, interpret } from "../interpret.ts";
import type { NDArray } from "../ir/array.ts";
import { add, full, input, mul, sum } from "../ir/builders.ts";
import { type Expr, substitute } from "../ir/expr.ts";
import { fmtShape, numel } from "../ir/shape.ts";
import { type GradOptions, vjp } from "./grad.ts";

function normalF32(n: number, seed: number): Float64Array {
  // A small seeded normal generator (mulberry32 + Box–Muller), values
  // rounded to f32 so bound inputs are exactly these numbers.
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = Math.max(u(), 1e-12), b = u();
    out[i] = Math.fround(Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * b));
  }
  return out;
}

function arr(shape: readonly number[], data: Float64Array): NDArray {
  return Object.freeze({ dtype: "f32" as const, shape, data });
}

function perturbed(
  f: Expr,
  leaves: readonly Expr[],
  tangents: readonly Expr[],
  s: number,
): Expr {
  const map = new Map<Expr, Expr>();
  leaves.forEach((l, i) => map.set(l, add(l, mul(tangents[i]!, full(l.shape, s, l.dtype)))));
  return substitute([f], map)[0]!;
}

function checkLeaves(leaves: readonly Expr[]): void {
  for (const l of leaves) {
    if (l.op !== "param" && l.op !== "input") {
      throw new TypeError(`Cannot check the gradient of a ${l.op} node: pass param/input leaves`);
    }
    if (l.dtype !== "f32") {
      throw new TypeError(
        `Cannot check the gradient with respect to ${l.dtype}${fmtShape(l.shape)} "${
          (l.arg as { name: string }).name
        }": only f32 leaves are supported`,
      );
    }
  }
}

/** The two sides of the inner-product check. */
export interface VjpCheck {
  /** `⟨vjp(c), t⟩` from reverse mode. */
  readonly analytic: number;
  /** `⟨c, (f(x + h·t) − f(x − h·t))/2h⟩` from central differences. */
  readonly numeric: number;
  /** `Σ|vjp(c)ᵢ·tᵢ|`, a scale for relative tolerances. */
  readonly scale: number;
}

/** Options of {@link checkVjp}. */
export interface CheckVjpOptions extends GradOptions {
  /** Seed of the random cotangent and tangents (default 1). */
  seed?: number;
  /** Finite-difference step (default 1e-5). */
  h?: number;
}

/**
 * The inner-product check of a VJP: draws a random cotangent `c` for
 * `output` and a random tangent `t` per leaf, and returns `⟨vjp(c), t⟩`
 * and its central-difference estimate. They agree to about `1e-8·scale`
 * where `output` is smooth.
 *
 * @param output a float expression (any shape)
 * @param leaves f32 `param`/`input` leaves of `output`
 * @param bindings values of every input and parameter
 * @param opts seed, step size, gradient options
 * @returns both sides of the identity
 */
export function checkVjp(
  output: Expr,
  leaves: readonly Expr[],
  bindings: Bindings,
  opts: CheckVjpOptions = {},
): VjpCheck {
  checkLeaves(leaves);
  const seed = opts.seed ?? 1, h = opts.h ?? 1e-5;
  const cIn = input("__check.cotangent", output.shape, output.dtype);
  const cVal = normalF32(numel(output.shape), seed * 7919 + 1);
  const tIns = leaves.map((l, i) => input(`__check.tangent.${i}`, l.shape, l.dtype));
  const tVals = leaves.map((l, i) => normalF32(numel(l.shape), seed * 7919 + 2 + i));
  const b: Record<string, NDArray> = { ...bindings, "__check.cotangent": arr(output.shape, cVal) };
  tIns.forEach((_, i) => (b[`__check.tangent.${i}`] = arr(leaves[i]!.shape, tVals[i]!)));

  const grads = vjp(output, [...leaves], cIn, opts);
  const inner = sum(mul(output, cIn));
  const hi = perturbed(inner, leaves, tIns, h), lo = perturbed(inner, leaves, tIns, -h);
  const res = interpret([...grads, hi, lo], b);
  let analytic = 0, scale = 0;
  leaves.forEach((_, i) => {
    const g = res[i]!.data, t = tVals[i]!;
    for (let k = 0; k < g.length; k++) {
      analytic += g[k]! * t[k]!;
      scale += Math.abs(g[k]! * t[k]!);
    }
  });
  const numeric = (res[leaves.length]!.data[0]! - res[leaves.length + 1]!.data[0]!) / (2 * h);
  return { analytic, numeric, scale };
}

/**
 * The gradient of a scalar by central differences, element by element.
 *
 * @param loss a float expression with one element
 * @param leaf an f32 `param`/`input` leaf of `loss`
 * @param bindings values of every input and parameter
 * @param h the step (default 1e-5)
 * @returns the numerical gradient, shaped like `leaf` (row-major)
 */
export function numericGradient(
  loss: Expr,
  leaf: Expr,
  bindings: Bindings,
  h = 1e-5,
): Float64Array {
  checkLeaves([leaf]);
  if (numel(loss.shape) !== 1) {
    throw new TypeError(
      `Cannot take a numerical gradient of ${loss.dtype}${fmtShape(loss.shape)}: needs one element`,
    );
  }
  const n = numel(leaf.shape);
  const tIn = input("__check.unit", leaf.shape, leaf.dtype);
  const hi = perturbed(loss, [leaf], [tIn], h), lo = perturbed(loss, [leaf], [tIn], -h);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const unit = new Float64Array(n);
    unit[i] = 1;
    const [a, b] = interpret([hi, lo], { ...bindings, "__check.unit": arr(leaf.shape, unit) });
    out[i] = (a!.data[0]! - b!.data[0]!) / (2 * h);
  }
  return out;
}
