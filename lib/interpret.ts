/**
 * The float64 reference interpreter: the oracle every compiled kernel and
 * every equivalence test is checked against.
 *
 * Float values are computed in float64 without rounding to the node's
 * dtype (so the reference is the exact math, to float64 precision).
 * Integer and bool values wrap and truncate as their dtype would; casts
 * follow WGSL's conversions (float to integer saturates). Composite
 * ops are evaluated through their decompositions (`lib/ir/decompose.ts`).
 *
 * @module
 */

import { type NDArray, toFloat64 } from "./ir/array.ts";
import { decompose } from "./ir/decompose.ts";
import { type DType, isFloat, isInt, roundTo } from "./ir/dtype.ts";
import { type Expr, isOp, OP_KIND, toposort } from "./ir/expr.ts";
import { fmtShape, numel, type Shape, shapeEq, stridesOf } from "./ir/shape.ts";

/** Values for the named inputs and parameters of a graph. */
export type Bindings = Readonly<Record<string, NDArray>>;

/** A float64 result of the interpreter. */
export interface F64Array<D extends DType = DType> extends NDArray<D> {
  /** float64 values. */
  readonly data: Float64Array;
}

function out(dtype: DType, shape: Shape, data: Float64Array): F64Array {
  return Object.freeze({ dtype, shape, data });
}

// Iterates the offsets of a strided view of `shape` in row-major order.
function gatherStrided(
  src: Float64Array,
  shape: Shape,
  strides: readonly number[],
  offset: number,
): Float64Array {
  const n = numel(shape);
  const res = new Float64Array(n);
  const r = shape.length;
  if (n === 0) return res;
  const idx = new Array<number>(r).fill(0);
  let off = offset;
  for (let i = 0; i < n; i++) {
    res[i] = src[off]!;
    for (let a = r - 1; a >= 0; a--) {
      idx[a]!++;
      off += strides[a]!;
      if (idx[a]! < shape[a]!) break;
      off -= strides[a]! * shape[a]!;
      idx[a] = 0;
    }
  }
  return res;
}

const INT_RANGE: Readonly<Record<"i32" | "u32", readonly [number, number]>> = {
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u32: [0, 2 ** 32 - 1],
};

// A value converted to an integer or bool dtype as WGSL converts it: float to
// integer truncates and saturates (NaN gives 0), integer to integer wraps
// (bit reinterpretation), and bool(v) is v != 0 (so NaN is true).
function castValue(to: DType, fromFloat: boolean, v: number): number {
  if (to === "bool") return v !== 0 ? 1 : 0;
  if (fromFloat && (to === "i32" || to === "u32")) {
    if (Number.isNaN(v)) return 0;
    const [lo, hi] = INT_RANGE[to];
    return Math.min(hi, Math.max(lo, Math.trunc(v))) + 0; // + 0: no -0 in integers
  }
  return roundTo(to, v);
}

const UNARY: Readonly<Record<string, (x: number) => number>> = {
  neg: (x) => -x,
  recip: (x) => 1 / x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  abs: Math.abs,
};

const BINARY: Readonly<Record<string, (a: number, b: number, int: boolean) => number>> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  // Math.imul gives the exact low 32 bits; a float64 product of two i32/u32 loses them past 2^53.
  mul: (a, b, int) => (int ? Math.imul(a, b) : a * b),
  // WGSL: integer x / 0 is x (MIN / -1 is MIN, which the i32 wrap gives).
  div: (a, b, int) => (int ? (b === 0 ? a : Math.trunc(a / b)) : a / b),
  max: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  min: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
};

function evalNode(e: Expr, v: (s: Expr) => Float64Array, bindings: Bindings): Float64Array {
  const n = numel(e.shape);
  const fix = (x: Float64Array): Float64Array => {
    if (isFloat(e.dtype)) return x;
    for (let i = 0; i < x.length; i++) x[i] = roundTo(e.dtype, x[i]!);
    return x;
  };
  switch (OP_KIND[e.op]) {
    case "leaf": {
      if (isOp(e, "input") || isOp(e, "param")) {
        // hasOwn: a name such as "toString" must not find Object.prototype's.
        const b = Object.hasOwn(bindings, e.arg.name) ? bindings[e.arg.name] : undefined;
        if (!b) {
          throw new TypeError(
            `Cannot evaluate: no value bound for ${e.op} "${e.arg.name}" (${e.dtype}${
              fmtShape(e.shape)
            })`,
          );
        }
        if (!shapeEq(b.shape, e.shape) || b.dtype !== e.dtype) {
          throw new TypeError(
            `Cannot evaluate: ${e.op} "${e.arg.name}" expects ${e.dtype}${
              fmtShape(e.shape)
            }, got ${b.dtype}${fmtShape(b.shape)}`,
          );
        }
        if (b.data.length !== n) {
          throw new TypeError(
            `Cannot evaluate: ${e.op} "${e.arg.name}" has ${b.data.length} values for shape ${
              fmtShape(e.shape)
            } (needs ${n})`,
          );
        }
        return toFloat64(b);
      }
      if (isOp(e, "const")) {
        return new Float64Array(n).fill(
          isFloat(e.dtype) ? e.arg.value : roundTo(e.dtype, e.arg.value),
        );
      }
      if (isOp(e, "iota")) {
        const st = stridesOf(e.shape);
        const ax = e.arg.axis, size = e.shape[ax]!, stride = st[ax]!;
        const r = new Float64Array(n);
        for (let i = 0; i < n; i++) r[i] = Math.floor(i / stride) % size;
        return r;
      }
      throw new TypeError(
        `Cannot evaluate a graph with an unfilled hole "${
          (e.arg as { name: string }).name
        }"; fill it first`,
      );
    }
    case "unary": {
      const x = v(e.src[0]!);
      if (isOp(e, "cast")) {
        const r = new Float64Array(x);
        const to = e.arg.dtype, fromFloat = isFloat(e.src[0]!.dtype);
        if (!isFloat(to)) { for (let i = 0; i < n; i++) r[i] = castValue(to, fromFloat, r[i]!); }
        return r;
      }
      const f = UNARY[e.op]!;
      const r = new Float64Array(n);
      for (let i = 0; i < n; i++) r[i] = f(x[i]!);
      return fix(r);
    }
    case "binary":
    case "compare": {
      const a = v(e.src[0]!), b = v(e.src[1]!);
      const f = BINARY[e.op]!;
      const int = isInt(e.src[0]!.dtype);
      const r = new Float64Array(n);
      for (let i = 0; i < n; i++) r[i] = f(a[i]!, b[i]!, int);
      return fix(r);
    }
    case "ternary": {
      const c = v(e.src[0]!), a = v(e.src[1]!), b = v(e.src[2]!);
      const r = new Float64Array(n);
      for (let i = 0; i < n; i++) r[i] = c[i] ? a[i]! : b[i]!;
      return r;
    }
    case "reduce": {
      const x = v(e.src[0]!);
      const xs = e.src[0]!.shape;
      const axes = (e.arg as { axes: readonly number[] }).axes;
      const isMax = e.op === "rmax";
      const r = new Float64Array(n).fill(isMax ? -Infinity : 0);
      const ost = stridesOf(e.shape);
      const idx = new Array<number>(xs.length).fill(0);
      for (let i = 0; i < x.length; i++) {
        let o = 0;
        for (let a = 0; a < xs.length; a++) if (!axes.includes(a)) o += idx[a]! * ost[a]!;
        const val = x[i]!;
        if (isMax) r[o] = Number.isNaN(val) || Number.isNaN(r[o]!) ? NaN : Math.max(r[o]!, val);
        else r[o]! += val;
        for (let a = xs.length - 1; a >= 0; a--) {
          if (++idx[a]! < xs[a]!) break;
          idx[a] = 0;
        }
      }
      return fix(r);
    }
    case "movement":
      return movement(e, v);
    case "dot": {
      const [ea, eb] = e.src as [Expr, Expr];
      const a = v(ea), b = v(eb);
      const r = ea.shape.length;
      const m = ea.shape[r - 2]!, k = ea.shape[r - 1]!, nn = eb.shape[r - 1]!;
      const batch = numel(ea.shape.slice(0, -2));
      const res = new Float64Array(batch * m * nn);
      for (let bi = 0; bi < batch; bi++) {
        const ao = bi * m * k, bo = bi * k * nn, ro = bi * m * nn;
        for (let i = 0; i < m; i++) {
          for (let kk = 0; kk < k; kk++) {
            const av = a[ao + i * k + kk]!;
            const brow = bo + kk * nn, rrow = ro + i * nn;
            for (let j = 0; j < nn; j++) res[rrow + j]! += av * b[brow + j]!;
          }
        }
      }
      return fix(res);
    }
    case "gather": {
      const [et, ei] = e.src as [Expr, Expr];
      const t = v(et), ix = v(ei);
      const rows = et.shape[0]!;
      const w = numel(et.shape.slice(1));
      const res = new Float64Array(n);
      for (let i = 0; i < ix.length; i++) {
        const row = ix[i]!;
        if (!(row >= 0 && row < rows)) {
          throw new RangeError(
            `Cannot gather from ${et.dtype}${
              fmtShape(et.shape)
            }: index ${row} at position ${i} is outside [0, ${rows})`,
          );
        }
        res.set(t.subarray(row * w, row * w + w), i * w);
      }
      return res;
    }
    case "composite":
      throw new Error(`Internal error: composite "${e.op}" reached evalNode undecomposed`);
  }
}

function movement(e: Expr, v: (s: Expr) => Float64Array): Float64Array {
  const x = e.src[0]!;
  const xv = () => v(x);
  const st = stridesOf(x.shape);
  if (isOp(e, "reshape")) return xv();
  if (isOp(e, "permute")) {
    return gatherStrided(xv(), e.shape, e.arg.perm.map((p) => st[p]!), 0);
  }
  if (isOp(e, "expand")) {
    return gatherStrided(
      xv(),
      e.shape,
      x.shape.map((d, i) => (d === 1 && e.shape[i] !== 1 ? 0 : st[i]!)),
      0,
    );
  }
  if (isOp(e, "slice")) {
    const off = e.arg.starts.reduce((acc, s, i) => acc + s * st[i]!, 0);
    return gatherStrided(xv(), e.shape, st, off);
  }
  if (isOp(e, "pad")) {
    const src = xv();
    const res = new Float64Array(numel(e.shape));
    const ost = stridesOf(e.shape);
    const inner = gatherStrided(src, x.shape, st, 0);
    // scatter the source block into the padded output
    const idx = new Array<number>(x.shape.length).fill(0);
    for (let i = 0; i < inner.length; i++) {
      let o = 0;
      for (let a = 0; a < idx.length; a++) o += (idx[a]! + e.arg.before[a]!) * ost[a]!;
      res[o] = inner[i]!;
      for (let a = idx.length - 1; a >= 0; a--) {
        if (++idx[a]! < x.shape[a]!) break;
        idx[a] = 0;
      }
    }
    return res;
  }
  if (isOp(e, "concat")) {
    const ax = e.arg.axis;
    const outer = numel(e.shape.slice(0, ax));
    const res = new Float64Array(numel(e.shape));
    const rowOut = numel(e.shape.slice(ax));
    let col = 0;
    for (const s of e.src) {
      const sv = v(s);
      const rowIn = numel(s.shape.slice(ax));
      for (let o = 0; o < outer; o++) {
        res.set(sv.subarray(o * rowIn, (o + 1) * rowIn), o * rowOut + col);
      }
      col += rowIn;
    }
    return res;
  }
  throw new Error(`Internal error: unknown movement op ${e.op}`);
}

/**
 * Evaluates expressions in float64.
 *
 * @param outputs the expressions to compute
 * @param bindings values of every input and parameter, by name
 * @returns one float64 array per output, in order
 * @throws {TypeError} when a binding is missing or has the wrong shape/dtype
 * @throws {RangeError} when a gather index is out of range
 *
 * @example
 * ```ts
 * import * as nx from "../mod.ts";
 * const x = nx.input("x", [2]);
 * const [y] = nx.interpret([nx.mul(x, 3)], { x: nx.array([1, 2], [2]) });
 * // y.data is Float64Array [3, 6]
 * ```
 */
export function interpret(outputs: readonly Expr[], bindings: Bindings = {}): F64Array[] {
  const roots = decompose(outputs);
  const vals = new Map<Expr, Float64Array>();
  const get = (s: Expr): Float64Array => vals.get(s)!;
  const order = toposort(roots);
  // Free intermediates after their last use to bound memory.
  const lastUse = new Map<Expr, number>();
  order.forEach((e, i) => e.src.forEach((s) => lastUse.set(s, i)));
  const keep = new Set(roots);
  order.forEach((e, i) => {
    vals.set(e, evalNode(e, get, bindings));
    for (const s of e.src) if (lastUse.get(s) === i && !keep.has(s)) vals.delete(s);
  });
  return roots.map((r) => out(r.dtype, r.shape, vals.get(r)!));
}

/**
 * Evaluates a single expression in float64 (see {@link interpret}).
 *
 * @param output the expression
 * @param bindings values of its inputs and parameters
 * @returns the float64 result
 */
export function interpretOne<D extends DType>(
  output: Expr<D>,
  bindings: Bindings = {},
): F64Array<D> {
  return interpret([output], bindings)[0] as F64Array<D>;
}
