/**
 * Tests of the rewrite engine: patterns, rule sets, the fixed-point
 * driver, loop detection and the verifier.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import {
  assertValidGraph,
  match,
  newRewriteTrace,
  pat,
  rewrite,
  rewritePasses,
  rule,
  ruleSet,
  simplifyRules,
  verifyGraph,
} from "../lib/rewrite/mod.ts";
import { assertClose, fcParams, randn } from "./_util.ts";

type F = nx.Expr<"f32">;

Deno.test("match() binds names and requires a repeated name to be the same node", () => {
  const x = nx.input("x", [2, 3]);
  const y = nx.input("y", [2, 3]);
  const sq = pat.op("mul", { src: [pat.any("a"), pat.any("a")] });
  assert.deepEqual(match(sq, nx.mul(x, x)), { a: x });
  assert.equal(match(sq, nx.mul(x, y)), undefined);
  // interning: two separately built x+1 are one node, so they bind the same name
  assert.ok(match(sq, nx.mul(nx.add(x, 1), nx.add(x, 1))));
});

Deno.test("match() checks op, dtype, arity, arg predicates and commutation", () => {
  const x = nx.input("x", [4]);
  const i = nx.input("i", [4], "i32");
  const p = pat.op("add", { src: [pat.any("x"), pat.constant(0)], commute: true });
  assert.ok(match(p, nx.add(x, 0)));
  assert.ok(match(p, nx.add(nx.full([4], 0), x)));
  assert.equal(match(p, nx.add(x, 1)), undefined);
  assert.equal(match(pat.op("add", { src: [pat.any()] }), nx.add(x, 1)), undefined);
  assert.ok(match(pat.op("add", { dtype: "i32" }), nx.add(i, 1)));
  assert.equal(match(pat.op("add", { dtype: "f32" }), nx.add(i, 1)), undefined);
  const w = nx.param("blocks.0.attn.o.weight", [4, 4]);
  assert.ok(match(pat.param(/attn\.o\.weight$/, "w"), w));
  assert.equal(match(pat.param("blocks.1.attn.o.weight"), w), undefined);
  const r = nx.residual(nx.input("s", [2, 4]), (h) => nx.mul(h, 2), { role: "attn", layer: 3 });
  assert.ok(match(pat.residual("attn", (l) => l === 3), r));
  assert.equal(match(pat.residual("mlp"), r), undefined);
  assert.equal(match(pat.residual("attn", (l) => l < 3), r), undefined);
});

Deno.test("rewrite() reaches a fixed point on nested reshapes", () => {
  const x = nx.input("x", [2, 3, 4]);
  let e: nx.Expr = x;
  for (const s of [[6, 4], [24], [4, 6], [2, 12], [2, 3, 4]]) e = nx.reshape(e, s);
  const trace = newRewriteTrace();
  const [out] = rewrite([nx.mul(e, 1)], simplifyRules, { verify: true, trace });
  assert.equal(out, x);
  assert.ok(trace.fired.get("reshape∘reshape")! >= 1);
  // a fixed point: rewriting again changes nothing and fires nothing
  const t2 = newRewriteTrace();
  assert.equal(rewrite([out!], simplifyRules, { trace: t2 })[0], out);
  assert.equal(t2.steps, 0);
});

Deno.test("rewrite() rewrites a rule's output to a fixed point too", () => {
  const x = nx.input("x", [3]);
  // double negation exposed only after the first rule fires
  const r = ruleSet(
    "expose",
    rule("abs→neg(neg)", pat.op("abs", { src: [pat.any("x")] }), (b) => nx.neg(nx.neg(b.x!))),
    simplifyRules,
  );
  assert.equal(rewrite([nx.abs(x)], r)[0], x);
});

Deno.test("rewrite() reports the rule that loops (cycle and growth)", () => {
  const x = nx.input("x", [3]);
  const cycle = ruleSet(
    "cycle",
    rule("wrap", pat.op("exp", { src: [pat.any("x")] }), (b) => nx.exp(nx.mul(b.x as F, 1))),
    simplifyRules,
  );
  assert.throws(() => rewrite([nx.exp(x)], cycle), /rule "wrap" loops/);
  const grow = ruleSet(
    "grow",
    rule("grow", pat.op("sin", { src: [pat.any("x")] }), (b) => nx.sin(nx.add(b.x as F, 0.5))),
  );
  assert.throws(() => rewrite([nx.sin(x)], grow, { maxSteps: 50 }), /rule "grow" loops/);
  const selfy = ruleSet("self", rule("self", pat.op("cos"), (_b, e) => nx.add(e, 0)));
  assert.throws(() => rewrite([nx.cos(x)], selfy), /rule "self" loops/);
});

Deno.test("rewrite() rejects a rule that changes shape or dtype", () => {
  const x = nx.input("x", [2, 3]);
  const bad = ruleSet(
    "bad",
    rule("flatten", pat.op("exp", { src: [pat.any("x")] }), (b) => nx.reshape(b.x!, [6])),
  );
  assert.throws(() => rewrite([nx.exp(x)], bad), /rule "flatten" turned exp f32\[2,3\]/);
});

Deno.test("ruleSet() composes in priority order and indexes by op", () => {
  const x = nx.input("x", [2]);
  const a = rule("a", pat.op("exp"), (_b, e) => nx.sin(e.src[0] as F));
  const b = rule("b", pat.op("exp"), (_b, e) => nx.cos(e.src[0] as F));
  assert.equal(rewrite([nx.exp(x)], ruleSet("ab", a, b))[0], nx.sin(x));
  assert.equal(rewrite([nx.exp(x)], ruleSet("ba", ruleSet("b", b), a))[0], nx.cos(x));
  // a declining rule passes to the next one
  const no = rule("no", pat.op("exp"), () => undefined);
  assert.equal(rewrite([nx.exp(x)], ruleSet("na", no, a))[0], nx.sin(x));
  assert.deepEqual(ruleSet("ab", a, b).candidates("add"), []);
  // rewritePasses applies sets in order
  assert.equal(rewritePasses([nx.exp(x)], [ruleSet("a", a), ruleSet("b", b)])[0], nx.sin(x));
});

Deno.test("rewrite() with simplifyRules preserves values on random graphs", () => {
  const x = nx.input("x", [2, 3]);
  // random chains of value-preserving and value-changing ops
  const step = fc.constantFrom(
    (e: nx.Expr) => nx.mul(e, 1),
    (e: nx.Expr) => nx.add(e, 0),
    (e: nx.Expr) => nx.neg(nx.neg(e)),
    (e: nx.Expr) => nx.reshape(e, [6]),
    (e: nx.Expr) => nx.reshape(e, [3, 2]),
    (e: nx.Expr) => nx.reshape(e, [2, 3]),
    (e: nx.Expr) => nx.transpose(nx.reshape(e, [2, 3])),
    (e: nx.Expr) => nx.tanh(e as F),
    (e: nx.Expr) => nx.add(e, 0.25),
  );
  const xv = nx.array(randn(6, 7), [2, 3]);
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 8 }), (steps) => {
      const e = steps.reduce((acc: nx.Expr, f) => f(acc), x);
      const [s] = rewrite([e], simplifyRules, { verify: true });
      const [a, b] = interpret([e, s!], { x: xv });
      assertClose(b!.data, a!.data, { atol: 0, rtol: 0 });
      // idempotent
      assert.equal(rewrite([s!], simplifyRules)[0], s);
    }),
    fcParams(60),
  );
});

Deno.test("verifyGraph() finds unbound holes, forbidden ops and invariant failures", () => {
  const h = nx.hole("h", [2]);
  assert.match(verifyGraph([nx.exp(h)]).join("\n"), /unbound holes: h/);
  const s = nx.input("s", [2]);
  const r = nx.residual(s, (v) => nx.mul(v, 2), { role: "mlp", layer: 0 });
  assert.deepEqual(verifyGraph([r]), []);
  assert.match(verifyGraph([r], { forbid: ["residual"] }).join("\n"), /"residual" is not allowed/);
  const noExp = {
    name: "no exp",
    pattern: pat.op("exp"),
    check: () => "exp found",
  };
  assert.match(verifyGraph([nx.exp(s)], { invariants: [noExp] }).join("\n"), /no exp: exp found/);
  assert.throws(
    () => assertValidGraph([nx.exp(h)], {}, "test"),
    /Cannot verify the result of "test"/,
  );
  // a body may use its own hole but not another residual's
  const bad = nx.residual(s, () => nx.mul(nx.hole("other", [2]), 2), { role: "x", layer: 0 });
  assert.match(verifyGraph([bad]).join("\n"), /unbound holes: other/);
});
