/**
 * The effectful training loop. It runs a train step compiled elsewhere
 * (`compile(step.outputList, { updates: step.updates })` from kernels/), so
 * lib/ stays free of WebGPU: the program is passed in and only needs
 * `run`. Parameters and optimizer state stay wherever the program keeps
 * them (on the GPU for the WebGPU backend); the loop only feeds the batch
 * and the step number, and reads outputs back when asked to log.
 *
 * @module
 */

import type { NDArray } from "../ir/array.ts";
import { runStepInterpreted, type TrainStep } from "./step.ts";

/** What the loop needs from a compiled train step. */
export interface StepProgram {
  /**
   * Runs the program once (applying its parameter updates), as `Program.run`
   * of kernels/mod.ts does.
   *
   * @param inputs data inputs by name, including the step input
   * @param opts `read`: indices of the outputs to read back
   * @returns the selected outputs, in the order selected
   */
  run(
    inputs: Record<string, NDArray>,
    opts?: { read?: readonly number[] },
  ): Promise<readonly NDArray[]>;
}

/** Options of {@link trainLoop}. */
export interface TrainLoopOptions {
  /** Number of steps to run. */
  steps: number;
  /** The first step number (default 1; pass `k + 1` to resume after step k). */
  start?: number;
  /** The data inputs of step `t`. */
  batch: (t: number) => Record<string, NDArray>;
  /** Read outputs back every this many steps, and at the last step (default 1). */
  logEvery?: number;
  /** Output names to read (default: every scalar output of the step). */
  read?: readonly string[];
  /** Called with the step and the outputs read back (not for a step whose loss is NaN/Inf when stopping on it). */
  onLog?: (t: number, values: Record<string, number>) => void | Promise<void>;
  /** Stop when the loss read back is not finite (default true). */
  stopOnNonFinite?: boolean;
}

/** One logged step. */
export interface LoggedStep {
  /** The step number. */
  readonly step: number;
  /** Outputs read back (first element of each). */
  readonly values: Readonly<Record<string, number>>;
}

/**
 * A one-element f32 array holding the step number.
 *
 * @param t the step (1-based)
 * @returns the value to bind to the step input
 */
export function stepValue(t: number): NDArray<"f32"> {
  return Object.freeze({ dtype: "f32", shape: [], data: new Float32Array([t]) });
}

/**
 * Runs a compiled train step for a number of steps, reading outputs only
 * on logging steps (each readback is a GPU round trip).
 *
 * @param program the compiled step (see {@link StepProgram})
 * @param step the train step it was compiled from (for names and the step input)
 * @param opts steps, batches, logging
 * @returns the logged steps
 * @throws {RangeError} when the loss becomes NaN/Inf (unless disabled)
 */
export async function trainLoop(
  program: StepProgram,
  step: TrainStep,
  opts: TrainLoopOptions,
): Promise<LoggedStep[]> {
  const start = opts.start ?? 1;
  const every = opts.logEvery ?? 1;
  if (!(Number.isInteger(opts.steps) && opts.steps >= 0)) {
    throw new RangeError(`Cannot train for ${opts.steps} steps: pass a non-negative integer`);
  }
  if (!(Number.isInteger(start) && start >= 1) || !(Number.isInteger(every) && every >= 1)) {
    throw new RangeError(
      `Cannot train from step ${start} logging every ${every}: both must be integers >= 1`,
    );
  }
  const names = opts.read ??
    step.outputNames.filter((n) => step.outputs[n]!.shape.reduce((a, b) => a * b, 1) === 1);
  const idx = names.map((n) => {
    const i = step.outputNames.indexOf(n);
    if (i < 0) {
      throw new RangeError(
        `Cannot read output "${n}": the step outputs ${step.outputNames.join(", ")}`,
      );
    }
    return i;
  });
  const log: LoggedStep[] = [];
  const last = start + opts.steps - 1;
  for (let t = start; t <= last; t++) {
    const reading = (t - start + 1) % every === 0 || t === last;
    const outs = await program.run(
      { ...opts.batch(t), [step.stepInput]: stepValue(t) },
      { read: reading ? idx : [] },
    );
    if (!reading) continue;
    const values: Record<string, number> = {};
    names.forEach((n, k) => (values[n] = Number(outs[k]!.data[0])));
    log.push({ step: t, values });
    // Check before onLog, so a callback that saves checkpoints never sees
    // (and never overwrites the last good file with) a diverged step.
    if ((opts.stopOnNonFinite ?? true) && "loss" in values && !Number.isFinite(values.loss)) {
      throw new RangeError(
        `Cannot continue training: the loss is ${values.loss} at step ${t}; ` +
          `lower the learning rate, enable clipping, or run with debug to find the first bad kernel`,
      );
    }
    await opts.onLog?.(t, values);
  }
  return log;
}

/** A {@link StepProgram} running on the float64 interpreter, holding its own values. */
export interface InterpretedStepProgram extends StepProgram {
  /**
   * The current parameters and optimizer state.
   *
   * @returns values by name
   */
  values(): Record<string, NDArray>;
}

/**
 * The interpreter backend for {@link trainLoop}: each `run` applies
 * {@link runStepInterpreted} to the values it holds.
 *
 * @param step a train step
 * @param values initial parameters and optimizer state
 * @returns a program for {@link trainLoop}
 */
export function interpretedStepProgram(
  step: TrainStep,
  values: Readonly<Record<string, NDArray>>,
): InterpretedStepProgram {
  let current: Record<string, NDArray> = { ...values };
  return {
    values: () => ({ ...current }),
    run(inputs, opts) {
      const { [step.stepInput]: tArr, ...data } = inputs;
      const t = tArr?.data[0];
      if (t === undefined) {
        return Promise.reject(
          new TypeError(
            `Cannot run the train step: no value for the step input "${step.stepInput}"`,
          ),
        );
      }
      const r = runStepInterpreted(step, current, data, t);
      current = r.values;
      const which = opts?.read ?? step.outputNames.map((_, i) => i);
      return Promise.resolve(which.map((i) => r.outputs[step.outputNames[i]!]!));
    },
  };
}
