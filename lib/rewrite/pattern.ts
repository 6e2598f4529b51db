/**
 * Patterns over expression nodes and the matcher.
 *
 * A {@link Pat} constrains a node's op, dtype, argument and sources, and
 * may bind the node to a name. Binding one name twice requires the same
 * node; since nodes are interned, "the same node" is structural equality,
 * checked by identity. Patterns are plain frozen data, so rules that use
 * them are data too.
 *
 * @example Match `x * x` and bind `x`
 * ```ts
 * import { match, pat } from "./pattern.ts";
 * const square = pat.op("mul", { src: [pat.any("x"), pat.any("x")] });
 * // match(square, e) gives { x } when both operands are one node
 * ```
 *
 * @module
 */

import type { DType } from "../ir/dtype.ts";
import type { Expr, Op, OpArgs } from "../ir/expr.ts";

/** A pattern over one expression node (all given constraints must hold). */
export interface Pat {
  /** The op, or a set of ops (any op when absent). */
  readonly op?: Op | readonly Op[];
  /** The dtype, or a set of dtypes (any when absent). */
  readonly dtype?: DType | readonly DType[];
  /** Binds the matched node to this name; a second use must be the same node. */
  readonly name?: string;
  /** Patterns for the sources, one per operand (the arity must match exactly). */
  readonly src?: readonly Pat[];
  /** For two operands: also try them swapped (for commutative ops). */
  readonly commute?: boolean;
  /** A predicate on the op's argument. */
  // deno-lint-ignore no-explicit-any
  readonly arg?: (arg: any, e: Expr) => boolean;
  /** A predicate on the node and the bindings made so far. */
  readonly where?: (e: Expr, b: Readonly<PatBindings>) => boolean;
}

/** Names bound by a successful match. */
export type PatBindings = Record<string, Expr>;

/** Options of {@link pat.op}, with the argument predicate typed by op. */
export interface OpPatOptions<K extends Op> {
  /** Patterns for the sources. */
  src?: readonly Pat[];
  /** Bind the node to a name. */
  name?: string;
  /** Also try swapped operands. */
  commute?: boolean;
  /** Required dtype(s). */
  dtype?: DType | readonly DType[];
  /** A predicate on the typed argument. */
  arg?: (arg: OpArgs[K], e: Expr) => boolean;
  /** A predicate on the node and the bindings so far. */
  where?: (e: Expr, b: Readonly<PatBindings>) => boolean;
}

function freezePat(p: Pat): Pat {
  return Object.freeze({ ...p, src: p.src ? Object.freeze([...p.src]) : undefined });
}

/** Pattern builders. */
export const pat: {
  /**
   * Any node, optionally bound to a name.
   * @param name a binding name
   * @returns the pattern
   */
  any(name?: string): Pat;
  /**
   * A node with a given op (or one of several ops).
   * @param op an op or a list of ops
   * @param opts sources, name, arg predicate, dtype, commute
   * @returns the pattern
   */
  op<K extends Op>(op: K | readonly K[], opts?: OpPatOptions<K>): Pat;
  /**
   * A `param` leaf whose name equals the string or matches the RegExp.
   * @param name the parameter name or a RegExp over names
   * @param bind a binding name
   * @returns the pattern
   */
  param(name: string | RegExp, bind?: string): Pat;
  /**
   * A `const` leaf, optionally with a given value.
   * @param value the fill value (any when absent)
   * @param bind a binding name
   * @returns the pattern
   */
  constant(value?: number, bind?: string): Pat;
  /**
   * A `residual` node by role and layer predicate, binding `x` and `body`.
   * @param role a role or a predicate on it
   * @param layer a predicate on the 0-based layer (any when absent)
   * @param name a binding name for the node
   * @returns the pattern
   */
  residual(
    role: string | ((role: string) => boolean),
    layer?: (layer: number) => boolean,
    name?: string,
  ): Pat;
} = Object.freeze({
  any(name?: string): Pat {
    return freezePat({ name });
  },
  op<K extends Op>(op: K | readonly K[], opts: OpPatOptions<K> = {}): Pat {
    return freezePat({
      op: typeof op === "string" ? op : Object.freeze([...op]),
      src: opts.src,
      name: opts.name,
      commute: opts.commute,
      dtype: opts.dtype,
      arg: opts.arg as Pat["arg"],
      where: opts.where,
    });
  },
  param(name: string | RegExp, bind?: string): Pat {
    const test = typeof name === "string" ? (n: string) => n === name : (n: string) => name.test(n);
    return freezePat({ op: "param", name: bind, arg: (a: { name: string }) => test(a.name) });
  },
  constant(value?: number, bind?: string): Pat {
    return freezePat({
      op: "const",
      name: bind,
      arg: value === undefined ? undefined : (a: { value: number }) => Object.is(a.value, value),
    });
  },
  residual(
    role: string | ((role: string) => boolean),
    layer?: (layer: number) => boolean,
    name?: string,
  ): Pat {
    const roleOk = typeof role === "string" ? (r: string) => r === role : role;
    return freezePat({
      op: "residual",
      name,
      src: [pat.any("x"), pat.any("body")],
      arg: (a: OpArgs["residual"]) => roleOk(a.role) && (layer === undefined || layer(a.layer)),
    });
  },
});

function opOk(p: Pat, e: Expr): boolean {
  if (p.op === undefined) return true;
  return typeof p.op === "string" ? p.op === e.op : p.op.includes(e.op);
}

function dtypeOk(p: Pat, e: Expr): boolean {
  if (p.dtype === undefined) return true;
  return typeof p.dtype === "string" ? p.dtype === e.dtype : p.dtype.includes(e.dtype);
}

function go(p: Pat, e: Expr, b: PatBindings): PatBindings | undefined {
  if (!opOk(p, e) || !dtypeOk(p, e)) return undefined;
  if (p.arg && !p.arg(e.arg, e)) return undefined;
  let out = b;
  if (p.name !== undefined) {
    const prev = out[p.name];
    if (prev !== undefined && prev !== e) return undefined;
    if (prev === undefined) out = { ...out, [p.name]: e };
  }
  if (p.src) {
    if (p.src.length !== e.src.length) return undefined;
    const direct = srcs(p.src, e.src, out);
    if (direct) out = direct;
    else if (p.commute && e.src.length === 2) {
      const swapped = srcs(p.src, [e.src[1]!, e.src[0]!], out);
      if (!swapped) return undefined;
      out = swapped;
    } else return undefined;
  }
  if (p.where && !p.where(e, out)) return undefined;
  return out;
}

function srcs(ps: readonly Pat[], es: readonly Expr[], b: PatBindings): PatBindings | undefined {
  let out: PatBindings | undefined = b;
  for (let i = 0; i < ps.length && out; i++) out = go(ps[i]!, es[i]!, out);
  return out;
}

/**
 * Matches a pattern against a node.
 *
 * @param p the pattern
 * @param e the node
 * @param bindings names already bound (a repeated name must be the same node)
 * @returns the bindings on success, or undefined
 */
export function match(
  p: Pat,
  e: Expr,
  bindings: Readonly<PatBindings> = {},
): PatBindings | undefined {
  return go(p, e, { ...bindings });
}

/**
 * The ops a pattern can match at its root (undefined: any op), used to
 * index rules by op.
 *
 * @param p a pattern
 * @returns the root ops, or undefined when unconstrained
 */
export function rootOps(p: Pat): readonly Op[] | undefined {
  if (p.op === undefined) return undefined;
  return typeof p.op === "string" ? [p.op] : p.op;
}
