/**
 * Shared test helpers: closeness checks, fast-check configuration with a
 * replayable seed, and GPU detection.
 *
 * Replay a failing property with `FC_SEED=<seed> deno task test`; raise the
 * number of runs with `FC_RUNS_SCALE=10`.
 *
 * @module
 */
import fc from "fast-check";
import { mulberry32 } from "../lib/data/rng.ts";
import { array, type NDArray } from "../lib/ir/array.ts";

/** Seed used by every property in this run (printed when a property fails). */
export const FC_SEED: number = Deno.env.get("FC_SEED") !== undefined
  ? Number(Deno.env.get("FC_SEED"))
  : 20261123;

const SCALE = Number(Deno.env.get("FC_RUNS_SCALE") ?? "1");

/**
 * fast-check parameters with the run's fixed seed.
 *
 * @param numRuns runs at scale 1
 * @returns parameters for `fc.assert`
 */
export function fcParams(numRuns: number): fc.Parameters<unknown> {
  return { seed: FC_SEED, numRuns: Math.max(1, Math.round(numRuns * SCALE)) };
}

/** Tolerances for {@link assertClose}: |a − e| ≤ atol + rtol·|e|. */
export interface Tol {
  /** absolute tolerance */
  atol?: number;
  /** relative tolerance */
  rtol?: number;
}

/**
 * Asserts two numeric arrays are elementwise close (NaN only equals NaN,
 * infinities must match exactly).
 *
 * @param actual computed values
 * @param expected reference values
 * @param tol tolerances
 * @param what a label for the failure message
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tol = {},
  what = "values",
): void {
  const atol = tol.atol ?? 1e-6, rtol = tol.rtol ?? 1e-5;
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} != expected ${expected.length}`);
  }
  let worst = -1, worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) !== Number.isNaN(a)) {
        throw new Error(`${what}[${i}]: got ${a}, expected ${e}`);
      }
      continue;
    }
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a !== e) throw new Error(`${what}[${i}]: got ${a}, expected ${e}`);
      continue;
    }
    const err = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (err > worstErr) {
      worstErr = err;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}[${worst}]: got ${actual[worst]}, expected ${expected[worst]} ` +
        `(|diff| ${Math.abs(actual[worst]! - expected[worst]!)} > atol ${atol} + rtol ${rtol}·|e|)`,
    );
  }
}

/**
 * The largest |a − e| over two arrays.
 *
 * @param a computed values
 * @param e reference values
 * @returns the max absolute difference
 */
export function maxAbsDiff(a: ArrayLike<number>, e: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - e[i]!));
  return m;
}

/**
 * A seeded PRNG (mulberry32) for deterministic test data outside properties.
 *
 * @param seed a 32-bit seed
 * @returns a function giving uniform numbers in [0, 1)
 */
export function rng(seed: number): () => number {
  return mulberry32(seed);
}

/**
 * Standard-normal samples from a seeded PRNG (Box–Muller).
 *
 * @param n how many
 * @param seed the seed
 * @param scale standard deviation (default 1)
 * @returns the samples
 */
export function randn(n: number, seed: number, scale = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12), v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

let adapterProbe: Promise<boolean> | undefined;

/**
 * Whether a WebGPU adapter exists here (GPU tests are skipped without one).
 *
 * @returns true when `navigator.gpu.requestAdapter()` gives an adapter
 */
export function hasGpu(): Promise<boolean> {
  adapterProbe ??= (async () => {
    if (Deno.env.get("NORMIX_NO_GPU")) return false;
    try {
      return (await navigator.gpu?.requestAdapter()) != null;
    } catch {
      return false;
    }
  })();
  return adapterProbe;
}

/**
 * A fast-check arbitrary for small shapes (rank and sizes bounded).
 *
 * @param maxRank largest rank (default 4)
 * @param maxDim largest size of an axis (default 4)
 * @param minDim smallest size of an axis (default 1; pass 0 to include empty axes)
 * @returns shapes as plain arrays
 */
export function arbShape(maxRank = 4, maxDim = 4, minDim = 1): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: minDim, max: maxDim }), { minLength: 0, maxLength: maxRank });
}

/**
 * The row-major multi-index of flat element `i` of a shape (for hand-written index math).
 *
 * @param i a flat index
 * @param shape the shape
 * @returns the multi-index
 */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let a = shape.length - 1; a >= 0; a--) {
    idx[a] = i % shape[a]!;
    i = Math.floor(i / shape[a]!);
  }
  return idx;
}

/**
 * The flat row-major index of a multi-index (inverse of {@link unravel}).
 *
 * @param idx a multi-index
 * @param shape the shape
 * @returns the flat index
 */
export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let o = 0;
  for (let a = 0; a < shape.length; a++) o = o * shape[a]! + idx[a]!;
  return o;
}

/**
 * NumPy's broadcasting rule written from its documentation, independently of
 * the library's `broadcastShapes`: pad shorter shapes with leading 1s, then
 * each axis must be equal or 1.
 *
 * @param shapes the operand shapes
 * @returns the broadcast shape, or undefined when they do not broadcast
 */
export function npBroadcast(...shapes: (readonly number[])[]): number[] | undefined {
  const n = Math.max(0, ...shapes.map((s) => s.length));
  const padded = shapes.map((s) => [...Array<number>(n - s.length).fill(1), ...s]);
  const out: number[] = [];
  for (let a = 0; a < n; a++) {
    const sizes = new Set(padded.map((s) => s[a]!).filter((d) => d !== 1));
    if (sizes.size > 1) return undefined;
    out.push(sizes.size === 0 ? 1 : [...sizes][0]!);
  }
  return out;
}

/**
 * Uniform random token ids `[batch, seqLen]` (i32) for a model config.
 *
 * @param cfg batch, sequence length and vocabulary size
 * @param seed the seed
 * @returns the ids
 */
export function randomIds(
  cfg: { readonly batch: number; readonly seqLen: number; readonly vocabSize: number },
  seed: number,
): NDArray<"i32"> {
  const r = rng(seed);
  const n = cfg.batch * cfg.seqLen;
  return array(
    Array.from({ length: n }, () => Math.floor(r() * cfg.vocabSize)),
    [cfg.batch, cfg.seqLen],
    "i32",
  );
}
