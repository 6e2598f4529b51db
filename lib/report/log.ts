/**
 * The training log: what training code records and the report renderers
 * read. A plain JSON-friendly record (arrays of numbers), one entry per
 * variant, so several normalization variants trained side by side land in
 * one report.
 *
 * The `record*` helpers append to a log the caller owns (they mutate it:
 * logs grow by one record per step, and copying them each step would cost
 * O(steps²)).
 *
 * @example
 * ```ts
 * const log = createTrainingLog({ title: "pre-LN vs post-LN", optimum: 1.09 });
 * recordTrain(log, "pre_ln", { step: 0, loss: 3.4, tokensPerSec: 12000 });
 * recordVal(log, "pre_ln", 0, 3.41);
 * recordLayers(log, "pre_ln", "gradNorm", 0, [0.8, 0.5, 0.3]);
 * ```
 *
 * @module
 */

/** A per-layer quantity over training: `values[i][l]` is layer l at record i. */
export interface LayerSeries {
  /** Layer (or depth) labels, e.g. `["0", "1", ...]` or parameter names. */
  layers: string[];
  /** Step of each record. */
  steps: number[];
  /** One row per record, one value per layer. */
  values: number[][];
}

/** Everything logged for one variant. */
export interface VariantLog {
  /** Variant name (e.g. `"pre_ln"`). */
  variant: string;
  /** Step of each training record. */
  steps: number[];
  /** Training loss per record (nats/token); NaN/Infinity mark divergence. */
  trainLoss: number[];
  /** Throughput per record (tokens/s), aligned with `steps` when present. */
  tokensPerSec: number[];
  /** Learning rate per record, aligned with `steps` when present. */
  lr: number[];
  /** Steps at which validation loss was measured. */
  valSteps: number[];
  /** Validation loss at each of `valSteps`. */
  valLoss: number[];
  /** Gradient norm per layer. */
  gradNorm: LayerSeries;
  /** Activation RMS per depth (residual stream after each block). */
  actRms: LayerSeries;
  /** Mean attention entropy per layer (nats). */
  attnEntropy: LayerSeries;
  /** Update-to-weight ratio ‖ΔW‖/‖W‖ per layer (≈1e-3 is the usual sanity range). */
  updateRatio: LayerSeries;
}

/** A training log over one or more variants. */
export interface TrainingLog {
  /** Report title. */
  title: string;
  /** The best achievable loss (e.g. `markovOptimalLoss`), drawn as a reference line. */
  optimum?: number;
  /** Free-form run facts shown in the report (corpus, model size, seed...). */
  meta: Record<string, string | number | boolean>;
  /** One entry per variant, in the order they were first recorded. */
  variants: VariantLog[];
}

/** The per-layer quantities a {@link VariantLog} holds. */
export type LayerQuantity = "gradNorm" | "actRms" | "attnEntropy" | "updateRatio";

/** One training record for {@link recordTrain}. */
export interface TrainRecord {
  /** Step index. */
  readonly step: number;
  /** Training loss. */
  readonly loss: number;
  /** Throughput. */
  readonly tokensPerSec?: number;
  /** Learning rate. */
  readonly lr?: number;
}

/**
 * Makes an empty training log.
 *
 * @param init title, optimum, meta
 * @returns the log
 */
export function createTrainingLog(
  init: { title?: string; optimum?: number; meta?: Record<string, string | number | boolean> } = {},
): TrainingLog {
  const log: TrainingLog = {
    title: init.title ?? "normix training report",
    meta: { ...(init.meta ?? {}) },
    variants: [],
  };
  if (init.optimum !== undefined) log.optimum = init.optimum;
  return log;
}

function emptySeries(): LayerSeries {
  return { layers: [], steps: [], values: [] };
}

/**
 * The log entry of a variant, created empty on first use.
 *
 * @param log the log
 * @param variant the variant name
 * @returns its entry (part of `log`)
 */
export function variantLog(log: TrainingLog, variant: string): VariantLog {
  let v = log.variants.find((x) => x.variant === variant);
  if (!v) {
    v = {
      variant,
      steps: [],
      trainLoss: [],
      tokensPerSec: [],
      lr: [],
      valSteps: [],
      valLoss: [],
      gradNorm: emptySeries(),
      actRms: emptySeries(),
      attnEntropy: emptySeries(),
      updateRatio: emptySeries(),
    };
    log.variants.push(v);
  }
  return v;
}

/**
 * Appends one training record.
 *
 * @param log the log (mutated)
 * @param variant the variant name
 * @param rec step, loss, optional tokens/s and learning rate
 */
export function recordTrain(log: TrainingLog, variant: string, rec: TrainRecord): void {
  const v = variantLog(log, variant);
  v.steps.push(rec.step);
  v.trainLoss.push(rec.loss);
  if (rec.tokensPerSec !== undefined) v.tokensPerSec.push(rec.tokensPerSec);
  if (rec.lr !== undefined) v.lr.push(rec.lr);
}

/**
 * Appends one validation measurement.
 *
 * @param log the log (mutated)
 * @param variant the variant name
 * @param step the step it was measured at
 * @param loss validation loss
 */
export function recordVal(log: TrainingLog, variant: string, step: number, loss: number): void {
  const v = variantLog(log, variant);
  v.valSteps.push(step);
  v.valLoss.push(loss);
}

/**
 * Appends one per-layer record (gradient norms, activation RMS, attention
 * entropy or update ratios).
 *
 * @param log the log (mutated)
 * @param variant the variant name
 * @param what which quantity
 * @param step the step
 * @param values one value per layer
 * @param layers layer labels (default "0", "1", ...; set once, on the first record)
 * @throws {RangeError} when the number of values changes between records
 */
export function recordLayers(
  log: TrainingLog,
  variant: string,
  what: LayerQuantity,
  step: number,
  values: ArrayLike<number>,
  layers?: readonly string[],
): void {
  const s = variantLog(log, variant)[what];
  if (s.layers.length === 0) {
    s.layers = layers ? [...layers] : Array.from({ length: values.length }, (_, i) => String(i));
  }
  if (values.length !== s.layers.length) {
    throw new RangeError(
      `Cannot record ${what} for "${variant}" at step ${step}: got ${values.length} values, ` +
        `the log has ${s.layers.length} layers`,
    );
  }
  s.steps.push(step);
  s.values.push(Array.from(values));
}

/**
 * Exponential moving average with bias correction (as Adam does), skipping
 * non-finite values: the output is NaN where the input is, and the average
 * carries on from the last finite value.
 *
 * @param values a series
 * @param alpha smoothing in (0, 1): weight of the past (default 0.9)
 * @returns the smoothed series, same length
 */
export function smoothEma(values: ArrayLike<number>, alpha = 0.9): number[] {
  const out: number[] = [];
  let m = 0, w = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      out.push(NaN);
      continue;
    }
    m = alpha * m + (1 - alpha) * v;
    w = alpha * w + (1 - alpha);
    out.push(m / w);
  }
  return out;
}
