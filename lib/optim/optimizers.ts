/**
 * Optimizers as graph fragments: given a parameter leaf, its gradient and
 * the step context, an optimizer returns expressions for the parameter's
 * new value and its new optimizer state. State lives in parameters named
 * `opt.<slot>.<param name>` (e.g. `opt.m.blocks.0.mlp.w1`), so a compiled
 * train step keeps it on the GPU and writes it back through `updates`.
 *
 * Optimizer math is done in f32 (state is f32 even for f16 parameters);
 * the new parameter is cast back to the parameter's dtype.
 *
 * @module
 */

import {
  abs,
  add,
  cast,
  div,
  exp,
  less,
  mul,
  neg,
  param,
  scalar,
  sqrt,
  sub,
  where,
} from "../ir/builders.ts";
import type { DType } from "../ir/dtype.ts";
import type { Expr } from "../ir/expr.ts";
import type { Shape } from "../ir/shape.ts";
import { decayMatrices } from "./mask.ts";
import type { LearningRate } from "./schedule.ts";

/** One optimizer state tensor of one parameter. */
export interface StateSlot {
  /** The state parameter's name, e.g. `opt.m.w`. */
  readonly name: string;
  /** Its shape (the parameter's). */
  readonly shape: Shape;
  /** Its dtype. */
  readonly dtype: DType;
  /** Its initial value (every element). */
  readonly init: number;
}

/** Per-step scalars an optimizer reads. */
export interface StepContext {
  /** The 1-based step number, an f32 scalar (usually the `opt.step` input). */
  readonly step: Expr<"f32">;
  /** The learning rate at this step, an f32 scalar. */
  readonly lr: Expr<"f32">;
}

/** An optimizer: state slots per parameter and an update rule. */
export interface Optimizer {
  /** A short name ("sgd", "adamw"). */
  readonly kind: string;
  /** The learning rate or schedule. */
  readonly lr: LearningRate;
  /**
   * The state this optimizer keeps for a parameter.
   *
   * @param p a parameter leaf
   * @returns its state slots (maybe none)
   */
  slots(p: Expr): readonly StateSlot[];
  /**
   * New values of a parameter and of its state after one step.
   *
   * @param p the parameter leaf
   * @param g its gradient (same shape and dtype)
   * @param ctx the step and learning rate
   * @returns updates by parameter name: `p`'s name and each slot's name
   */
  update(p: Expr, g: Expr, ctx: StepContext): Record<string, Expr>;
}

function pname(p: Expr): string {
  if (p.op !== "param") {
    throw new TypeError(`Cannot optimise a ${p.op} node: optimizers update param leaves`);
  }
  return (p.arg as { name: string }).name;
}

function stateLeaf(s: StateSlot): Expr<"f32"> {
  return param(s.name, s.shape, "f32");
}

function f32(x: Expr): Expr<"f32"> {
  return cast(x, "f32");
}

/** Options of {@link sgd}. */
export interface SgdOptions {
  /** Learning rate or schedule. */
  lr: LearningRate;
  /** Momentum μ (default 0: plain SGD, no state). */
  momentum?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
  /** L2 weight decay added to the gradient, PyTorch-style (default 0). */
  weightDecay?: number;
  /** Which parameters get weight decay (default: rank ≥ 2). */
  decay?: (p: Expr) => boolean;
}

/**
 * Stochastic gradient descent, PyTorch semantics: `g ← g + wd·p`;
 * with momentum `b ← μ·b + g` (state `opt.mom.<name>`, starting at 0) and
 * `g ← b` (or `g + μ·b` with Nesterov); then `p ← p − lr·g`.
 *
 * @param opts learning rate, momentum, Nesterov, weight decay
 * @returns the optimizer
 */
export function sgd(opts: SgdOptions): Optimizer {
  const mu = opts.momentum ?? 0;
  const wd = opts.weightDecay ?? 0;
  const decays = opts.decay ?? decayMatrices;
  if (!(mu >= 0 && mu < 1)) {
    throw new RangeError(`Cannot make SGD: momentum ${mu} is outside [0, 1)`);
  }
  if (!(wd >= 0)) throw new RangeError(`Cannot make SGD: weightDecay ${wd} must be >= 0`);
  if (opts.nesterov && mu === 0) {
    throw new RangeError("Cannot make SGD: Nesterov momentum needs momentum > 0");
  }
  const slots = (p: Expr): StateSlot[] => {
    const name = pname(p);
    return mu > 0 ? [{ name: `opt.mom.${name}`, shape: p.shape, dtype: "f32", init: 0 }] : [];
  };
  return {
    kind: "sgd",
    lr: opts.lr,
    slots,
    update(p, g, ctx) {
      const name = pname(p);
      let d: Expr = f32(g);
      if (wd > 0 && decays(p)) d = add(d, mul(f32(p), wd));
      const out: Record<string, Expr> = {};
      if (mu > 0) {
        const slot = slots(p)[0]!;
        const buf = add(mul(stateLeaf(slot), mu), d);
        out[slot.name] = buf;
        d = opts.nesterov ? add(d, mul(buf, mu)) : buf;
      }
      out[name] = cast(sub(f32(p), mul(d, ctx.lr)), p.dtype);
      return out;
    },
  };
}

/** Options of {@link adamw}. */
export interface AdamWOptions {
  /** Learning rate or schedule. */
  lr: LearningRate;
  /** β₁ (default 0.9). */
  beta1?: number;
  /** β₂ (default 0.999). */
  beta2?: number;
  /** ε (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay λ (default 0.01). */
  weightDecay?: number;
  /** Which parameters get weight decay (default: rank ≥ 2). */
  decay?: (p: Expr) => boolean;
}

/**
 * `1 − β^t` for an f32 step `t`, accurate in f32 even when it is tiny
 * (t = 1, β = 0.999): a series for `−expm1(t·ln β)` when `|t·ln β| < 0.01`.
 *
 * @param beta β in (0, 1)
 * @param t the step, an f32 scalar
 * @returns an f32 scalar
 */
export function oneMinusPow(beta: number, t: Expr<"f32">): Expr<"f32"> {
  const y = mul(t, Math.log(beta));
  // -expm1(y) = -y·(1 + y/2! + y²/3! + …), Horner to y⁵/6!; the next term is
  // below 1e-15 relative for |y| < 0.01.
  let poly: Expr<"f32"> = scalar(1 / 720);
  for (const c of [1 / 120, 1 / 24, 1 / 6, 1 / 2, 1]) poly = add(mul(poly, y), c);
  const series = neg(mul(y, poly));
  return where(less(abs(y), 0.01), series, sub(scalar(1), exp(y)));
}

/**
 * AdamW (Loshchilov & Hutter) with PyTorch semantics:
 * ```
 * m ← β₁m + (1−β₁)g          v ← β₂v + (1−β₂)g²
 * m̂ = m/(1−β₁ᵗ)              v̂ = v/(1−β₂ᵗ)
 * p ← p − lr·(m̂/(√v̂ + ε) + λ·p)     (λ only where `decay(p)`)
 * ```
 * computed as `p·(1 − lr·λ) − α·m/(√v + ε̂)` with the scalars
 * `α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)` and `ε̂ = ε·√(1−β₂ᵗ)` (algebraically equal).
 * State: `opt.m.<name>` and `opt.v.<name>`, starting at 0. The bias
 * corrections use the step input `t` (1-based), computed in the graph.
 *
 * @param opts learning rate, betas, eps, weight decay
 * @returns the optimizer
 *
 * @example
 * ```ts
 * import { adamw } from "./optimizers.ts";
 * import { warmupCosine } from "./schedule.ts";
 * const opt = adamw({ lr: warmupCosine({ peak: 3e-4, warmup: 100, total: 5000 }), weightDecay: 0.1 });
 * ```
 */
export function adamw(opts: AdamWOptions): Optimizer {
  const b1 = opts.beta1 ?? 0.9, b2 = opts.beta2 ?? 0.999;
  const eps = opts.eps ?? 1e-8, wd = opts.weightDecay ?? 0.01;
  const decays = opts.decay ?? decayMatrices;
  for (const [k, v] of [["beta1", b1], ["beta2", b2]] as const) {
    if (!(v >= 0 && v < 1)) throw new RangeError(`Cannot make AdamW: ${k} ${v} is outside [0, 1)`);
  }
  if (!(eps > 0)) throw new RangeError(`Cannot make AdamW: eps ${eps} must be > 0`);
  if (!(wd >= 0)) throw new RangeError(`Cannot make AdamW: weightDecay ${wd} must be >= 0`);
  const slots = (p: Expr): StateSlot[] => {
    const name = pname(p);
    return [
      { name: `opt.m.${name}`, shape: p.shape, dtype: "f32", init: 0 },
      { name: `opt.v.${name}`, shape: p.shape, dtype: "f32", init: 0 },
    ];
  };
  return {
    kind: "adamw",
    lr: opts.lr,
    slots,
    update(p, g, ctx) {
      const name = pname(p);
      const [sm, sv] = slots(p) as [StateSlot, StateSlot];
      const g32 = f32(g), p32 = f32(p);
      const m = add(mul(stateLeaf(sm), b1), mul(g32, 1 - b1));
      const v = add(mul(stateLeaf(sv), b2), mul(mul(g32, g32), 1 - b2));
      // β = 0 makes the correction 1 − 0ᵗ = 1 (log 0 would be -∞).
      const bc1 = b1 === 0 ? scalar(1) : oneMinusPow(b1, ctx.step);
      const bc2 = b2 === 0 ? scalar(1) : oneMinusPow(b2, ctx.step);
      // m̂/(√v̂ + ε) = α·m/(√v + ε̂) with α = √bc₂/bc₁ and ε̂ = ε·√bc₂: the
      // corrections become two scalars, leaving 4 ops per element.
      const root = sqrt(bc2);
      const alpha = mul(div(root, bc1), ctx.lr);
      const step = mul(div(m, add(sqrt(v), mul(root, eps))), alpha);
      const keep = wd > 0 && decays(p) ? sub(scalar(1), mul(ctx.lr, wd)) : undefined;
      const next = sub(keep ? mul(p32, keep) : p32, step);
      return {
        [sm.name]: m,
        [sv.name]: v,
        [name]: cast(next, p.dtype),
      };
    },
  };
}
