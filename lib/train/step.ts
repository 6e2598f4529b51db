/**
 * Train-step graphs: loss, gradients, clipping and an optimizer update as
 * one set of expressions, ready for `compile(outputList, { updates })`,
 * plus a float64 reference that runs the same step on the interpreter.
 *
 * @example One AdamW step on the interpreter
 * ```ts
 * import * as nx from "../../mod.ts";
 * import { adamw } from "../optim/mod.ts";
 * import { initOptimizerState, runStepInterpreted, trainStepGraph } from "./step.ts";
 * const x = nx.input("x", [4, 3]);
 * const w = nx.param("w", [3, 1]);
 * const loss = nx.mean(nx.square(nx.matmul(x, w)));
 * const step = trainStepGraph(loss, undefined, adamw({ lr: 1e-2 }));
 * let values = { w: nx.array([1, 2, 3], [3, 1]), ...initOptimizerState(step) };
 * const r = runStepInterpreted(step, values, { x: nx.array(1, [4, 3]) }, 1);
 * values = r.values; // r.scalars.loss, r.scalars.gradNorm
 * ```
 *
 * @module
 */

import { valueAndGrad } from "../autodiff/grad.ts";
import { type F64Array, interpret } from "../interpret.ts";
import type { NDArray } from "../ir/array.ts";
import { add, input, sqrt } from "../ir/builders.ts";
import { type Expr, leavesOf } from "../ir/expr.ts";
import { numel } from "../ir/shape.ts";
import { clipByGlobalNorm, sumOfSquares } from "../optim/clip.ts";
import { defaultTrainable, type ParamPredicate, selectParams } from "../optim/mask.ts";
import type { Optimizer, StateSlot } from "../optim/optimizers.ts";
import { scheduleExpr } from "../optim/schedule.ts";

/** The default name of the step input (an f32 scalar, 1-based). */
export const STEP_INPUT = "opt.step";

/**
 * Which parameters to train: nodes, names, patterns or a predicate
 * (default: every parameter but constants such as FakeLN's `.sigma`).
 */
export type TrainableSelection =
  | readonly (string | RegExp | Expr)[]
  | ParamPredicate
  | undefined;

/** Options of {@link trainStepGraph}. */
export interface TrainStepOptions {
  /** Clip gradients to this global norm (default: no clipping). */
  clip?: number;
  /** Extra outputs to read each step, by name. */
  metrics?: Record<string, Expr>;
  /**
   * Groups parameters for per-group gradient norms (`gradNorm.<group>`);
   * return undefined to leave a parameter out. Default: `blocks.<i>` for
   * names starting with `blocks.<i>.`, `other` for the rest.
   */
  groupOf?: (name: string) => string | undefined;
  /** The step input's name (default {@link STEP_INPUT}). */
  stepInput?: string;
  /** Use the closed-form norm backward (default true). */
  fusedNorm?: boolean;
}

/** A train step as expressions. */
export interface TrainStep {
  /**
   * Outputs by name: `loss`, `gradNorm` (global, before clipping), `lr`,
   * `gradNorm.<group>` per group, then the metrics.
   */
  readonly outputs: Readonly<Record<string, Expr>>;
  /** Output names in a fixed order. */
  readonly outputNames: readonly string[];
  /** Output expressions in the order of `outputNames` (pass to compile). */
  readonly outputList: readonly Expr[];
  /** New values of trained parameters and optimizer state, by parameter name. */
  readonly updates: Readonly<Record<string, Expr>>;
  /** The optimizer state parameters the step reads and writes. */
  readonly slots: readonly StateSlot[];
  /** Names of trained parameters (sorted). */
  readonly trainable: readonly string[];
  /** Names of parameters left unchanged (sorted). */
  readonly frozen: readonly string[];
  /** The name of the f32 scalar step input. */
  readonly stepInput: string;
  /** The optimizer. */
  readonly optimizer: Optimizer;
}

/**
 * The default parameter grouping for per-layer gradient norms.
 *
 * @param name a parameter name
 * @returns `blocks.<i>` for `blocks.<i>.…`, else `other`
 */
export function blockGroup(name: string): string {
  const m = /^blocks\.(\d+)\./.exec(name);
  return m ? `blocks.${m[1]}` : "other";
}

function groupOrder(a: string, b: string): number {
  const ma = /^blocks\.(\d+)$/.exec(a), mb = /^blocks\.(\d+)$/.exec(b);
  if (ma && mb) return Number(ma[1]) - Number(mb[1]);
  if (ma) return -1;
  if (mb) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Builds one training step: gradients of `loss` with respect to the
 * trainable parameters, optional global-norm clipping, the optimizer's
 * update (learning rate from its schedule, computed in the graph from the
 * step input) and monitoring outputs.
 *
 * @param loss a float scalar loss
 * @param params which parameters to train (default all); the rest are frozen
 * @param optimizer the optimizer (see `lib/optim`)
 * @param opts clipping, metrics, grouping, step input name
 * @returns the step's outputs and `updates`
 * @throws {RangeError} when the selection matches no parameter of the loss
 */
export function trainStepGraph(
  loss: Expr,
  params: TrainableSelection,
  optimizer: Optimizer,
  opts: TrainStepOptions = {},
): TrainStep {
  const all = leavesOf([loss]).params;
  let pred: ParamPredicate;
  if (params === undefined) pred = defaultTrainable;
  else if (typeof params === "function") pred = params;
  else {
    const names = params.map((p) =>
      typeof p === "string" || p instanceof RegExp ? p : (p.arg as { name: string }).name
    );
    pred = selectParams(names);
  }
  const trained = all.filter((p) => pred(p.arg.name));
  if (trained.length === 0) {
    throw new RangeError(
      `Cannot build a train step: no parameter of the loss is selected for training. ` +
        `Parameters: ${all.map((p) => p.arg.name).join(", ") || "(none)"}`,
    );
  }
  const stepName = opts.stepInput ?? STEP_INPUT;
  const step = input(stepName, [], "f32");
  const { value, grads } = valueAndGrad(loss, trained, { fusedNorm: opts.fusedNorm });

  // Squared norms per group, summed once into the global norm.
  const groupOf = opts.groupOf ?? blockGroup;
  const groups = new Map<string, Expr[]>();
  for (const p of trained) {
    const gname = groupOf(p.arg.name);
    if (gname === undefined) continue;
    const list = groups.get(gname) ?? [];
    list.push(grads[p.arg.name]!);
    groups.set(gname, list);
  }
  const names = [...groups.keys()].sort(groupOrder);
  const sq = names.map((n) => sumOfSquares(groups.get(n)!));
  const ungrouped = trained.filter((p) => groupOf(p.arg.name) === undefined).map((p) =>
    grads[p.arg.name]!
  );
  const parts = ungrouped.length ? [...sq, sumOfSquares(ungrouped)] : sq;
  const gradNorm = sqrt(parts.slice(1).reduce((a, b) => add(a, b), parts[0]!));

  const used = opts.clip === undefined ? grads : clipByGlobalNorm(grads, opts.clip, gradNorm).grads;
  const lr = scheduleExpr(optimizer.lr, step);
  const updates: Record<string, Expr> = {};
  const slots: StateSlot[] = [];
  for (const p of trained) {
    slots.push(...optimizer.slots(p));
    Object.assign(updates, optimizer.update(p, used[p.arg.name]!, { step, lr }));
  }
  const outputs: Record<string, Expr> = { loss: value, gradNorm, lr };
  names.forEach((n, i) => (outputs[`gradNorm.${n}`] = sqrt(sq[i]!)));
  for (const [k, m] of Object.entries(opts.metrics ?? {})) {
    if (Object.hasOwn(outputs, k)) {
      throw new RangeError(`Cannot add metric "${k}": the train step already outputs "${k}"`);
    }
    outputs[k] = m;
  }
  const outputNames = Object.keys(outputs);
  const trainedNames = trained.map((p) => p.arg.name);
  return Object.freeze({
    outputs: Object.freeze(outputs),
    outputNames,
    outputList: outputNames.map((k) => outputs[k]!),
    updates: Object.freeze(updates),
    slots,
    trainable: trainedNames,
    frozen: all.map((p) => p.arg.name).filter((n) => !trainedNames.includes(n)),
    stepInput: stepName,
    optimizer,
  });
}

/**
 * Initial optimizer state for a train step (each slot filled with its
 * initial value, usually 0), as host arrays.
 *
 * @param step a train step
 * @returns state arrays by slot name
 */
export function initOptimizerState(step: TrainStep): Record<string, NDArray> {
  const out: Record<string, NDArray> = {};
  for (const s of step.slots) {
    out[s.name] = Object.freeze({
      dtype: s.dtype,
      shape: s.shape,
      data: new Float64Array(numel(s.shape)).fill(s.init),
    });
  }
  return out;
}

/** The result of {@link runStepInterpreted}. */
export interface InterpretedStep {
  /** Every bound parameter after the step (updated ones replaced). */
  readonly values: Record<string, NDArray>;
  /** Every output of the step, by name. */
  readonly outputs: Record<string, F64Array>;
  /** Outputs with one element, as numbers (loss, norms, lr, …). */
  readonly scalars: Record<string, number>;
}

/**
 * Runs one train step on the float64 interpreter (the reference for the
 * compiled step, and the explicit interpreter backend for training).
 *
 * @param step a train step from {@link trainStepGraph}
 * @param values parameters and optimizer state by name
 * @param inputs the step's data inputs by name (the step input is added)
 * @param t the 1-based step number
 * @returns the new values and the outputs
 */
export function runStepInterpreted(
  step: TrainStep,
  values: Readonly<Record<string, NDArray>>,
  inputs: Readonly<Record<string, NDArray>>,
  t: number,
): InterpretedStep {
  if (!(Number.isInteger(t) && t >= 1)) {
    throw new RangeError(`Cannot run train step ${t}: steps are integers counted from 1`);
  }
  const upNames = Object.keys(step.updates);
  const roots = [...step.outputList, ...upNames.map((n) => step.updates[n]!)];
  const bindings: Record<string, NDArray> = {
    ...values,
    ...inputs,
    [step.stepInput]: Object.freeze({ dtype: "f32", shape: [], data: new Float64Array([t]) }),
  };
  const res = interpret(roots, bindings);
  const outputs: Record<string, F64Array> = {};
  const scalars: Record<string, number> = {};
  step.outputNames.forEach((n, i) => {
    outputs[n] = res[i]!;
    if (res[i]!.data.length === 1) scalars[n] = res[i]!.data[0]!;
  });
  const next: Record<string, NDArray> = { ...values };
  upNames.forEach((n, i) => {
    const r = res[step.outputList.length + i]!;
    const old = values[n];
    next[n] = Object.freeze({ dtype: old?.dtype ?? r.dtype, shape: r.shape, data: r.data });
  });
  return { values: next, outputs, scalars };
}
