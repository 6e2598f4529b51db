/**
 * A small algebraic rule set: identities that never change a value (up to
 * the sign of a zero), used to tidy graphs after placements and as the
 * rewrite engine's own test bed.
 *
 * @module
 */

import { type Expr, mk, type OpArgs } from "../ir/expr.ts";
import { shapeEq } from "../ir/shape.ts";
import { pat } from "./pattern.ts";
import { rule, type RuleSet, ruleSet } from "./rules.ts";

const x = pat.any("x");

/** Algebraic identities: `x+0`, `x·1`, `--x`, and collapsing movement chains. */
export const simplifyRules: RuleSet = ruleSet(
  "simplify",
  // x + 0 = x (also 0 + x)
  rule("x+0", pat.op("add", { src: [x, pat.constant(0)], commute: true }), (b) => b.x),
  // x · 1 = x
  rule("x*1", pat.op("mul", { src: [x, pat.constant(1)], commute: true }), (b) => b.x),
  // x / 1 = x
  rule("x/1", pat.op("div", { src: [x, pat.constant(1)] }), (b) => b.x),
  // −(−x) = x
  rule("--x", pat.op("neg", { src: [pat.op("neg", { src: [x] })] }), (b) => b.x),
  // reshape to the same shape is the identity
  rule(
    "reshape(x)=x",
    pat.op("reshape", { src: [x], where: (e, b) => shapeEq(e.shape, b.x!.shape) }),
    (b) => b.x,
  ),
  // reshape(reshape(x)) = reshape(x)
  rule(
    "reshape∘reshape",
    pat.op("reshape", { src: [pat.op("reshape", { src: [x] })] }),
    (b, e) => mk("reshape", [b.x!], { shape: e.shape }),
  ),
  // expand to the same shape is the identity
  rule(
    "expand(x)=x",
    pat.op("expand", { src: [x], where: (e, b) => shapeEq(e.shape, b.x!.shape) }),
    (b) => b.x,
  ),
  // permute(permute(x, p), q) = permute(x, p∘q); the identity permutation vanishes
  rule(
    "permute∘permute",
    pat.op("permute", { src: [pat.op("permute", { src: [x], name: "inner" })] }),
    (b, e) => {
      const p = (b.inner!.arg as OpArgs["permute"]).perm;
      const q = (e.arg as OpArgs["permute"]).perm;
      return permuteOrId(b.x!, q.map((i) => p[i]!));
    },
  ),
  rule(
    "permute(id)",
    pat.op("permute", { src: [x], arg: (a) => a.perm.every((v, i) => v === i) }),
    (b) => b.x,
  ),
  // cast to the operand's own dtype
  rule(
    "cast(x)=x",
    pat.op("cast", { src: [x], where: (e, b) => e.dtype === b.x!.dtype }),
    (b) => b.x,
  ),
);

function permuteOrId(x: Expr, perm: number[]): Expr {
  return perm.every((v, i) => v === i) ? x : mk("permute", [x], { perm });
}
