/**
 * Rules and rule sets: rewrites as data.
 *
 * A {@link RewriteRule} is a name, a {@link Pat} and a function from the bindings
 * to a replacement node (or undefined to decline). A {@link RuleSet} is an
 * ordered list of rules indexed by root op; sets compose by concatenation,
 * and the first rule that matches and returns a node wins.
 *
 * @module
 */

import type { Expr, Op } from "../ir/expr.ts";
import { match, type Pat, type PatBindings, rootOps } from "./pattern.ts";

/** A rewrite rule. */
export interface RewriteRule {
  /** A name reported in traces and loop errors, e.g. "pre-ln/attn". */
  readonly name: string;
  /** What the rule matches. */
  readonly pattern: Pat;
  /**
   * The replacement: a node with the matched node's shape and dtype, or
   * undefined to decline (the driver then tries the next rule).
   */
  readonly rewrite: (b: PatBindings, e: Expr) => Expr | undefined;
}

/** An ordered, op-indexed collection of rules. */
export interface RuleSet {
  /** A name for traces and errors. */
  readonly name: string;
  /** The rules, in priority order. */
  readonly rules: readonly RewriteRule[];
  /** Rules that can match a node with a given op, in priority order. */
  candidates(op: Op): readonly RewriteRule[];
}

/**
 * Makes a rule.
 *
 * @param name a name for traces and loop errors
 * @param pattern what it matches
 * @param rewrite the replacement (undefined declines)
 * @returns the frozen rule
 */
export function rule(
  name: string,
  pattern: Pat,
  rewrite: (b: PatBindings, e: Expr) => Expr | undefined,
): RewriteRule {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError("Cannot make a rule: it needs a non-empty name");
  }
  return Object.freeze({ name, pattern, rewrite });
}

/**
 * Makes a rule set from rules and other rule sets (flattened in order, so
 * earlier entries take priority).
 *
 * @param name a name for the set
 * @param parts rules and rule sets
 * @returns the rule set
 */
export function ruleSet(name: string, ...parts: readonly (RewriteRule | RuleSet)[]): RuleSet {
  const rules: RewriteRule[] = [];
  for (const p of parts) {
    if ("rules" in p) rules.push(...p.rules);
    else if ("pattern" in p) rules.push(p);
    else throw new TypeError(`Cannot build rule set "${name}": ${String(p)} is not a rule`);
  }
  const byOp = new Map<Op, RewriteRule[]>();
  const anyOp: RewriteRule[] = [];
  const order = new Map(rules.map((r, i) => [r, i]));
  for (const r of rules) {
    const ops = rootOps(r.pattern);
    if (!ops) anyOp.push(r);
    else for (const op of ops) byOp.set(op, [...(byOp.get(op) ?? []), r]);
  }
  const cache = new Map<Op, readonly RewriteRule[]>();
  return Object.freeze({
    name,
    rules: Object.freeze(rules),
    candidates(op: Op): readonly RewriteRule[] {
      let c = cache.get(op);
      if (!c) {
        c = [...(byOp.get(op) ?? []), ...anyOp].sort((a, b) => order.get(a)! - order.get(b)!);
        cache.set(op, c);
      }
      return c;
    },
  });
}

/**
 * Applies the first matching rule of a set to one node (no recursion).
 *
 * @param rules a rule set
 * @param e a node
 * @returns the replacement and the rule that made it, or undefined
 */
export function applyRuleOnce(
  rules: RuleSet,
  e: Expr,
): { out: Expr; rule: RewriteRule } | undefined {
  for (const r of rules.candidates(e.op)) {
    const b = match(r.pattern, e);
    if (!b) continue;
    const out = r.rewrite(b, e);
    if (out !== undefined && out !== e) return { out, rule: r };
  }
  return undefined;
}
