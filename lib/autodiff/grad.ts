/**
 * Reverse-mode automatic differentiation over expression graphs.
 *
 * {@link vjp} pulls a cotangent back from an output to chosen leaves;
 * {@link grad} and {@link valueAndGrad} do so for a scalar loss. The
 * results are ordinary expressions, so a backward graph fuses and
 * compiles exactly like a forward one.
 *
 * How it works: the outputs are first decomposed into primitives (composite
 * `attention`/`residual` nodes through `lib/ir/decompose.ts`; `norm` nodes
 * too, but their value nodes are remembered so the closed-form rules of
 * {@link FUSED_VJP} can replace differentiating the decomposition). Then
 * only nodes that depend on a `wrt` leaf and have a float dtype receive a
 * cotangent; each node's incoming cotangents are summed once, and the VJP
 * rules build with simplifying constructors (no `·1`, `+0`, or constant
 * subgraphs), so the graph stays small.
 *
 * @example Gradient of a tiny regression loss
 * ```ts
 * import * as nx from "../../mod.ts";
 * import { valueAndGrad } from "./grad.ts";
 * const x = nx.input("x", [4, 3]);
 * const w = nx.param("w", [3, 1]);
 * const loss = nx.mean(nx.square(nx.matmul(x, w)));
 * const { value, grads } = valueAndGrad(loss, ["w"]);
 * // grads.w is an f32[3,1] expression; interpret or compile [value, grads.w]
 * ```
 *
 * @module
 */

import { isFloat } from "../ir/dtype.ts";
import { DECOMPOSE } from "../ir/decompose.ts";
import {
  type CompositeOp,
  type Expr,
  type ExprOf,
  isOp,
  leavesOf,
  OP_KIND,
  type OpArgs,
  toposort,
  withSrc,
} from "../ir/expr.ts";
import { fmtShape, numel, shapeEq } from "../ir/shape.ts";
import { constLike, sAddAll, sCast, sExpand, sReshape } from "./simplify.ts";
import { FUSED_VJP, type PrimitiveOp, VJP, type VjpRule } from "./vjp.ts";

/** Options for {@link vjp}, {@link grad} and {@link valueAndGrad}. */
export interface GradOptions {
  /**
   * Use the closed-form backward of `norm` nodes (default true) instead of
   * differentiating their decomposition. Both give the same values.
   */
  fusedNorm?: boolean;
  /**
   * Skip the cotangent of the max subtracted for stability in softmax and
   * logSoftmax (default true). It is exactly zero (both are invariant to
   * shifting their input along the axis), so this only removes work; it
   * applies only where the max feeds nothing but that softmax.
   */
  skipSoftmaxShift?: boolean;
}

/**
 * What to differentiate with respect to: leaf nodes (`param` or `input`),
 * parameter names, or a predicate over parameter names.
 */
export type Wrt = readonly (Expr | string)[] | ((name: string) => boolean);

interface Primal {
  roots: Expr[];
  fused: Map<Expr, { x: Expr; arg: OpArgs["norm"] }>;
}

// Decomposes composites into primitives with one memo, recording the
// decomposed value of every norm node for the fused backward rules.
function primal(roots: readonly Expr[], fusedNorm: boolean): Primal {
  const memo = new Map<Expr, Expr>();
  const fused = new Map<Expr, { x: Expr; arg: OpArgs["norm"] }>();
  const run = (root: Expr): Expr => {
    for (const n of toposort([root])) {
      if (memo.has(n)) continue;
      const src = n.src.map((s) => memo.get(s) ?? s);
      if (OP_KIND[n.op] === "composite") {
        const rule = DECOMPOSE[n.op as CompositeOp] as (s: readonly Expr[], e: Expr) => Expr;
        const d = rule(src, n);
        const out = d === n ? d : run(d);
        memo.set(n, out);
        if (fusedNorm && isOp(n, "norm")) fused.set(out, { x: src[0]!, arg: n.arg });
      } else {
        memo.set(n, n.src.length ? withSrc(n, src) : n);
      }
    }
    return memo.get(root)!;
  };
  return { roots: roots.map(run), fused };
}

function leafName(e: Expr): string {
  return (e.arg as { name: string }).name;
}

function resolveWrt(roots: readonly Expr[], wrt: Wrt): Expr[] {
  const { inputs, params } = leavesOf(roots);
  if (typeof wrt === "function") return params.filter((p) => wrt(p.arg.name));
  const byName = new Map<string, Expr>(params.map((p) => [p.arg.name, p]));
  return wrt.map((w) => {
    if (typeof w === "string") {
      const p = byName.get(w);
      if (p) return p;
      const known = params.map((q) => q.arg.name);
      const alt = inputs.some((i) => i.arg.name === w)
        ? ` ("${w}" is an input; pass the node to differentiate with respect to it)`
        : "";
      throw new RangeError(
        `Cannot differentiate with respect to "${w}": the graph has no parameter of that name${alt}. ` +
          `Parameters: ${known.length ? known.join(", ") : "(none)"}`,
      );
    }
    if (!w || typeof w !== "object" || typeof w.id !== "number") {
      throw new TypeError(`Cannot differentiate with respect to ${String(w)}: not an expression`);
    }
    if (w.op !== "param" && w.op !== "input") {
      throw new TypeError(
        `Cannot differentiate with respect to a ${w.op} node: pass a param or input leaf`,
      );
    }
    return w;
  });
}

/**
 * Pulls a cotangent back from one output to leaves (a vector–Jacobian product).
 *
 * @param output the expression differentiated (any shape, float dtype)
 * @param wrt leaves (`param`/`input` nodes) or parameter names
 * @param cotangent the cotangent of `output`: same shape (its dtype is cast)
 * @param opts options
 * @returns one cotangent expression per `wrt` entry, shaped like that leaf
 *   (a zero constant when `output` does not depend on it)
 * @throws {TypeError} when the output is not float or the cotangent's shape differs
 */
export function vjp(
  output: Expr,
  wrt: Wrt,
  cotangent: Expr,
  opts: GradOptions = {},
): Expr[] {
  return pullback(output, wrt, cotangent, opts).grads;
}

function pullback(
  output: Expr,
  wrt: Wrt,
  cotangent: Expr,
  opts: GradOptions,
): { value: Expr; grads: Expr[]; leaves: Expr[] } {
  if (!isFloat(output.dtype)) {
    throw new TypeError(
      `Cannot differentiate ${output.dtype}${fmtShape(output.shape)}: the output must be float`,
    );
  }
  if (!shapeEq(cotangent.shape, output.shape)) {
    throw new TypeError(
      `Cannot pull back a cotangent ${cotangent.dtype}${fmtShape(cotangent.shape)} through ` +
        `${output.dtype}${fmtShape(output.shape)}: shapes differ`,
    );
  }
  const leaves = resolveWrt([output], wrt);
  const { roots: [value], fused } = primal([output], opts.fusedNorm ?? true);
  const order = toposort([value!]);
  const targets = new Set(leaves);
  // need: the node depends on a wrt leaf through float values.
  const need = new Set<Expr>();
  for (const e of order) {
    if (!isFloat(e.dtype)) continue;
    if (targets.has(e) || e.src.some((s) => need.has(s))) need.add(e);
  }
  const users = new Map<Expr, Expr[]>();
  const use = (s: Expr, e: Expr) => {
    const u = users.get(s);
    if (u) u.push(e);
    else users.set(s, [e]);
  };
  for (const e of order) for (const s of e.src) use(s, e);
  // The output's own cotangent is one more (outside) use of it.
  use(value!, value!);
  const skipShift = opts.skipSoftmaxShift ?? true;
  const cts = new Map<Expr, Expr[]>();
  const push = (e: Expr, c: Expr | undefined) => {
    if (c === undefined || !need.has(e)) return;
    const list = cts.get(e);
    if (list) list.push(c);
    else cts.set(e, [c]);
  };
  push(value!, sCast(cotangent, value!.dtype));
  const result = new Map<Expr, Expr>();
  for (let i = order.length - 1; i >= 0; i--) {
    const e = order[i]!;
    const list = cts.get(e);
    if (!list) continue;
    cts.delete(e);
    const ct = sAddAll(list);
    if (ct === undefined) continue;
    if (targets.has(e)) result.set(e, ct);
    const f = fused.get(e);
    if (f) {
      push(f.x, FUSED_VJP.norm(f.x, e, f.arg, ct));
      continue;
    }
    const flags = e.src.map((s) => need.has(s));
    if (skipShift && flags[1] && isShiftOfInvariant(e, users)) flags[1] = false;
    if (!flags.some(Boolean)) continue;
    const rule = VJP[e.op as PrimitiveOp] as VjpRule<PrimitiveOp>;
    const out = rule(e as ExprOf<PrimitiveOp>, ct, flags);
    e.src.forEach((s, j) => {
      if (flags[j]) push(s, out[j]);
    });
  }
  const grads = leaves.map((l) => {
    const g = result.get(l);
    return g === undefined ? constLike(l, 0) : sExpand(g, l.shape);
  });
  return { value: value!, grads, leaves };
}

function only(users: Map<Expr, Expr[]>, e: Expr, ...want: Expr[]): boolean {
  const u = users.get(e) ?? [];
  return u.length === want.length && want.every((w) => u.includes(w));
}

function sameAxes(a: Expr, b: Expr): boolean {
  const x = (a.arg as { axes: readonly number[] }).axes,
    y = (b.arg as { axes: readonly number[] }).axes;
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function unexpand(e: Expr): Expr {
  return e.op === "expand" ? e.src[0]! : e;
}

// The broadcast of a keepdims reduction `r` back to the full shape: its
// single expand user, or `r` itself when no axis grew (size-1 axes).
function spread(r: Expr, full: Expr, users: Map<Expr, Expr[]>): Expr | undefined {
  if (shapeEq(r.shape, full.shape)) return r;
  const u = users.get(r) ?? [];
  return u.length === 1 && u[0]!.op === "expand" ? u[0] : undefined;
}

// Exactly one user, `want`, counting the link from `r` to its spread.
function feeds(users: Map<Expr, Expr[]>, r: Expr, sp: Expr, want: Expr): boolean {
  return sp === r ? only(users, r, want) : only(users, r, sp) && only(users, sp, want);
}

/**
 * Whether `z = x − expand(rmax(x))` is the stabilising shift of a softmax
 * (`exp(z)/Σexp(z)`) or logSoftmax (`z − log Σexp(z)`) whose intermediates
 * are used nowhere else: then the max's cotangent is exactly zero.
 */
function isShiftOfInvariant(z: Expr, users: Map<Expr, Expr[]>): boolean {
  if (z.op !== "sub") return false;
  const [x, em] = z.src as [Expr, Expr];
  const m = unexpand(em);
  if (m.op !== "rmax" || m.src[0] !== x || spread(m, x, users) !== em) return false;
  if (!feeds(users, m, em, z)) return false;
  const e = (users.get(z) ?? []).find((u) => u.op === "exp" && u.src[0] === z);
  if (!e) return false;
  const s = (users.get(e) ?? []).find((u) => u.op === "sum");
  if (!s || !sameAxes(s, m)) return false;
  // softmax: y = e / spread(s)
  const es = spread(s, e, users);
  const y1 = es && (users.get(es) ?? [])[0];
  if (y1 && y1.op === "div" && y1.src[0] === e && y1.src[1] === es) {
    return only(users, z, e) && feeds(users, s, es!, y1) && only(users, e, s, y1);
  }
  // logSoftmax: y = z − spread(log s)
  const lg = (users.get(s) ?? [])[0];
  if (!lg || lg.op !== "log" || !only(users, s, lg) || !only(users, e, s)) return false;
  const el = spread(lg, z, users);
  const y2 = el && (users.get(el) ?? [])[0];
  return !!y2 && y2.op === "sub" && y2.src[0] === z && y2.src[1] === el &&
    feeds(users, lg, el!, y2) && only(users, z, e, y2);
}

/** The value of a loss and its gradients, as expressions. */
export interface ValueAndGrad {
  /**
   * The loss, decomposed into primitives: use it (not the original) as the
   * output so forward and backward share one graph.
   */
  readonly value: Expr;
  /** Gradient per leaf name, each shaped like its leaf. */
  readonly grads: Record<string, Expr>;
}

/**
 * The value of a scalar loss and its gradient with respect to leaves.
 *
 * @param loss a float expression with one element (shape `[]`, `[1]`, …)
 * @param wrt param/input nodes, parameter names, or a predicate over
 *   parameter names (default: every parameter of the loss)
 * @param opts options
 * @returns `{ value, grads }` with `grads[name]` per leaf
 * @throws {TypeError} when the loss has more than one element or is not float
 * @throws {RangeError} when a named parameter is not in the graph
 */
export function valueAndGrad(
  loss: Expr,
  wrt: Wrt = () => true,
  opts: GradOptions = {},
): ValueAndGrad {
  if (numel(loss.shape) !== 1) {
    throw new TypeError(
      `Cannot take the gradient of ${loss.dtype}${fmtShape(loss.shape)}: the loss must have ` +
        `one element; reduce it first (nx.mean or nx.sum), or use vjp() with a cotangent`,
    );
  }
  const one = sReshape(constLike({ shape: [], dtype: loss.dtype }, 1), loss.shape);
  const { value, grads, leaves } = pullback(loss, wrt, one, opts);
  const out: Record<string, Expr> = {};
  leaves.forEach((l, i) => {
    const name = leafName(l);
    if (Object.hasOwn(out, name) && out[name] !== grads[i]) {
      throw new TypeError(
        `Cannot name gradients: an input and a parameter are both called "${name}"`,
      );
    }
    out[name] = grads[i]!;
  });
  return { value, grads: out };
}

/**
 * The gradient of a scalar loss with respect to leaves.
 *
 * @param loss a float expression with one element
 * @param wrt param/input nodes, parameter names, or a predicate over
 *   parameter names (default: every parameter of the loss)
 * @param opts options
 * @returns gradient expressions by leaf name
 *
 * @example
 * ```ts
 * import * as nx from "../../mod.ts";
 * import { grad } from "./grad.ts";
 * const w = nx.param("w", [3]);
 * const g = grad(nx.sum(nx.square(w)), ["w"]); // g.w is 2·w
 * ```
 */
export function grad(
  loss: Expr,
  wrt: Wrt = () => true,
  opts: GradOptions = {},
): Record<string, Expr> {
  return valueAndGrad(loss, wrt, opts).grads;
}
