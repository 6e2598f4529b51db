/**
 * The expression node: an immutable, interned graph over a closed set of ops.
 *
 * Every node is built by {@link mk}, which runs the op's shape/dtype rule
 * (so an ill-typed node cannot exist) and interns the result: two
 * structurally equal nodes are the same object, which gives free common
 * subexpression elimination and lets caches key on nodes.
 *
 * The rule table {@link RULES} is typed `{ [K in Op]: … }`, so adding an op
 * without a shape rule does not compile.
 *
 * @module
 */

import { type DType, isDType, isFloat, isInt } from "./dtype.ts";
import { checkShape, fmtShape, normAxes, normAxis, numel, type Shape, shapeEq } from "./shape.ts";

/** Kinds of normalisation a `norm` node can compute (over the last axis). */
export type NormKind = "layer" | "rms" | "crms" | "l2" | "fake";

/** The argument each op carries, by op name. */
export interface OpArgs {
  // leaves
  /** A runtime input, bound by name when a program runs. */
  input: { readonly name: string };
  /** A named parameter (trainable or frozen), bound by name. */
  param: { readonly name: string };
  /** A constant filled with one value. */
  const: { readonly value: number };
  /** Element index along one axis (0, 1, 2, …), for masks and positions. */
  iota: { readonly axis: number };
  /** A placeholder inside a rewrite body, replaced by {@link substitute}. */
  hole: { readonly name: string };
  // elementwise unary
  /** -x */
  neg: null;
  /** 1/x */
  recip: null;
  /** e^x */
  exp: null;
  /** natural log */
  log: null;
  /** √x */
  sqrt: null;
  /** 1/√x */
  rsqrt: null;
  /** sin x */
  sin: null;
  /** cos x */
  cos: null;
  /** tanh x */
  tanh: null;
  /** |x| */
  abs: null;
  /** conversion to another dtype */
  cast: { readonly dtype: DType };
  // elementwise binary (operands of identical shape and dtype)
  /** a + b */
  add: null;
  /** a - b */
  sub: null;
  /** a · b */
  mul: null;
  /** a / b */
  div: null;
  /** max(a, b) */
  max: null;
  /** min(a, b) */
  min: null;
  /** a < b, giving bool */
  lt: null;
  /** a <= b, giving bool */
  le: null;
  /** a == b, giving bool */
  eq: null;
  /** cond ? a : b */
  where: null;
  // reductions (keep reduced axes with size 1)
  /** sum over axes */
  sum: { readonly axes: readonly number[] };
  /** max over axes */
  rmax: { readonly axes: readonly number[] };
  // movement
  /** same elements, new shape */
  reshape: { readonly shape: Shape };
  /** axis permutation: out axis i is in axis perm[i] */
  permute: { readonly perm: readonly number[] };
  /** broadcast size-1 axes to a larger size */
  expand: { readonly shape: Shape };
  /** contiguous sub-range per axis, `[starts, ends)` */
  slice: { readonly starts: readonly number[]; readonly ends: readonly number[] };
  /** zero padding before and after each axis */
  pad: { readonly before: readonly number[]; readonly after: readonly number[] };
  /** concatenation along one axis */
  concat: { readonly axis: number };
  // contractions and indexing
  /** batched matmul `[...b, m, k] · [...b, k, n]` (same batch dims) */
  dot: null;
  /** rows of a table `[V, ...]` selected by integer indices `[...S]` */
  gather: null;
  // composites (have a decomposition into the ops above)
  /** normalisation over the last axis, without affine parameters */
  norm: {
    readonly kind: NormKind;
    readonly eps: number;
    /** FakeLN's frozen σ̄ (kind "fake" only). */
    readonly sigma?: number;
    /** CRMS: the uncompressed width d (the input has d−1 features). */
    readonly dim?: number;
  };
  /** fused scaled-dot-product attention over `[..., T, d]` operands */
  attention: { readonly causal: boolean; readonly scale: number };
  /**
   * A residual sublayer `x + body[hole := x]`: the point at which
   * normalisation placements rewrite a block. `role` names the sublayer
   * ("attn", "mlp"), `layer` is its 0-based block index.
   */
  residual: {
    readonly hole: string;
    readonly role: string;
    readonly layer: number;
  };
}

/** Every op name. */
export type Op = keyof OpArgs;

/** Ops with a decomposition into primitives (see `decompose.ts`). */
export type CompositeOp = "norm" | "attention" | "residual";

/** The union of every op's argument. */
export type Arg = OpArgs[Op];

/** How an op relates to its sources; used by interpreters and compilers. */
export type OpKind =
  | "leaf"
  | "unary"
  | "binary"
  | "compare"
  | "ternary"
  | "reduce"
  | "movement"
  | "dot"
  | "gather"
  | "composite";

/** The kind of every op. Typed so a new op must be classified. */
export const OP_KIND: Readonly<{ [K in Op]: OpKind }> = Object.freeze({
  input: "leaf",
  param: "leaf",
  const: "leaf",
  iota: "leaf",
  hole: "leaf",
  neg: "unary",
  recip: "unary",
  exp: "unary",
  log: "unary",
  sqrt: "unary",
  rsqrt: "unary",
  sin: "unary",
  cos: "unary",
  tanh: "unary",
  abs: "unary",
  cast: "unary",
  add: "binary",
  sub: "binary",
  mul: "binary",
  div: "binary",
  max: "binary",
  min: "binary",
  lt: "compare",
  le: "compare",
  eq: "compare",
  where: "ternary",
  sum: "reduce",
  rmax: "reduce",
  reshape: "movement",
  permute: "movement",
  expand: "movement",
  slice: "movement",
  pad: "movement",
  concat: "movement",
  dot: "dot",
  gather: "gather",
  norm: "composite",
  attention: "composite",
  residual: "composite",
});

/**
 * An immutable expression node. `D` is the element type, so dtypes are part
 * of the TypeScript type of every expression.
 */
export interface Expr<D extends DType = DType> {
  /** Unique, increasing id (creation order; sources have smaller ids). */
  readonly id: number;
  /** The op. */
  readonly op: Op;
  /** The element type. */
  readonly dtype: D;
  /** The shape, checked when the node was built. */
  readonly shape: Shape;
  /** Operands. */
  readonly src: readonly Expr[];
  /** The op's argument (see {@link OpArgs}). */
  readonly arg: Arg;
}

/** An expression known to have op `K` (its `arg` is typed accordingly). */
export interface ExprOf<K extends Op, D extends DType = DType> extends Expr<D> {
  /** The op. */
  readonly op: K;
  /** The op's argument. */
  readonly arg: OpArgs[K];
}

/**
 * Narrows an expression to a given op.
 *
 * @param e an expression
 * @param op an op name
 * @returns true when `e.op === op`, typing `e.arg`
 */
export function isOp<K extends Op>(e: Expr, op: K): e is ExprOf<K> {
  return e.op === op;
}

/** An abstract value: what shape/dtype inference computes for a node. */
export type Aval = { readonly dtype: DType; readonly shape: Shape };
/** A shape/dtype inference rule for op `K`. */
export type Rule<K extends Op> = (src: readonly Expr[], arg: OpArgs[K]) => Aval;

function shapes(src: readonly Expr[]): string {
  return src.map((s) => `${s.dtype}${fmtShape(s.shape)}`).join(" and ");
}

// `Cannot <op> <operands><detail>: <why>`; detail is e.g. " to [4,2]".
function fail(op: string, src: readonly Expr[], why: string, detail = ""): never {
  throw new TypeError(`Cannot ${op}${src.length ? ` ${shapes(src)}` : ""}${detail}: ${why}`);
}

function arity(op: string, src: readonly Expr[], n: number): void {
  if (src.length !== n) fail(op, src, `expects ${n} operands, got ${src.length}`);
}

// Leaves carry their aval explicitly (see mkLeaf); calling their rule is a bug.
function leaf(): never {
  throw new TypeError("Leaves are built with mkLeaf, not mk");
}

function unary(op: string, floatOnly: boolean): (src: readonly Expr[], arg: null) => Aval {
  return (src) => {
    arity(op, src, 1);
    const x = src[0]!;
    if (floatOnly && !isFloat(x.dtype)) {
      fail(op, src, `needs a float operand; cast it first (nx.cast(x, "f32"))`);
    }
    if (x.dtype === "bool") fail(op, src, "is not defined for bool");
    return { dtype: x.dtype, shape: x.shape };
  };
}

function binary(
  op: string,
  result: "same" | "bool",
): (src: readonly Expr[], arg: null) => Aval {
  return (src) => {
    arity(op, src, 2);
    const [a, b] = src as [Expr, Expr];
    if (!shapeEq(a.shape, b.shape)) {
      fail(op, src, "shapes differ (builders broadcast; primitives do not)");
    }
    if (a.dtype !== b.dtype) {
      fail(op, src, `dtypes ${a.dtype} and ${b.dtype} differ; cast one`);
    }
    if (a.dtype === "bool" && result === "same" && op !== "max" && op !== "min") {
      fail(op, src, "is not defined for bool; use nx.where or cast");
    }
    return { dtype: result === "bool" ? "bool" : a.dtype, shape: a.shape };
  };
}

// `name` is the user-facing name (rmax is nx.max).
function reduce(name: string): Rule<"sum" | "rmax"> {
  return (src, arg) => {
    arity(name, src, 1);
    const x = src[0]!;
    const what = `Cannot ${name} ${shapes(src)}`;
    const axes = normAxes(arg.axes, x.shape.length, what);
    // The interpreter and interning read arg.axes as given, so it must be canonical.
    if (axes.some((a, i) => a !== arg.axes[i])) {
      throw new RangeError(
        `${what}: primitive axes must be sorted and non-negative, got [${arg.axes.join(",")}] ` +
          `(nx.${name} normalises them)`,
      );
    }
    if (x.dtype === "bool") fail(name, src, "is not defined for bool; cast first");
    if (name === "max" && axes.some((a) => x.shape[a] === 0)) {
      fail(name, src, "max over an empty axis has no value");
    }
    return {
      dtype: x.dtype,
      shape: x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
    };
  };
}

/**
 * Shape and dtype inference for every op. Builders call it through
 * {@link mk}; it throws a `TypeError`/`RangeError` naming the op and the
 * operand shapes when the node would be ill-typed.
 */
export const RULES: { readonly [K in Op]: Rule<K> } = {
  input: leaf,
  param: leaf,
  const: leaf,
  iota: leaf,
  hole: leaf,
  neg: unary("neg", false),
  recip: unary("recip", true),
  exp: unary("exp", true),
  log: unary("log", true),
  sqrt: unary("sqrt", true),
  rsqrt: unary("rsqrt", true),
  sin: unary("sin", true),
  cos: unary("cos", true),
  tanh: unary("tanh", true),
  abs: unary("abs", false),
  cast: (src, arg) => {
    arity("cast", src, 1);
    if (!isDType(arg.dtype)) fail("cast", src, `unknown dtype "${arg.dtype}"`);
    return { dtype: arg.dtype, shape: src[0]!.shape };
  },
  add: binary("add", "same"),
  sub: binary("sub", "same"),
  mul: binary("mul", "same"),
  div: binary("div", "same"),
  max: binary("max", "same"),
  min: binary("min", "same"),
  lt: binary("lt", "bool"),
  le: binary("le", "bool"),
  eq: binary("eq", "bool"),
  where: (src) => {
    arity("where", src, 3);
    const [c, a, b] = src as [Expr, Expr, Expr];
    if (c.dtype !== "bool") fail("where", src, `condition must be bool, got ${c.dtype}`);
    if (!shapeEq(c.shape, a.shape) || !shapeEq(a.shape, b.shape)) {
      fail("where", src, "shapes differ");
    }
    if (a.dtype !== b.dtype) fail("where", src, "branch dtypes differ; cast one");
    return { dtype: a.dtype, shape: a.shape };
  },
  sum: reduce("sum"),
  rmax: reduce("max"),
  reshape: (src, arg) => {
    arity("reshape", src, 1);
    const x = src[0]!;
    const s = checkShape(arg.shape as number[], `Cannot reshape ${shapes(src)}`);
    if (numel(s) !== numel(x.shape)) {
      fail(
        "reshape",
        src,
        `${numel(x.shape)} elements cannot become ${numel(s)}`,
        ` to ${fmtShape(s)}`,
      );
    }
    return { dtype: x.dtype, shape: s };
  },
  permute: (src, arg) => {
    arity("permute", src, 1);
    const x = src[0]!;
    const p = arg.perm;
    const ok = p.length === x.shape.length &&
      [...p].sort((a, b) => a - b).every((v, i) => v === i);
    if (!ok) {
      throw new RangeError(
        `Cannot permute ${shapes(src)}: [${p.join(",")}] is not a permutation of 0..${
          x.shape.length - 1
        }`,
      );
    }
    return { dtype: x.dtype, shape: p.map((i) => x.shape[i]!) };
  },
  expand: (src, arg) => {
    arity("expand", src, 1);
    const x = src[0]!;
    const s = checkShape(arg.shape as number[], `Cannot expand ${shapes(src)}`);
    const to = ` to ${fmtShape(s)}`;
    if (s.length !== x.shape.length) {
      fail("expand", src, `ranks differ (${x.shape.length} and ${s.length}); reshape first`, to);
    }
    const bad = x.shape.findIndex((d, i) => d !== 1 && d !== s[i]);
    if (bad >= 0) {
      fail("expand", src, `axis ${bad} has size ${x.shape[bad]}; only size-1 axes can grow`, to);
    }
    return { dtype: x.dtype, shape: s };
  },
  slice: (src, arg) => {
    arity("slice", src, 1);
    const x = src[0]!;
    const r = x.shape.length;
    if (arg.starts.length !== r || arg.ends.length !== r) {
      fail(
        "slice",
        src,
        `needs ${r} starts and ends, got ${arg.starts.length} and ${arg.ends.length}`,
      );
    }
    const out = x.shape.map((d, i) => {
      const s = arg.starts[i]!, e = arg.ends[i]!;
      if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > d || s > e) {
        throw new RangeError(
          `Cannot slice ${shapes(src)}: axis ${i} range [${s}, ${e}) is outside [0, ${d}]`,
        );
      }
      return e - s;
    });
    return { dtype: x.dtype, shape: out };
  },
  pad: (src, arg) => {
    arity("pad", src, 1);
    const x = src[0]!;
    const r = x.shape.length;
    if (arg.before.length !== r || arg.after.length !== r) {
      fail(
        "pad",
        src,
        `needs ${r} before and after sizes, got ${arg.before.length} and ${arg.after.length}`,
      );
    }
    if ([...arg.before, ...arg.after].some((v) => !Number.isInteger(v) || v < 0)) {
      throw new RangeError(
        `Cannot pad ${shapes(src)}: pad sizes must be non-negative integers, got before [${
          arg.before.join(",")
        }], after [${arg.after.join(",")}]`,
      );
    }
    return {
      dtype: x.dtype,
      shape: x.shape.map((d, i) => d + arg.before[i]! + arg.after[i]!),
    };
  },
  concat: (src, arg) => {
    if (src.length < 1) fail("concat", src, "needs at least one operand");
    const first = src[0]!;
    const ax = normAxis(arg.axis, first.shape.length, `Cannot concat ${shapes(src)}`);
    if (ax !== arg.axis) {
      throw new RangeError(
        `Cannot concat ${shapes(src)}: the primitive axis must be non-negative, got ${arg.axis} ` +
          `(nx.concat normalises it)`,
      );
    }
    let total = 0;
    for (const s of src) {
      if (s.dtype !== first.dtype) fail("concat", src, "dtypes differ; cast one");
      if (
        s.shape.length !== first.shape.length ||
        s.shape.some((d, i) => i !== ax && d !== first.shape[i])
      ) {
        fail("concat", src, `sizes must match on every axis but ${ax}`);
      }
      total += s.shape[ax]!;
    }
    return {
      dtype: first.dtype,
      shape: first.shape.map((d, i) => (i === ax ? total : d)),
    };
  },
  dot: (src) => {
    arity("dot", src, 2);
    const [a, b] = src as [Expr, Expr];
    const ra = a.shape.length, rb = b.shape.length;
    if (ra < 2 || rb < 2) fail("matmul", src, "operands need rank >= 2");
    if (ra !== rb || a.shape.slice(0, -2).some((d, i) => d !== b.shape[i])) {
      fail("matmul", src, "batch dims differ (builders broadcast them)");
    }
    const k1 = a.shape[ra - 1]!, k2 = b.shape[rb - 2]!;
    if (k1 !== k2) fail("matmul", src, `inner dims ${k1} and ${k2} differ`);
    if (a.dtype !== b.dtype) fail("matmul", src, "dtypes differ; cast one");
    if (a.dtype === "bool") fail("matmul", src, "is not defined for bool");
    return {
      dtype: a.dtype,
      shape: [...a.shape.slice(0, -1), b.shape[rb - 1]!],
    };
  },
  gather: (src) => {
    arity("gather", src, 2);
    const [t, i] = src as [Expr, Expr];
    if (!isInt(i.dtype)) fail("gather", src, `indices must be i32 or u32, got ${i.dtype}`);
    if (t.shape.length < 1) fail("gather", src, "the table needs rank >= 1");
    return { dtype: t.dtype, shape: [...i.shape, ...t.shape.slice(1)] };
  },
  norm: (src, arg) => {
    arity("norm", src, 1);
    const x = src[0]!;
    if (!isFloat(x.dtype)) fail(`norm (${arg.kind})`, src, "needs a float operand");
    if (x.shape.length < 1) fail(`norm (${arg.kind})`, src, "needs rank >= 1");
    const what = `Cannot norm (${arg.kind}) ${shapes(src)}`;
    if (!(arg.eps >= 0)) throw new RangeError(`${what}: eps must be >= 0, got ${arg.eps}`);
    if (arg.kind === "fake" && !(arg.sigma !== undefined && arg.sigma > 0)) {
      throw new RangeError(`${what}: sigma must be > 0, got ${arg.sigma}`);
    }
    if (arg.kind === "crms" && !(arg.dim !== undefined && arg.dim >= 1)) {
      throw new RangeError(`${what}: dim (the uncompressed width) must be set`);
    }
    return { dtype: x.dtype, shape: x.shape };
  },
  attention: (src, arg) => {
    arity("attention", src, 3);
    const [q, k, v] = src as [Expr, Expr, Expr];
    const r = q.shape.length;
    if (r < 2 || k.shape.length !== r || v.shape.length !== r) {
      fail("attention", src, "q, k, v need the same rank >= 2 ([..., T, d])");
    }
    const batchOk = q.shape.slice(0, -2).every((d, i) => d === k.shape[i] && d === v.shape[i]);
    if (!batchOk) fail("attention", src, "leading (batch, head) dims differ");
    if (q.shape[r - 1] !== k.shape[r - 1]) fail("attention", src, "q and k head dims differ");
    if (k.shape[r - 2] !== v.shape[r - 2]) fail("attention", src, "k and v lengths differ");
    const tq = q.shape[r - 2]!, tk = k.shape[r - 2]!;
    if (arg.causal && tq > tk) {
      // Those queries' rows would be softmax over no keys: NaN.
      throw new RangeError(
        `Cannot attention ${
          shapes(src)
        }: causal attention needs Tk >= Tq (got Tq ${tq}, Tk ${tk}); ` +
          `query i sees keys j <= i + Tk − Tq, so the first ${tq - tk} queries would see none`,
      );
    }
    if (q.dtype !== k.dtype || k.dtype !== v.dtype || !isFloat(q.dtype)) {
      fail("attention", src, "q, k, v must share one float dtype");
    }
    return { dtype: q.dtype, shape: [...q.shape.slice(0, -1), v.shape[r - 1]!] };
  },
  residual: (src) => {
    arity("residual", src, 2);
    const [x, body] = src as [Expr, Expr];
    if (!shapeEq(x.shape, body.shape) || x.dtype !== body.dtype) {
      fail("residual", src, "the body must have the stream's shape and dtype");
    }
    return { dtype: x.dtype, shape: x.shape };
  },
};

// ---------------------------------------------------------------------------
// Interning

let nextId = 0;
const table = new Map<string, WeakRef<Expr>>();
const registry = new FinalizationRegistry<string>((key) => {
  const ref = table.get(key);
  if (ref && ref.deref() === undefined) table.delete(key);
});

/**
 * Canonical JSON of an op argument: sorted keys, and numbers written so
 * that NaN, ±Infinity and -0 stay distinct (JSON.stringify would not).
 *
 * @param v any JSON-like value
 * @returns a canonical string
 */
export function stableKey(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (Array.isArray(v)) return `[${v.map(stableKey).join(",")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${
      Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) =>
        `${JSON.stringify(k)}:${stableKey(o[k])}`
      ).join(",")
    }}`;
  }
  throw new TypeError(`Cannot key an op argument of type ${typeof v}`);
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

function intern(op: Op, dtype: DType, shape: Shape, src: readonly Expr[], arg: Arg): Expr {
  const key = `${op}|${dtype}|${shape.join(",")}|${stableKey(arg)}|${
    src.map((s) => s.id).join(",")
  }`;
  const hit = table.get(key)?.deref();
  if (hit) return hit;
  const e: Expr = Object.freeze({
    id: nextId++,
    op,
    dtype,
    shape: Object.freeze([...shape]),
    src: Object.freeze([...src]),
    arg: deepFreeze(arg === null ? null : structuredClone(arg)),
  });
  table.set(key, new WeakRef(e));
  registry.register(e, key);
  return e;
}

/**
 * Builds (or finds) the interned node `op(src…; arg)`, checking shapes and
 * dtypes with {@link RULES}.
 *
 * @param op a non-leaf op
 * @param src operands
 * @param arg the op's argument
 * @returns the interned node
 * @throws {TypeError | RangeError} when the node would be ill-typed
 */
export function mk<K extends Exclude<Op, LeafOp>>(
  op: K,
  src: readonly Expr[],
  arg: OpArgs[K],
): Expr {
  for (const s of src) {
    if (!s || typeof s !== "object" || typeof s.id !== "number") {
      throw new TypeError(
        `Cannot ${op}: operand ${String(s)} is not an expression; wrap numbers with nx.scalar`,
      );
    }
  }
  const { dtype, shape } = (RULES[op] as Rule<K>)(src, arg);
  return intern(op, dtype, Object.freeze([...shape]), src, arg);
}

/** Ops without operands. */
export type LeafOp = "input" | "param" | "const" | "iota" | "hole";

/**
 * Builds (or finds) an interned leaf node.
 *
 * @param op a leaf op
 * @param dtype its element type
 * @param shape its shape
 * @param arg its argument
 * @returns the interned leaf
 */
export function mkLeaf<K extends LeafOp, D extends DType>(
  op: K,
  dtype: D,
  shape: readonly number[],
  arg: OpArgs[K],
): Expr<D> {
  if (!isDType(dtype)) throw new TypeError(`Cannot make ${op}: unknown dtype "${dtype}"`);
  const s = checkShape(shape, `Cannot make ${op}`);
  if (op === "iota") {
    const axis = (arg as OpArgs["iota"]).axis;
    if (normAxis(axis, s.length, `Cannot make iota ${fmtShape(s)}`) !== axis) {
      // The interpreter reads the axis as given, so it must be canonical.
      throw new RangeError(
        `Cannot make iota ${
          fmtShape(s)
        }: the primitive axis must be non-negative, got ${axis} (nx.iota normalises it)`,
      );
    }
    if (!isInt(dtype) && !isFloat(dtype)) {
      throw new TypeError(`Cannot make iota: dtype must be numeric, got ${dtype}`);
    }
  }
  if (op === "input" || op === "param" || op === "hole") {
    const name = (arg as { name: string }).name;
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(`Cannot make ${op}: it needs a non-empty name`);
    }
  }
  return intern(op, dtype, s, [], arg) as Expr<D>;
}

/**
 * Number of live interned nodes (for tests and leak checks).
 *
 * @returns the size of the intern table
 */
export function internedCount(): number {
  return table.size;
}

// ---------------------------------------------------------------------------
// Graph utilities

/**
 * All nodes reachable from the roots, sources before users.
 *
 * @param roots output expressions
 * @returns nodes in a topological order (each once)
 */
export function toposort(roots: readonly Expr[]): Expr[] {
  const seen = new Set<number>();
  const out: Expr[] = [];
  const stack: [Expr, number][] = [];
  for (const r of roots) {
    if (seen.has(r.id)) continue;
    stack.push([r, 0]);
    seen.add(r.id);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [e, i] = top;
      if (i < e.src.length) {
        top[1]++;
        const s = e.src[i]!;
        if (!seen.has(s.id)) {
          seen.add(s.id);
          stack.push([s, 0]);
        }
      } else {
        stack.pop();
        out.push(e);
      }
    }
  }
  return out;
}

/**
 * Rebuilds a node with new sources (same op and argument), re-checking it.
 *
 * @param e a non-leaf node
 * @param src its new sources
 * @returns the interned rebuilt node (`e` itself when nothing changed)
 */
export function withSrc(e: Expr, src: readonly Expr[]): Expr {
  if (src.length === e.src.length && src.every((s, i) => s === e.src[i])) return e;
  if (OP_KIND[e.op] === "leaf") throw new TypeError(`Cannot give sources to leaf ${e.op}`);
  return mk(e.op as Exclude<Op, LeafOp>, src, e.arg as never);
}

/**
 * Replaces nodes throughout a graph (e.g. a `hole` by a value) and rebuilds
 * everything above them.
 *
 * @param roots expressions to rewrite
 * @param map replacement for each node to replace
 * @returns the rewritten roots, in order
 * @throws {TypeError} when a replacement has another shape or dtype
 */
export function substitute(roots: readonly Expr[], map: ReadonlyMap<Expr, Expr>): Expr[] {
  for (const [from, to] of map) {
    if (!shapeEq(from.shape, to.shape) || from.dtype !== to.dtype) {
      throw new TypeError(
        `Cannot substitute ${from.dtype}${fmtShape(from.shape)} (${from.op}) by ${to.dtype}${
          fmtShape(to.shape)
        } (${to.op}): shapes or dtypes differ`,
      );
    }
  }
  const memo = new Map<Expr, Expr>(map);
  for (const e of toposort(roots)) {
    if (memo.has(e)) continue;
    memo.set(e, e.src.length ? withSrc(e, e.src.map((s) => memo.get(s)!)) : e);
  }
  return roots.map((r) => memo.get(r)!);
}

/**
 * The named leaves of a graph: inputs and parameters with their avals.
 *
 * @param roots output expressions
 * @returns inputs and params, each sorted by name
 * @throws {TypeError} when one name is used with two shapes or dtypes
 */
export function leavesOf(roots: readonly Expr[]): {
  inputs: ExprOf<"input">[];
  params: ExprOf<"param">[];
} {
  const inputs = new Map<string, ExprOf<"input">>();
  const params = new Map<string, ExprOf<"param">>();
  for (const e of toposort(roots)) {
    const m = e.op === "input" ? inputs : e.op === "param" ? params : undefined;
    if (!m) continue;
    const name = (e.arg as { name: string }).name;
    const prev = m.get(name);
    if (prev && prev !== e) {
      throw new TypeError(
        `${e.op} "${name}" is used as ${prev.dtype}${fmtShape(prev.shape)} and as ${e.dtype}${
          fmtShape(e.shape)
        }; one name must have one shape and dtype`,
      );
    }
    m.set(name, e as never);
  }
  const byName = (a: { arg: { name: string } }, b: { arg: { name: string } }) =>
    a.arg.name < b.arg.name ? -1 : a.arg.name > b.arg.name ? 1 : 0;
  return {
    inputs: [...inputs.values()].sort(byName),
    params: [...params.values()].sort(byName),
  };
}
