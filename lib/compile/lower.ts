/**
 * Lowering: evaluates expression nodes at symbolic indices into kernel IR.
 *
 * `val(node, index)` returns a {@link Ref} for the node's value at that
 * index, emitting loads for nodes read from buffers, index arithmetic for
 * views (reshape, permute, expand, slice, pad, concat, gather), loops for
 * reductions, and the decomposition of `norm` nodes. Each value is placed in
 * the outermost block that binds every variable its index uses, and
 * (node, index) pairs are bound once.
 *
 * @module
 */

import { DECOMPOSE } from "../ir/decompose.ts";
import { type DType, isFloat, roundTo } from "../ir/dtype.ts";
import { type Expr, type ExprOf, isOp, OP_KIND } from "../ir/expr.ts";
import { numel } from "../ir/shape.ts";
import {
  add,
  clamp,
  constOf,
  delinearize,
  ext,
  freeVars,
  ivar,
  type Lin,
  linearize,
  range,
  reshapeIndex,
} from "./index_expr.ts";
import type { IndexCond, KExpr, Ref, Stmt } from "./kir.ts";

/** A scope: the kernel root, a loop body, or a hook function body. */
export interface Block {
  /** statements emitted here */
  readonly stmts: Stmt[];
  /** variables (and opaque values) first bound by this block */
  readonly binds: Set<string>;
  /** enclosing block */
  readonly parent: Block | undefined;
  /** values bound here, by `node@index` */
  readonly cse: Map<string, Ref>;
  /** how many times this block runs per kernel invocation */
  readonly trip: number;
  /** nesting depth (root 0) */
  readonly depth: number;
}

/**
 * Makes a root block.
 *
 * @param binds the variables it binds
 * @returns the block
 */
export function rootBlock(binds: readonly string[]): Block {
  return { stmts: [], binds: new Set(binds), parent: undefined, cse: new Map(), trip: 1, depth: 0 };
}

/** What the lowering asks of its caller. */
export interface LowerHost {
  /** the binding name a node is read from, or undefined when it is computed here */
  load(e: Expr): string | undefined;
  /** a stable name for a node in comments (default `%id`) */
  label?(e: Expr): string;
}

const lowest = (d: DType): number => isFloat(d) ? -Infinity : d === "i32" ? -2147483648 : 0;

const lit = (value: number, dtype: DType): Ref => ({
  r: "c",
  value: isFloat(dtype) ? value : roundTo(dtype, value),
  dtype,
});

/** Evaluates literal-only elementwise ops in float64, as the interpreter does. */
function fold(op: string, dtype: DType, argDtype: DType, a: number[]): number | undefined {
  const int = argDtype === "i32" || argDtype === "u32";
  const [x = 0, y = 0, z = 0] = a;
  let r: number;
  switch (op) {
    case "neg":
      r = -x;
      break;
    case "recip":
      r = 1 / x;
      break;
    case "exp":
      r = Math.exp(x);
      break;
    case "log":
      r = Math.log(x);
      break;
    case "sqrt":
      r = Math.sqrt(x);
      break;
    case "rsqrt":
      r = 1 / Math.sqrt(x);
      break;
    case "sin":
      r = Math.sin(x);
      break;
    case "cos":
      r = Math.cos(x);
      break;
    case "tanh":
      r = Math.tanh(x);
      break;
    case "abs":
      r = Math.abs(x);
      break;
    case "cast":
      r = x;
      break;
    case "add":
      r = x + y;
      break;
    case "sub":
      r = x - y;
      break;
    case "mul":
      r = int ? Number(BigInt.asIntN(64, BigInt(x) * BigInt(y))) : x * y;
      break;
    case "div":
      r = int ? (y === 0 ? 0 : Math.trunc(x / y)) : x / y;
      break;
    case "max":
      r = Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x, y);
      break;
    case "min":
      r = Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x, y);
      break;
    case "lt":
      r = x < y ? 1 : 0;
      break;
    case "le":
      r = x <= y ? 1 : 0;
      break;
    case "eq":
      r = x === y ? 1 : 0;
      break;
    case "where":
      r = x ? y : z;
      break;
    default:
      return undefined;
  }
  // round to the value's dtype as a GPU register would hold it
  return isFloat(dtype) ? Math.fround(r) : roundTo(dtype, r);
}

/** Nodes a norm decomposes into, cached per norm node. */
const normCache = new WeakMap<Expr, Expr>();

/**
 * The primitive expression a `norm` node stands for.
 *
 * @param e a norm node
 * @returns its decomposition over the same source
 */
export function normBody(e: Expr): Expr {
  let d = normCache.get(e);
  if (!d) {
    d = DECOMPOSE.norm(e.src, e as ExprOf<"norm">);
    normCache.set(e, d);
  }
  return d;
}

/**
 * Forward index map of a bijective view: the index in `view` of the element
 * at `idx` of its source.
 *
 * @param view a reshape or permute node
 * @param idx an index of its source
 * @returns the index in the view
 */
export function forwardView(view: Expr, idx: readonly Lin[]): Lin[] {
  if (isOp(view, "reshape")) return reshapeIndex(idx, view.src[0]!.shape, view.shape);
  if (isOp(view, "permute")) return view.arg.perm.map((p) => idx[p]!);
  throw new Error(`Internal error: ${view.op} is not a bijective view`);
}

/** Builds kernel IR for expression values. */
export class Lowerer {
  #host: LowerHost;
  #cur: Block;
  #n = 0;
  #blockOf = new Map<string, Block>();
  /** evaluations per reduction node, weighted by block trip counts */
  readonly reductionEvals: Map<Expr, number> = new Map();
  /** every op evaluated (for explain), in first-use order */
  readonly ops: Set<Expr> = new Set();
  /** total statement executions per invocation (a cost estimate) */
  work = 0;
  /** for reductions inside a norm's decomposition: the norm node */
  readonly ownerOf: Map<Expr, Expr> = new Map();
  #owner: Expr | undefined;

  /**
   * @param host tells which nodes are loaded from buffers
   * @param root the block to start in
   */
  constructor(host: LowerHost, root: Block) {
    this.#host = host;
    this.#cur = root;
  }

  /** The current block. */
  get block(): Block {
    return this.#cur;
  }

  /**
   * Makes a fresh name.
   *
   * @param p a prefix
   * @returns a unique name
   */
  fresh(p: string): string {
    return `${p}${this.#n++}`;
  }

  /**
   * Opens a loop in the current block; runs `body` inside it.
   *
   * @param n trip count
   * @param body emits the loop body, given the loop variable
   * @param at the block to put the loop in (default: current)
   */
  loop(n: number, body: (v: Lin) => void, at: Block = this.#cur): void {
    const name = this.fresh("r");
    const blk: Block = {
      stmts: [],
      binds: new Set([name]),
      parent: at,
      cse: new Map(),
      trip: at.trip * n,
      depth: at.depth + 1,
    };
    const saved = this.#cur;
    this.#cur = blk;
    body(ivar(name, n));
    this.#cur = saved;
    at.stmts.push({ s: "loop", v: name, n, body: blk.stmts });
  }

  /**
   * Emits a statement into the current block.
   *
   * @param s the statement
   */
  emit(s: Stmt): void {
    this.#cur.stmts.push(s);
    this.work += this.#cur.trip;
  }

  /**
   * Registers a known value for a node at an index (epilogues start from the
   * accumulator this way).
   *
   * @param e the node
   * @param idx its index
   * @param ref its value
   */
  seed(e: Expr, idx: readonly Lin[], ref: Ref): void {
    this.#cur.cse.set(keyOf(e, idx), ref);
    if (ref.r === "v") this.#blockOf.set(ref.name, this.#cur);
  }

  #place(idx: readonly Lin[], deps: readonly Ref[]): Block {
    const fv = new Set<string>();
    for (const x of idx) freeVars(x, fv);
    let target: Block | undefined;
    for (let b: Block | undefined = this.#cur; b; b = b.parent) {
      if ([...fv].some((v) => b!.binds.has(v))) {
        target = b;
        break;
      }
    }
    let best = target ?? this.#root();
    for (const d of deps) {
      if (d.r !== "v") continue;
      const b = this.#blockOf.get(d.name);
      if (b && b.depth > best.depth) best = b;
    }
    return best;
  }

  #root(): Block {
    let b = this.#cur;
    while (b.parent) b = b.parent;
    return b;
  }

  #let(blk: Block, dtype: DType, x: KExpr, note?: string): Ref {
    const name = this.fresh("v");
    blk.stmts.push({ s: "let", name, dtype, x, note });
    this.work += blk.trip;
    this.#blockOf.set(name, blk);
    return { r: "v", name, dtype };
  }

  #lookup(key: string): Ref | undefined {
    for (let b: Block | undefined = this.#cur; b; b = b.parent) {
      const hit = b.cse.get(key);
      if (hit) return hit;
    }
    return undefined;
  }

  /**
   * The value of `e` at `idx`.
   *
   * @param e a node
   * @param idx one index expression per axis of `e`
   * @returns a reference to the value
   */
  val(e: Expr, idx: readonly Lin[]): Ref {
    const key = keyOf(e, idx);
    const hit = this.#lookup(key);
    if (hit) return hit;
    const ref = this.#compute(e, idx);
    if (ref.r === "v") {
      const blk = this.#blockOf.get(ref.name) ?? this.#cur;
      // the value may live deeper than the current chain only if just made here
      blk.cse.set(key, ref);
    }
    return ref;
  }

  #compute(e: Expr, idx: readonly Lin[]): Ref {
    const buf = e.op === "const" || e.op === "iota" ? undefined : this.#host.load(e);
    if (buf !== undefined) {
      const at = this.#place(idx, []);
      return this.#let(
        at,
        e.dtype,
        { e: "load", buf, idx: linearize(idx, e.shape) },
        this.#note(e),
      );
    }
    if (!this.#owner) this.ops.add(e);
    switch (OP_KIND[e.op]) {
      case "leaf": {
        if (isOp(e, "const")) return lit(e.arg.value, e.dtype);
        if (isOp(e, "iota")) {
          const ix = idx[e.arg.axis]!;
          const c = constOf(ix);
          if (c !== undefined) return lit(c, e.dtype);
          return this.#let(this.#place([ix], []), e.dtype, { e: "index", ix }, "iota");
        }
        throw new Error(`Internal error: ${e.op} leaf "${leafName(e)}" has no buffer`);
      }
      case "unary":
      case "binary":
      case "compare":
      case "ternary": {
        const args = e.src.map((s) => this.val(s, idx));
        const argDtype = e.src[e.op === "where" ? 1 : 0]!.dtype;
        if (args.every((a) => a.r === "c")) {
          const v = fold(e.op, e.dtype, argDtype, args.map((a) => (a as { value: number }).value));
          if (v !== undefined) return lit(v, e.dtype);
        }
        return this.#let(
          this.#place(idx, args),
          e.dtype,
          { e: "op", op: e.op, args, argDtype },
          e.op,
        );
      }
      case "reduce":
        return this.#reduce(e, idx);
      case "movement":
        return this.#view(e, idx);
      case "gather":
        return this.#gather(e, idx);
      case "composite":
        if (isOp(e, "norm")) {
          const saved = this.#owner;
          this.#owner ??= e;
          try {
            return this.val(normBody(e), idx);
          } finally {
            this.#owner = saved;
          }
        }
        throw new Error(`Internal error: composite ${e.op} must be its own kernel here`);
      case "dot":
        throw new Error("Internal error: dot must be its own kernel here");
    }
  }

  #note(e: Expr): string {
    if (e.op === "input" || e.op === "param") return `${e.op} "${leafName(e)}"`;
    return `${this.#host.label?.(e) ?? `%${e.id}`} ${e.op}`;
  }

  #reduce(e: Expr, idx: readonly Lin[]): Ref {
    const src = e.src[0]!;
    const axes = (e.arg as { axes: readonly number[] }).axes;
    const sizes = axes.map((a) => src.shape[a]!);
    const n = numel(sizes);
    const op = e.op === "sum" ? "sum" : "max";
    if (n === 0) return lit(op === "sum" ? 0 : lowest(e.dtype), e.dtype);
    const srcIdx = (parts: readonly Lin[]) =>
      src.shape.map((_, a) => (axes.includes(a) ? parts[axes.indexOf(a)]! : idx[a]!));
    if (n === 1) return this.val(src, srcIdx(sizes.map(() => add(0))));
    const at = this.#place(idx, []);
    const name = this.fresh("acc");
    at.stmts.push({
      s: "var",
      name,
      dtype: e.dtype,
      init: lit(op === "sum" ? 0 : lowest(e.dtype), e.dtype),
    });
    this.#blockOf.set(name, at);
    const saved = this.#cur;
    this.#cur = at;
    this.loop(n, (r) => {
      const v = this.val(src, srcIdx(delinearize(r, sizes)));
      this.emit({ s: "acc", name, op, val: v, dtype: e.dtype });
    });
    this.#cur = saved;
    this.reductionEvals.set(e, (this.reductionEvals.get(e) ?? 0) + at.trip);
    if (this.#owner) this.ownerOf.set(e, this.#owner);
    return { r: "v", name, dtype: e.dtype };
  }

  #select(conds: IndexCond[], v: Ref, e: Expr, idx: readonly Lin[]): Ref {
    const live = conds.filter((c) => {
      const [lo, hi] = range(c.x);
      return !(lo >= c.lo && hi <= c.hi);
    });
    if (live.length === 0) return v;
    if (
      live.some((c) => {
        const [lo, hi] = range(c.x);
        return hi < c.lo || lo > c.hi;
      })
    ) {
      return lit(0, e.dtype);
    }
    const at = this.#place(idx, [v]);
    const c = this.#let(at, "bool", { e: "inrange", conds: live }, `${e.op} bounds`);
    return this.#let(at, e.dtype, { e: "select", c, a: v, b: lit(0, e.dtype) }, e.op);
  }

  #view(e: Expr, idx: readonly Lin[]): Ref {
    const src = e.src[0]!;
    if (isOp(e, "reshape")) return this.val(src, reshapeIndex(idx, e.shape, src.shape));
    if (isOp(e, "permute")) {
      const s = new Array<Lin>(idx.length);
      e.arg.perm.forEach((p, i) => (s[p] = idx[i]!));
      return this.val(src, s);
    }
    if (isOp(e, "expand")) {
      return this.val(src, src.shape.map((d, a) => (d === 1 ? add(0) : idx[a]!)));
    }
    if (isOp(e, "slice")) return this.val(src, idx.map((x, a) => add(x, e.arg.starts[a]!)));
    if (isOp(e, "pad")) {
      const conds: IndexCond[] = [];
      const s = idx.map((x, a) => {
        const b = e.arg.before[a]!, n = src.shape[a]!;
        if (b === 0 && e.arg.after[a] === 0) return x;
        if (n === 0) return add(0);
        conds.push({ x, lo: b, hi: b + n - 1 });
        return add(clamp(x, b, b + n - 1), -b);
      });
      if (src.shape.some((d) => d === 0)) return lit(0, e.dtype);
      return this.#select(conds, this.val(src, s), e, idx);
    }
    if (isOp(e, "concat")) {
      const ax = e.arg.axis;
      const x = idx[ax]!;
      const [xlo, xhi] = range(x);
      let off = 0;
      const parts: { src: Expr; lo: number; hi: number }[] = [];
      for (const s of e.src) {
        const n = s.shape[ax]!;
        if (n > 0 && off + n - 1 >= xlo && off <= xhi) {
          parts.push({ src: s, lo: off, hi: off + n - 1 });
        }
        off += n;
      }
      const valOf = (p: { src: Expr; lo: number; hi: number }) =>
        this.val(p.src, idx.map((v, a) => (a === ax ? add(clamp(v, p.lo, p.hi), -p.lo) : v)));
      let r = valOf(parts[parts.length - 1]!);
      for (let i = parts.length - 2; i >= 0; i--) {
        const p = parts[i]!;
        const v = valOf(p);
        const at = this.#place(idx, [v, r]);
        const c = this.#let(
          at,
          "bool",
          { e: "inrange", conds: [{ x, lo: p.lo, hi: p.hi }] },
          "concat part",
        );
        r = this.#let(at, e.dtype, { e: "select", c, a: v, b: r }, "concat");
      }
      return r;
    }
    throw new Error(`Internal error: unknown movement op ${e.op}`);
  }

  #gather(e: Expr, idx: readonly Lin[]): Ref {
    const [table, ind] = e.src as [Expr, Expr];
    const s = ind.shape.length;
    const rows = table.shape[0]!;
    const iv = this.val(ind, idx.slice(0, s));
    if (rows === 0) return lit(0, e.dtype);
    const at = this.#place(idx.slice(0, s), [iv]);
    const g = this.#let(at, "u32", { e: "gidx", v: iv, n: rows }, "gather row");
    const ok = this.#let(at, "bool", { e: "gok", v: iv, n: rows }, "gather in range");
    const gname = (g as { name: string }).name;
    at.binds.add(gname);
    const tv = this.val(table, [ext(gname, 0, rows - 1), ...idx.slice(s)]);
    const at2 = this.#place(idx, [tv, ok]);
    return this.#let(at2, e.dtype, { e: "select", c: ok, a: tv, b: lit(0, e.dtype) }, "gather");
  }
}

function keyOf(e: Expr, idx: readonly Lin[]): string {
  return `${e.id}@${idx.map((x) => x.key).join(",")}`;
}

function leafName(e: Expr): string {
  return (e.arg as { name?: string } | null)?.name ?? e.op;
}
