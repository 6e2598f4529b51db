/**
 * Train/validation split and deterministic batching of a token stream into
 * `[B, T]` inputs and next-token targets.
 *
 * A training batch is a pure function of (tokens, seed, step): row b starts
 * at an offset hashed from (seed, step, b). So a run that resumes from a
 * checkpoint at step s sees exactly the batches it would have seen, and two
 * runs with the same seed train on the same data (a fair variant
 * comparison).
 *
 * @example
 * ```ts
 * const { train, val } = splitTokens(tokens, 0.1);
 * const b = trainBatch(train, { batchSize: 8, seqLen: 64, seed: 1 }, 0);
 * b.inputs.shape; // [8, 64]; b.targets is inputs shifted left by one token
 * ```
 *
 * @module
 */

import type { NDArray } from "../ir/array.ts";
import { uniformAt } from "./rng.ts";

/** Inputs and next-token targets, both `[B, T]` i32. */
export interface TokenBatch {
  /** Token ids `[B, T]`. */
  readonly inputs: NDArray<"i32">;
  /** The token after each input position, `[B, T]`. */
  readonly targets: NDArray<"i32">;
  /** Start offset of each row in the token stream (for tests and debugging). */
  readonly offsets: readonly number[];
}

/** Batch geometry. */
export interface BatchSpec {
  /** Rows per batch (B). */
  readonly batchSize: number;
  /** Tokens per row (T). */
  readonly seqLen: number;
  /** Seed of the row offsets (default 0). */
  readonly seed?: number;
}

/** A train/validation split of a token stream. */
export interface TokenSplit {
  /** The first part of the stream. */
  readonly train: Int32Array;
  /** The last part; no token position is in both. */
  readonly val: Int32Array;
  /** Index in the original stream where `val` starts. */
  readonly boundary: number;
}

function checkSpec(spec: BatchSpec, what: string): void {
  const { batchSize: B, seqLen: T } = spec;
  if (!Number.isSafeInteger(B) || B < 1) {
    throw new RangeError(`${what}: batchSize ${B} must be a positive integer`);
  }
  if (!Number.isSafeInteger(T) || T < 1) {
    throw new RangeError(`${what}: seqLen ${T} must be a positive integer`);
  }
  if (spec.seed !== undefined && !Number.isSafeInteger(spec.seed)) {
    throw new RangeError(`${what}: seed ${spec.seed} must be an integer`);
  }
}

function gather(
  tokens: ArrayLike<number>,
  offsets: readonly number[],
  T: number,
): TokenBatch {
  const B = offsets.length;
  const x = new Int32Array(B * T), y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const o = offsets[b]!;
    for (let t = 0; t < T; t++) {
      x[b * T + t] = tokens[o + t]!;
      y[b * T + t] = tokens[o + t + 1]!;
    }
  }
  const shape = Object.freeze([B, T]);
  return Object.freeze({
    inputs: Object.freeze({ dtype: "i32" as const, shape, data: x }),
    targets: Object.freeze({ dtype: "i32" as const, shape, data: y }),
    offsets: Object.freeze([...offsets]),
  });
}

/**
 * The training batch for one step: B windows at seeded random offsets.
 *
 * @param tokens the training token stream (length ≥ seqLen + 1)
 * @param spec batchSize, seqLen, seed
 * @param step the step index (any non-negative integer; batches are random-access)
 * @returns inputs and targets `[B, T]`
 * @throws {RangeError} when the stream is too short or a size is invalid
 */
export function trainBatch(tokens: ArrayLike<number>, spec: BatchSpec, step: number): TokenBatch {
  const what = "Cannot make a training batch";
  checkSpec(spec, what);
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new RangeError(`${what}: step ${step} must be a non-negative integer`);
  }
  const T = spec.seqLen;
  const starts = tokens.length - T; // valid offsets: 0 .. len−T−1
  if (starts < 1) {
    throw new RangeError(
      `${what}: ${tokens.length} tokens are too few for seqLen ${T} (need at least ${T + 1})`,
    );
  }
  const seed = spec.seed ?? 0;
  const offsets: number[] = [];
  for (let b = 0; b < spec.batchSize; b++) {
    offsets.push(
      Math.floor(uniformAt(seed, seed / 4294967296, step, step / 4294967296, b) * starts),
    );
  }
  return gather(tokens, offsets, T);
}

/**
 * Evaluation batches: consecutive non-overlapping windows from the start of
 * the stream, grouped B at a time (a trailing partial batch is dropped, so
 * every batch has the same shape). Deterministic, no seed.
 *
 * @param tokens the validation token stream
 * @param spec batchSize, seqLen (seed ignored)
 * @param maxBatches at most this many batches (default: all)
 * @returns the batches, in order
 * @throws {RangeError} when the stream has fewer than batchSize windows
 */
export function evalBatches(
  tokens: ArrayLike<number>,
  spec: BatchSpec,
  maxBatches: number = Infinity,
): TokenBatch[] {
  const what = "Cannot make evaluation batches";
  checkSpec(spec, what);
  const { batchSize: B, seqLen: T } = spec;
  const windows = Math.floor(Math.max(0, tokens.length - 1) / T);
  const n = Math.min(Math.floor(windows / B), maxBatches);
  if (n < 1) {
    throw new RangeError(
      `${what}: ${tokens.length} tokens give ${windows} windows of ${T}+1 tokens, fewer than ` +
        `batchSize ${B}; use more validation data or a smaller batch`,
    );
  }
  const out: TokenBatch[] = [];
  for (let i = 0; i < n; i++) {
    out.push(gather(tokens, Array.from({ length: B }, (_, b) => (i * B + b) * T), T));
  }
  return out;
}

/**
 * Splits a token stream into a leading train part and a trailing
 * validation part (no position in both, so no window crosses the split).
 *
 * @param tokens the whole stream
 * @param valFraction fraction for validation, in (0, 1) (default 0.1)
 * @returns train, val (copies) and the boundary index
 * @throws {RangeError} for a fraction outside (0, 1) or a stream too short to split
 */
export function splitTokens(tokens: ArrayLike<number>, valFraction = 0.1): TokenSplit {
  if (!(valFraction > 0 && valFraction < 1)) {
    throw new RangeError(`Cannot split tokens: valFraction ${valFraction} must be in (0, 1)`);
  }
  const n = tokens.length;
  const boundary = n - Math.round(n * valFraction);
  if (boundary < 1 || boundary >= n) {
    throw new RangeError(
      `Cannot split tokens: ${n} tokens are too few for valFraction ${valFraction}`,
    );
  }
  const all = Int32Array.from(tokens as ArrayLike<number>);
  return { train: all.slice(0, boundary), val: all.slice(boundary), boundary };
}
