/**
 * The rewrite engine: patterns over expression nodes, rules as data,
 * composable rule sets, a fixed-point driver with loop detection, and a
 * graph verifier.
 *
 * @example A rule set that removes `x·1`
 * ```ts
 * import { pat, rewrite, rule, ruleSet } from "./mod.ts";
 * import * as nx from "../ir/mod.ts";
 * const r = ruleSet("tidy", rule("x*1", pat.op("mul", { src: [pat.any("x"), pat.constant(1)] }), (b) => b.x));
 * const x = nx.input("x", [2]);
 * const [y] = rewrite([nx.mul(x, 1)], r); // y === x
 * ```
 *
 * @module
 */
export * from "./pattern.ts";
export * from "./rules.ts";
export * from "./driver.ts";
export * from "./verify.ts";
export * from "./simplify.ts";
