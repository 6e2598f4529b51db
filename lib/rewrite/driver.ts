/**
 * The fixed-point rewrite driver.
 *
 * {@link rewrite} walks a graph bottom-up: each node is rebuilt from its
 * rewritten sources, then rules are applied to it until none matches. A
 * rule's output is itself rewritten (its new sources too), so the result
 * is a fixed point of the rule set. Results are memoised per node, so
 * shared subgraphs are rewritten once.
 *
 * Loops are detected two ways and reported with the rule responsible:
 * a rule whose output contains a node that is still being rewritten
 * (a cycle, e.g. `x → x·1` next to `x·1 → x`), and a step budget for
 * rules that grow the graph forever (the rule that fired most is named).
 *
 * @module
 */

import { type Expr, toposort, withSrc } from "../ir/expr.ts";
import { fmtShape, shapeEq } from "../ir/shape.ts";
import { applyRuleOnce, type RewriteRule, type RuleSet } from "./rules.ts";
import { assertValidGraph, type VerifyOptions } from "./verify.ts";

/** Counts of what a rewrite did (pass one in {@link RewriteOptions.trace}). */
export interface RewriteTrace {
  /** Rules fired, by name. */
  readonly fired: Map<string, number>;
  /** Total rule applications. */
  steps: number;
}

/** Options for {@link rewrite}. */
export interface RewriteOptions {
  /** RewriteRule applications allowed before the driver reports a loop (default 100 000). */
  maxSteps?: number;
  /** Verify the result (shapes, holes, names); `true` or verifier options. */
  verify?: boolean | VerifyOptions;
  /** Collects which rules fired. */
  trace?: RewriteTrace;
}

/**
 * Makes an empty trace for {@link RewriteOptions.trace}.
 *
 * @returns a trace with no steps
 */
export function newRewriteTrace(): RewriteTrace {
  return { fired: new Map(), steps: 0 };
}

/**
 * Rewrites expressions to a fixed point of a rule set.
 *
 * @param roots expressions to rewrite
 * @param rules the rule set
 * @param opts step budget, verification, trace
 * @returns the rewritten roots, in order
 * @throws {TypeError} when a rule changes a node's shape or dtype
 * @throws {RangeError} when a rule loops: `Cannot rewrite with "set": rule "r" loops ...`
 *
 * @example Remove multiplications by one
 * ```ts
 * import { rewrite, rule, ruleSet, pat } from "./mod.ts";
 * const mulOne = rule("x*1", pat.op("mul", { src: [pat.any("x"), pat.constant(1)] }), (b) => b.x);
 * // rewrite([e], ruleSet("simplifyRules", mulOne))
 * ```
 */
export function rewrite(
  roots: readonly Expr[],
  rules: RuleSet,
  opts: RewriteOptions = {},
): Expr[] {
  const maxSteps = opts.maxSteps ?? 100_000;
  const trace = opts.trace ?? newRewriteTrace();
  const memo = new Map<Expr, Expr>();
  // Nodes being rewritten right now, with the rule whose output holds them.
  const active = new Map<Expr, RewriteRule | undefined>();

  const loop = (by: RewriteRule | undefined, e: Expr): never => {
    const who = by ? `rule "${by.name}"` : "a rule";
    throw new RangeError(
      `Cannot rewrite with "${rules.name}": ${who} loops (its output contains ${e.op} ${e.dtype}${
        fmtShape(e.shape)
      }, which it is still rewriting); make the rule's output fail its own pattern`,
    );
  };

  const rw = (e: Expr, by: RewriteRule | undefined): Expr => {
    const hit = memo.get(e);
    if (hit) return hit;
    if (active.has(e)) loop(by, e);
    active.set(e, by);
    let cur = e;
    try {
      cur = withSrc(e, e.src.map((s) => rw(s, by)));
      if (cur !== e) {
        const m = memo.get(cur);
        if (m) {
          memo.set(e, m);
          return m;
        }
        if (active.has(cur)) loop(by, cur);
        active.set(cur, by);
      }
      let res = cur;
      const hitRule = applyRuleOnce(rules, cur);
      if (hitRule) {
        const { out, rule } = hitRule;
        if (!shapeEq(out.shape, cur.shape) || out.dtype !== cur.dtype) {
          throw new TypeError(
            `Cannot rewrite with "${rules.name}": rule "${rule.name}" turned ${cur.op} ${cur.dtype}${
              fmtShape(cur.shape)
            } into ${out.op} ${out.dtype}${fmtShape(out.shape)}; a rule must keep shape and dtype`,
          );
        }
        trace.steps++;
        trace.fired.set(rule.name, (trace.fired.get(rule.name) ?? 0) + 1);
        if (trace.steps > maxSteps) {
          const [worst] = [...trace.fired].sort((a, b) => b[1] - a[1]);
          throw new RangeError(
            `Cannot rewrite with "${rules.name}": rule "${worst![0]}" loops (fired ${
              worst![1]
            } times; ${trace.steps} steps exceed maxSteps ${maxSteps})`,
          );
        }
        res = rw(out, rule);
      }
      memo.set(e, res);
      memo.set(cur, res);
      return res;
    } finally {
      active.delete(e);
      active.delete(cur);
    }
  };

  // Visit the original graph in topological order so recursion only goes
  // as deep as the rules' new subgraphs.
  for (const e of toposort(roots)) rw(e, undefined);
  const out = roots.map((r) => memo.get(r)!);
  if (opts.verify) assertValidGraph(out, opts.verify === true ? {} : opts.verify, rules.name);
  return out;
}

/**
 * Runs rule sets one after another (each to its own fixed point).
 *
 * @param roots expressions
 * @param passes rule sets, in order
 * @param opts options for every pass (verification runs after each pass)
 * @returns the rewritten roots
 */
export function rewritePasses(
  roots: readonly Expr[],
  passes: readonly RuleSet[],
  opts: RewriteOptions = {},
): Expr[] {
  let cur = [...roots];
  for (const p of passes) cur = rewrite(cur, p, opts);
  return cur;
}
