/**
 * Learning-rate schedules, computed in the graph from the step input (so a
 * compiled train step needs no per-step host work beyond the step number)
 * and, identically, on the host for logging and reference tests.
 *
 * Steps are 1-based: step `t` is the `t`-th update.
 *
 * @module
 */

import {
  add,
  cos,
  div,
  lessEqual,
  maximum,
  minimum,
  mul,
  scalar,
  sub,
  where,
} from "../ir/builders.ts";
import type { Expr } from "../ir/expr.ts";

/** A constant learning rate. */
export interface ConstantSchedule {
  /** discriminator */
  readonly kind: "constant";
  /** the learning rate */
  readonly lr: number;
}

/**
 * Linear warm-up from 0 to `peak` over `warmup` steps, then cosine decay
 * to `min` at step `total`, constant `min` after.
 */
export interface WarmupCosineSchedule {
  /** discriminator */
  readonly kind: "warmupCosine";
  /** the learning rate at the end of warm-up */
  readonly peak: number;
  /** warm-up steps (0 for none) */
  readonly warmup: number;
  /** the step where the decay reaches `min` */
  readonly total: number;
  /** the final learning rate */
  readonly min: number;
}

/** A learning-rate schedule. */
export type Schedule = ConstantSchedule | WarmupCosineSchedule;

/** A learning rate: a number (constant) or a schedule. */
export type LearningRate = number | Schedule;

/**
 * A warm-up + cosine schedule:
 * `lr(t) = peak·t/warmup` for `t ≤ warmup`, then
 * `min + ½(peak − min)(1 + cos(π·(t − warmup)/(total − warmup)))` up to
 * `total`, and `min` after.
 *
 * @param opts `peak`, `warmup`, `total` and `min` (default 0)
 * @returns the schedule
 * @throws {RangeError} when `total <= warmup` or a value is negative
 *
 * @example
 * ```ts
 * import { scheduleAt, warmupCosine } from "./schedule.ts";
 * const s = warmupCosine({ peak: 1e-3, warmup: 100, total: 1000 });
 * scheduleAt(s, 50); // 5e-4
 * ```
 */
export function warmupCosine(opts: {
  peak: number;
  warmup: number;
  total: number;
  min?: number;
}): WarmupCosineSchedule {
  const { peak, warmup, total } = opts;
  const min = opts.min ?? 0;
  if (!(warmup >= 0) || !Number.isInteger(warmup)) {
    throw new RangeError(
      `Cannot make a warm-up cosine schedule: warmup must be an integer >= 0, got ${warmup}`,
    );
  }
  if (!(total > warmup) || !Number.isInteger(total)) {
    throw new RangeError(
      `Cannot make a warm-up cosine schedule: total (${total}) must be an integer > warmup (${warmup})`,
    );
  }
  if (!(peak >= 0) || !(min >= 0)) {
    throw new RangeError(
      `Cannot make a warm-up cosine schedule: peak ${peak} and min ${min} must be >= 0`,
    );
  }
  return Object.freeze({ kind: "warmupCosine", peak, warmup, total, min });
}

function asSchedule(lr: LearningRate): Schedule {
  if (typeof lr === "number") {
    if (!(lr >= 0)) throw new RangeError(`Cannot use learning rate ${lr}: it must be >= 0`);
    return { kind: "constant", lr };
  }
  return lr;
}

/**
 * The learning rate at step `t`, on the host (float64).
 *
 * @param lr a number or schedule
 * @param t the 1-based step
 * @returns the learning rate
 */
export function scheduleAt(lr: LearningRate, t: number): number {
  const s = asSchedule(lr);
  if (s.kind === "constant") return s.lr;
  if (s.warmup > 0 && t <= s.warmup) return (s.peak * t) / s.warmup;
  const p = Math.min(Math.max((t - s.warmup) / (s.total - s.warmup), 0), 1);
  return s.min + 0.5 * (s.peak - s.min) * (1 + Math.cos(Math.PI * p));
}

/**
 * The learning rate at a step, as a scalar expression.
 *
 * @param lr a number or schedule
 * @param step the 1-based step, an f32 scalar expression
 * @returns an f32 scalar expression
 */
export function scheduleExpr(lr: LearningRate, step: Expr<"f32">): Expr<"f32"> {
  const s = asSchedule(lr);
  if (s.kind === "constant") return scalar(s.lr);
  const p = minimum(maximum(div(sub(step, s.warmup), s.total - s.warmup), 0), 1);
  const decay = add(mul(add(cos(mul(p, Math.PI)), 1), 0.5 * (s.peak - s.min)), s.min);
  if (s.warmup === 0) return decay;
  return where(lessEqual(step, s.warmup), mul(step, s.peak / s.warmup), decay);
}
