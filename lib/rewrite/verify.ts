/**
 * The graph verifier, run after each rewrite pass in tests.
 *
 * It re-derives every node's shape and dtype from its sources (so a graph
 * assembled by hand or by a buggy rule cannot pass), checks that holes
 * only occur inside the body of the residual that binds them, that each
 * named leaf has one shape, and then runs invariant rules: patterns whose
 * check returns a message when the invariant fails.
 *
 * @module
 */

import { type Expr, leavesOf, type Op, OP_KIND, type OpArgs, RULES, toposort } from "../ir/expr.ts";
import { fmtShape, shapeEq } from "../ir/shape.ts";
import { match, type Pat, pat, type PatBindings } from "./pattern.ts";

/** An invariant: when the pattern matches, `check` returns a problem or undefined. */
export interface GraphInvariant {
  /** A name for reports. */
  readonly name: string;
  /** Which nodes it concerns. */
  readonly pattern: Pat;
  /** The problem with a matched node, or undefined when it is fine. */
  readonly check: (b: PatBindings, e: Expr) => string | undefined;
}

/** Options for {@link verifyGraph}. */
export interface VerifyOptions {
  /** Extra invariants (after the default ones). */
  invariants?: readonly GraphInvariant[];
  /** Ops that must not occur (e.g. `["residual"]` after placement). */
  forbid?: readonly Op[];
}

/** The invariants every graph must satisfy. */
export const DEFAULT_INVARIANTS: readonly GraphInvariant[] = Object.freeze([
  {
    name: "finite norm constants",
    pattern: pat.op("norm"),
    check: (_b: PatBindings, e: Expr) => {
      const a = e.arg as OpArgs["norm"];
      return Number.isFinite(a.eps) && (a.sigma === undefined || Number.isFinite(a.sigma))
        ? undefined
        : `norm (${a.kind}) has a non-finite constant`;
    },
  },
  {
    name: "finite attention scale",
    pattern: pat.op("attention"),
    check: (_b: PatBindings, e: Expr) =>
      Number.isFinite((e.arg as OpArgs["attention"]).scale)
        ? undefined
        : "attention has a non-finite scale",
  },
]);

function describe(e: Expr): string {
  return `%${e.id} ${e.op} ${e.dtype}${fmtShape(e.shape)}`;
}

/**
 * Lists what is wrong with a graph (empty when it is valid).
 *
 * @param roots the graph's outputs
 * @param opts extra invariants and forbidden ops
 * @returns one message per problem
 */
export function verifyGraph(roots: readonly Expr[], opts: VerifyOptions = {}): string[] {
  const problems: string[] = [];
  const order = toposort(roots);
  // Holes still open below each node (bound by an enclosing residual body).
  const open = new Map<Expr, ReadonlySet<string>>();
  const forbid = new Set(opts.forbid ?? []);
  const invariants = [...DEFAULT_INVARIANTS, ...(opts.invariants ?? [])];
  for (const e of order) {
    if (forbid.has(e.op)) problems.push(`${describe(e)}: op "${e.op}" is not allowed here`);
    for (const s of e.src) {
      if (s.id >= e.id) problems.push(`${describe(e)}: source ${describe(s)} is newer (cycle?)`);
    }
    if (OP_KIND[e.op] !== "leaf") {
      try {
        // deno-lint-ignore no-explicit-any
        const aval = (RULES[e.op] as any)(e.src, e.arg) as { dtype: string; shape: number[] };
        if (aval.dtype !== e.dtype || !shapeEq(aval.shape, e.shape)) {
          problems.push(
            `${describe(e)}: its sources give ${aval.dtype}${fmtShape(aval.shape)}`,
          );
        }
      } catch (err) {
        problems.push(`${describe(e)}: ${(err as Error).message}`);
      }
    }
    let holes: Set<string>;
    if (e.op === "hole") holes = new Set([(e.arg as OpArgs["hole"]).name]);
    else if (e.op === "residual") {
      holes = new Set(open.get(e.src[0]!) ?? []);
      const name = (e.arg as OpArgs["residual"]).hole;
      for (const h of open.get(e.src[1]!) ?? []) if (h !== name) holes.add(h);
    } else {
      holes = new Set();
      for (const s of e.src) for (const h of open.get(s) ?? []) holes.add(h);
    }
    open.set(e, holes);
    for (const inv of invariants) {
      const b = match(inv.pattern, e);
      if (!b) continue;
      const msg = inv.check(b, e);
      if (msg !== undefined) problems.push(`${describe(e)}: ${inv.name}: ${msg}`);
    }
  }
  for (const r of roots) {
    const h = open.get(r);
    if (h && h.size) {
      problems.push(`output ${describe(r)} has unbound holes: ${[...h].join(", ")}`);
    }
  }
  try {
    leavesOf(roots);
  } catch (err) {
    problems.push((err as Error).message);
  }
  return problems;
}

/**
 * Throws when {@link verifyGraph} finds problems.
 *
 * @param roots the graph's outputs
 * @param opts verifier options
 * @param pass the pass that produced the graph, for the message
 * @throws {TypeError} listing the problems
 */
export function assertValidGraph(
  roots: readonly Expr[],
  opts: VerifyOptions = {},
  pass = "graph",
): void {
  const p = verifyGraph(roots, opts);
  if (p.length) {
    throw new TypeError(
      `Cannot verify the result of "${pass}": ${p.length} problem(s):\n  ${
        p.slice(0, 20).join("\n  ")
      }`,
    );
  }
}
