/**
 * The expression core: interning, immutability, every primitive's shape
 * rule and its error message, and the graph utilities.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../mod.ts";
import {
  type Expr,
  internedCount,
  leavesOf,
  mk,
  mkLeaf,
  stableKey,
  substitute,
  toposort,
} from "../mod.ts";
import { fcParams } from "./_util.ts";
import { arbRecipe, buildRecipe, dependsOn, mutateLeaf, VALUES } from "./fixtures/graphs.ts";

const f = (name: string, shape: number[]) => nx.input(name, shape);
const i32 = (name: string, shape: number[]) => nx.input(name, shape, "i32");
const b = (name: string, shape: number[]) => nx.input(name, shape, "bool");

// ---------------------------------------------------------------------------
// Interning

Deno.test("mk() interns: random graphs built twice give the same objects", () => {
  fc.assert(
    fc.property(arbRecipe, (r) => {
      const first = buildRecipe(r);
      const second = buildRecipe(r);
      assert.equal(first.length, second.length);
      first.forEach((n, i) => assert.equal(second[i], n, `step ${i}`));
    }),
    fcParams(150),
  );
});

Deno.test("mk() interns: changing one leaf changes exactly the nodes that depend on it", () => {
  fc.assert(
    fc.property(arbRecipe, fc.nat(), (r, pick) => {
      const leaf = pick % r.leaves.length;
      const before = buildRecipe(r);
      const after = buildRecipe(mutateLeaf(r, leaf));
      const dep = dependsOn(r, leaf);
      before.forEach((n, i) => {
        if (dep[i]) assert.notEqual(after[i], n, `step ${i} depends on leaf ${leaf}`);
        else assert.equal(after[i], n, `step ${i} does not depend on leaf ${leaf}`);
      });
    }),
    fcParams(150),
  );
});

Deno.test("constants are keyed by value with -0, NaN and ±Infinity kept distinct", () => {
  for (const u of VALUES) {
    for (const v of VALUES) {
      const same = Object.is(u, v);
      assert.equal(nx.scalar(u) === nx.scalar(v), same, `${u} vs ${v}`);
      assert.equal(stableKey(u) === stableKey(v), same, `key ${u} vs ${v}`);
    }
  }
  assert.ok(Object.is((nx.scalar(-0).arg as { value: number }).value, -0));
  assert.notEqual(nx.scalar(1), nx.scalar(1, "i32"));
  assert.notEqual(nx.full([2], 1), nx.full([1, 2], 1));
  assert.notEqual(nx.full([1, 11], 0), nx.full([11, 1], 0));
});

Deno.test("leaves are keyed by kind, name, shape and dtype", () => {
  assert.equal(f("x", [2]), f("x", [2]));
  assert.notEqual(f("x", [2]), nx.param("x", [2]));
  assert.notEqual(f("x", [2]), nx.hole("x", [2]));
  assert.notEqual(f("x", [2]), f("x", [3]));
  assert.notEqual(f("x", [2]), i32("x", [2]));
  assert.notEqual(f("x", [2]), f("x|", [2]));
  assert.notEqual(nx.iota([2, 2], 0), nx.iota([2, 2], 1));
  // A name that looks like a key separator cannot collide with another leaf.
  assert.notEqual(f('a"}|f32|2|{"name":"b', [2]), f("a", [2]));
});

Deno.test("interning ignores argument key order and is unaffected by later mutation", () => {
  const x = f("x", [4, 4]);
  const starts = [1, 0], ends = [3, 4];
  const s1 = mk("slice", [x], { starts, ends });
  const s2 = mk("slice", [x], { ends: [3, 4], starts: [1, 0] });
  assert.equal(s1, s2);
  starts[0] = 0;
  assert.deepEqual((s1.arg as unknown as { starts: number[] }).starts, [1, 0]);
  assert.equal(mk("slice", [x], { starts: [1, 0], ends: [3, 4] }), s1);
});

Deno.test("nodes are deeply frozen, with increasing ids", () => {
  const x = f("x", [2, 3]);
  const y = nx.sum(nx.exp(x), -1);
  for (const e of toposort([y])) {
    assert.ok(Object.isFrozen(e) && Object.isFrozen(e.shape) && Object.isFrozen(e.src));
    if (e.arg) assert.ok(Object.isFrozen(e.arg));
    for (const s of e.src) assert.ok(s.id < e.id);
  }
  const s = toposort([y]).find((e) => e.op === "sum")!;
  assert.ok(Object.isFrozen((s.arg as { axes: number[] }).axes));
  assert.throws(() => {
    (s.arg as { axes: number[] }).axes.push(0);
  }, TypeError);
});

Deno.test("internedCount() counts live nodes", () => {
  const before = internedCount();
  const fresh = f(`fresh-${crypto.randomUUID()}`, [1]);
  assert.equal(internedCount(), before + 1);
  assert.equal(nx.neg(fresh), nx.neg(fresh));
  assert.equal(internedCount(), before + 2);
});

Deno.test("OP_KIND and RULES cover the same ops", () => {
  assert.deepEqual(Object.keys(nx.OP_KIND).sort(), Object.keys(nx.RULES).sort());
  assert.deepEqual(Object.keys(nx.DECOMPOSE).sort(), ["attention", "norm", "residual"]);
  for (const [op, k] of Object.entries(nx.OP_KIND)) {
    assert.equal(k === "composite", op in nx.DECOMPOSE, op);
  }
});

// ---------------------------------------------------------------------------
// Shape rules and their messages (primitives through mk, no broadcasting)

function throwsMsg(fn: () => unknown, name: "TypeError" | "RangeError", message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.equal(e.message, message);
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    return true;
  });
}

Deno.test("mk() rejects operands that are not expressions", () => {
  throwsMsg(
    () => mk("add", [f("x", [1]), 3 as unknown as Expr], null),
    "TypeError",
    "Cannot add: operand 3 is not an expression; wrap numbers with nx.scalar",
  );
  throwsMsg(
    () => mk("input" as "neg", [], null),
    "TypeError",
    "Leaves are built with mkLeaf, not mk",
  );
});

Deno.test("unary rules: float-only ops and bool", () => {
  throwsMsg(
    () => mk("exp", [i32("i", [3])], null),
    "TypeError",
    'Cannot exp i32[3]: needs a float operand; cast it first (nx.cast(x, "f32"))',
  );
  throwsMsg(
    () => mk("neg", [b("c", [3])], null),
    "TypeError",
    "Cannot neg bool[3]: is not defined for bool",
  );
  throwsMsg(() => mk("neg", [], null), "TypeError", "Cannot neg: expects 1 operands, got 0");
  assert.equal(mk("neg", [i32("i", [3])], null).dtype, "i32");
  assert.equal(mk("abs", [i32("i", [3])], null).dtype, "i32");
  throwsMsg(
    () => mk("cast", [f("x", [2])], { dtype: "f64" as "f32" }),
    "TypeError",
    'Cannot cast f32[2]: unknown dtype "f64"',
  );
});

Deno.test("binary rules: identical shapes and dtypes, no bool arithmetic", () => {
  throwsMsg(
    () => mk("add", [f("x", [2, 3]), f("y", [3])], null),
    "TypeError",
    "Cannot add f32[2,3] and f32[3]: shapes differ (builders broadcast; primitives do not)",
  );
  throwsMsg(
    () => mk("mul", [f("x", [3]), i32("i", [3])], null),
    "TypeError",
    "Cannot mul f32[3] and i32[3]: dtypes f32 and i32 differ; cast one",
  );
  throwsMsg(
    () => mk("add", [b("c", [3]), b("c", [3])], null),
    "TypeError",
    "Cannot add bool[3] and bool[3]: is not defined for bool; use nx.where or cast",
  );
  assert.equal(mk("max", [b("c", [3]), b("c", [3])], null).dtype, "bool");
  assert.equal(mk("lt", [f("x", [3]), f("x", [3])], null).dtype, "bool");
  assert.equal(mk("eq", [b("c", [3]), b("c", [3])], null).dtype, "bool");
});

Deno.test("where rule: bool condition, equal shapes, equal branch dtypes", () => {
  const x = f("x", [3]);
  throwsMsg(
    () => mk("where", [x, x, x], null),
    "TypeError",
    "Cannot where f32[3] and f32[3] and f32[3]: condition must be bool, got f32",
  );
  throwsMsg(
    () => mk("where", [b("c", [2]), x, x], null),
    "TypeError",
    "Cannot where bool[2] and f32[3] and f32[3]: shapes differ",
  );
  throwsMsg(
    () => mk("where", [b("c", [3]), x, i32("i", [3])], null),
    "TypeError",
    "Cannot where bool[3] and f32[3] and i32[3]: branch dtypes differ; cast one",
  );
});

Deno.test("reduce rules: axes in range, distinct and canonical; no bool; max needs values", () => {
  const x = f("x", [2, 3]);
  assert.deepEqual(mk("sum", [x], { axes: [1] }).shape, [2, 1]);
  assert.deepEqual(mk("rmax", [x], { axes: [0, 1] }).shape, [1, 1]);
  throwsMsg(
    () => mk("sum", [x], { axes: [2] }),
    "RangeError",
    "Cannot sum f32[2,3]: axis 2 is out of range for rank 2 (valid: -2..1)",
  );
  throwsMsg(
    () => mk("sum", [x], { axes: [1, 1] }),
    "RangeError",
    "Cannot sum f32[2,3]: axis 1 is repeated in [1,1]",
  );
  // Primitive args are canonical (the interpreter and interning rely on it).
  throwsMsg(
    () => mk("sum", [x], { axes: [-1] }),
    "RangeError",
    "Cannot sum f32[2,3]: primitive axes must be sorted and non-negative, got [-1] (nx.sum normalises them)",
  );
  throwsMsg(
    () => mk("rmax", [x], { axes: [1, 0] }),
    "RangeError",
    "Cannot max f32[2,3]: primitive axes must be sorted and non-negative, got [1,0] (nx.max normalises them)",
  );
  throwsMsg(
    () => mk("sum", [b("c", [3])], { axes: [0] }),
    "TypeError",
    "Cannot sum bool[3]: is not defined for bool; cast first",
  );
  throwsMsg(
    () => mk("rmax", [f("e", [0, 3])], { axes: [0] }),
    "TypeError",
    "Cannot max f32[0,3]: max over an empty axis has no value",
  );
});

Deno.test("movement rules: reshape, permute, expand", () => {
  const x = f("x", [2, 3]);
  throwsMsg(
    () => mk("reshape", [x], { shape: [4, 2] }),
    "TypeError",
    "Cannot reshape f32[2,3] to [4,2]: 6 elements cannot become 8",
  );
  throwsMsg(
    () => mk("reshape", [x], { shape: [-1, 6] }),
    "TypeError",
    "Cannot reshape f32[2,3]: shape [-1,6] has size -1; sizes must be non-negative integers",
  );
  throwsMsg(
    () => mk("permute", [x], { perm: [1, 1] }),
    "RangeError",
    "Cannot permute f32[2,3]: [1,1] is not a permutation of 0..1",
  );
  throwsMsg(
    () => mk("permute", [x], { perm: [0] }),
    "RangeError",
    "Cannot permute f32[2,3]: [0] is not a permutation of 0..1",
  );
  throwsMsg(
    () => mk("expand", [x], { shape: [2, 4] }),
    "TypeError",
    "Cannot expand f32[2,3] to [2,4]: axis 1 has size 3; only size-1 axes can grow",
  );
  throwsMsg(
    () => mk("expand", [f("v", [3])], { shape: [2, 3] }),
    "TypeError",
    "Cannot expand f32[3] to [2,3]: ranks differ (1 and 2); reshape first",
  );
  assert.deepEqual(mk("expand", [f("c", [2, 1])], { shape: [2, 5] }).shape, [2, 5]);
  assert.deepEqual(mk("expand", [f("c", [2, 1])], { shape: [2, 0] }).shape, [2, 0]);
});

Deno.test("movement rules: slice, pad, concat", () => {
  const x = f("x", [2, 3]);
  throwsMsg(
    () => mk("slice", [x], { starts: [0], ends: [2, 3] }),
    "TypeError",
    "Cannot slice f32[2,3]: needs 2 starts and ends, got 1 and 2",
  );
  throwsMsg(
    () => mk("slice", [x], { starts: [0, 2], ends: [2, 4] }),
    "RangeError",
    "Cannot slice f32[2,3]: axis 1 range [2, 4) is outside [0, 3]",
  );
  throwsMsg(
    () => mk("slice", [x], { starts: [0, 2], ends: [2, 1] }),
    "RangeError",
    "Cannot slice f32[2,3]: axis 1 range [2, 1) is outside [0, 3]",
  );
  assert.deepEqual(mk("slice", [x], { starts: [0, 3], ends: [2, 3] }).shape, [2, 0]);
  throwsMsg(
    () => mk("pad", [x], { before: [0], after: [0, 0] }),
    "TypeError",
    "Cannot pad f32[2,3]: needs 2 before and after sizes, got 1 and 2",
  );
  throwsMsg(
    () => mk("pad", [x], { before: [0, -1], after: [0, 0] }),
    "RangeError",
    "Cannot pad f32[2,3]: pad sizes must be non-negative integers, got before [0,-1], after [0,0]",
  );
  throwsMsg(
    () => mk("concat", [x, f("y", [3, 3])], { axis: 1 }),
    "TypeError",
    "Cannot concat f32[2,3] and f32[3,3]: sizes must match on every axis but 1",
  );
  throwsMsg(
    () => mk("concat", [x, i32("i", [2, 3])], { axis: 0 }),
    "TypeError",
    "Cannot concat f32[2,3] and i32[2,3]: dtypes differ; cast one",
  );
  throwsMsg(
    () => mk("concat", [x, x], { axis: -1 }),
    "RangeError",
    "Cannot concat f32[2,3] and f32[2,3]: the primitive axis must be non-negative, got -1 (nx.concat normalises it)",
  );
  throwsMsg(
    () => mk("concat", [], { axis: 0 }),
    "TypeError",
    "Cannot concat: needs at least one operand",
  );
  assert.deepEqual(mk("concat", [x, f("z", [2, 1])], { axis: 1 }).shape, [2, 4]);
});

Deno.test("dot rule: rank, batch, inner dims, dtype", () => {
  throwsMsg(
    () => mk("dot", [f("v", [3]), f("m", [3, 2])], null),
    "TypeError",
    "Cannot matmul f32[3] and f32[3,2]: operands need rank >= 2",
  );
  throwsMsg(
    () => mk("dot", [f("a", [2, 2, 3]), f("m", [3, 2])], null),
    "TypeError",
    "Cannot matmul f32[2,2,3] and f32[3,2]: batch dims differ (builders broadcast them)",
  );
  throwsMsg(
    () => mk("dot", [f("a", [2, 3]), f("m2", [4, 2])], null),
    "TypeError",
    "Cannot matmul f32[2,3] and f32[4,2]: inner dims 3 and 4 differ",
  );
  throwsMsg(
    () => mk("dot", [f("a", [2, 3]), i32("mi", [3, 2])], null),
    "TypeError",
    "Cannot matmul f32[2,3] and i32[3,2]: dtypes differ; cast one",
  );
  throwsMsg(
    () => mk("dot", [b("ba", [2, 3]), b("bb", [3, 2])], null),
    "TypeError",
    "Cannot matmul bool[2,3] and bool[3,2]: is not defined for bool",
  );
  assert.deepEqual(mk("dot", [f("a", [5, 2, 3]), f("m", [5, 3, 7])], null).shape, [5, 2, 7]);
});

Deno.test("gather rule: integer indices, table of rank >= 1", () => {
  throwsMsg(
    () => mk("gather", [f("t", [10, 4]), f("ix", [3])], null),
    "TypeError",
    "Cannot gather f32[10,4] and f32[3]: indices must be i32 or u32, got f32",
  );
  throwsMsg(
    () => mk("gather", [f("t", [10, 4]), b("ib", [3])], null),
    "TypeError",
    "Cannot gather f32[10,4] and bool[3]: indices must be i32 or u32, got bool",
  );
  throwsMsg(
    () => mk("gather", [f("s", []), i32("i", [3])], null),
    "TypeError",
    "Cannot gather f32[] and i32[3]: the table needs rank >= 1",
  );
  assert.deepEqual(mk("gather", [f("t", [10, 4]), i32("i", [2, 5])], null).shape, [2, 5, 4]);
  assert.deepEqual(mk("gather", [f("t", [10, 4]), nx.input("u", [], "u32")], null).shape, [4]);
});

Deno.test("composite rules: norm, attention, residual", () => {
  const x = f("x", [2, 3]);
  throwsMsg(
    () => mk("norm", [i32("i", [3])], { kind: "rms", eps: 1e-5 }),
    "TypeError",
    "Cannot norm (rms) i32[3]: needs a float operand",
  );
  throwsMsg(
    () => mk("norm", [f("s", [])], { kind: "layer", eps: 1e-5 }),
    "TypeError",
    "Cannot norm (layer) f32[]: needs rank >= 1",
  );
  throwsMsg(
    () => mk("norm", [x], { kind: "layer", eps: -1 }),
    "RangeError",
    "Cannot norm (layer) f32[2,3]: eps must be >= 0, got -1",
  );
  throwsMsg(
    () => mk("norm", [x], { kind: "layer", eps: NaN }),
    "RangeError",
    "Cannot norm (layer) f32[2,3]: eps must be >= 0, got NaN",
  );
  throwsMsg(
    () => mk("norm", [x], { kind: "fake", eps: 0 }),
    "RangeError",
    "Cannot norm (fake) f32[2,3]: sigma must be > 0, got undefined",
  );
  throwsMsg(
    () => mk("norm", [x], { kind: "crms", eps: 1e-5 }),
    "RangeError",
    "Cannot norm (crms) f32[2,3]: dim (the uncompressed width) must be set",
  );
  const q = f("q", [2, 4, 8]);
  throwsMsg(
    () => mk("attention", [q, f("k", [2, 4, 6]), q], { causal: false, scale: 1 }),
    "TypeError",
    "Cannot attention f32[2,4,8] and f32[2,4,6] and f32[2,4,8]: q and k head dims differ",
  );
  throwsMsg(
    () => mk("attention", [q, q, f("v", [2, 5, 8])], { causal: false, scale: 1 }),
    "TypeError",
    "Cannot attention f32[2,4,8] and f32[2,4,8] and f32[2,5,8]: k and v lengths differ",
  );
  throwsMsg(
    () => mk("attention", [q, f("k3", [3, 4, 8]), q], { causal: false, scale: 1 }),
    "TypeError",
    "Cannot attention f32[2,4,8] and f32[3,4,8] and f32[2,4,8]: leading (batch, head) dims differ",
  );
  throwsMsg(
    () => mk("attention", [f("v1", [8]), f("v1", [8]), f("v1", [8])], { causal: false, scale: 1 }),
    "TypeError",
    "Cannot attention f32[8] and f32[8] and f32[8]: q, k, v need the same rank >= 2 ([..., T, d])",
  );
  const qi = i32("qi", [4, 8]);
  throwsMsg(
    () => mk("attention", [qi, qi, qi], { causal: false, scale: 1 }),
    "TypeError",
    "Cannot attention i32[4,8] and i32[4,8] and i32[4,8]: q, k, v must share one float dtype",
  );
  assert.deepEqual(
    mk("attention", [q, f("k", [2, 6, 8]), f("v", [2, 6, 5])], { causal: true, scale: 1 }).shape,
    [2, 4, 5],
  );
  // Causal rows with no visible key would be NaN (softmax over nothing).
  throwsMsg(
    () => mk("attention", [q, f("k2", [2, 2, 8]), f("v2", [2, 2, 8])], { causal: true, scale: 1 }),
    "RangeError",
    "Cannot attention f32[2,4,8] and f32[2,2,8] and f32[2,2,8]: causal attention needs Tk >= Tq " +
      "(got Tq 4, Tk 2); query i sees keys j <= i + Tk − Tq, so the first 2 queries would see none",
  );
  assert.deepEqual(
    mk("attention", [q, f("k2", [2, 2, 8]), f("v2", [2, 2, 8])], { causal: false, scale: 1 }).shape,
    [2, 4, 8],
  );
  throwsMsg(
    () => mk("residual", [x, f("y", [3])], { hole: "h", role: "mlp", layer: 0 }),
    "TypeError",
    "Cannot residual f32[2,3] and f32[3]: the body must have the stream's shape and dtype",
  );
});

Deno.test("mkLeaf() checks dtype, shape, names and iota axes", () => {
  throwsMsg(
    () => mkLeaf("input", "f64" as "f32", [2], { name: "x" }),
    "TypeError",
    'Cannot make input: unknown dtype "f64"',
  );
  throwsMsg(
    () => mkLeaf("param", "f32", [2, -2], { name: "w" }),
    "TypeError",
    "Cannot make param: shape [2,-2] has size -2; sizes must be non-negative integers",
  );
  throwsMsg(
    () => mkLeaf("input", "f32", [2], { name: "" }),
    "TypeError",
    "Cannot make input: it needs a non-empty name",
  );
  throwsMsg(
    () => mkLeaf("iota", "bool", [2], { axis: 0 }),
    "TypeError",
    "Cannot make iota: dtype must be numeric, got bool",
  );
  throwsMsg(
    () => mkLeaf("iota", "i32", [2, 3], { axis: 2 }),
    "RangeError",
    "Cannot make iota [2,3]: axis 2 is out of range for rank 2 (valid: -2..1)",
  );
  throwsMsg(
    () => mkLeaf("iota", "i32", [2, 3], { axis: -1 }),
    "RangeError",
    "Cannot make iota [2,3]: the primitive axis must be non-negative, got -1 (nx.iota normalises it)",
  );
});

// ---------------------------------------------------------------------------
// Graph utilities

Deno.test("toposort lists each reachable node once, sources before users", () => {
  fc.assert(
    fc.property(arbRecipe, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), (r, picks) => {
      const ns = buildRecipe(r);
      const roots = picks.map((p) => ns[p % ns.length]!);
      const order = toposort(roots);
      assert.equal(new Set(order).size, order.length);
      const pos = new Map(order.map((e, i) => [e, i]));
      for (const e of order) for (const s of e.src) assert.ok(pos.get(s)! < pos.get(e)!);
      // Everything reachable is listed.
      const reach = new Set<Expr>();
      const visit = (e: Expr): void => {
        if (reach.has(e)) return;
        reach.add(e);
        e.src.forEach(visit);
      };
      roots.forEach(visit);
      assert.equal(reach.size, order.length);
      for (const e of reach) assert.ok(pos.has(e));
    }),
    fcParams(100),
  );
});

Deno.test("toposort handles deep chains without recursion limits", () => {
  let y: Expr<"f32"> = f("x", [1]);
  for (let i = 0; i < 20000; i++) y = nx.neg(y);
  assert.equal(toposort([y]).length, 20001);
});

Deno.test("substitute replaces nodes and rebuilds users; identity when nothing matches", () => {
  const x = f("x", [2, 3]), y = f("y", [2, 3]), z = f("z", [3]);
  const g = nx.mul(nx.exp(x), nx.add(x, z));
  const [g2] = substitute([g], new Map([[x, y]]));
  assert.equal(g2, nx.mul(nx.exp(y), nx.add(y, z)));
  assert.equal(substitute([g], new Map())[0], g);
  assert.equal(substitute([g], new Map([[f("unused", [2, 3]), y]]))[0], g);
  throwsMsg(
    () => substitute([g], new Map<Expr, Expr>([[x, z]])),
    "TypeError",
    "Cannot substitute f32[2,3] (input) by f32[3] (input): shapes or dtypes differ",
  );
});

Deno.test("withSrc returns the same node for the same sources and re-checks new ones", () => {
  const x = f("x", [2]), y = f("y", [2]);
  const s = nx.add(x, y);
  assert.equal(nx.withSrc(s, [x, y]), s);
  assert.equal(nx.withSrc(s, [y, x]), nx.add(y, x));
  throwsMsg(
    () => nx.withSrc(s, [x, f("w", [3])]),
    "TypeError",
    "Cannot add f32[2] and f32[3]: shapes differ (builders broadcast; primitives do not)",
  );
  throwsMsg(() => nx.withSrc(x, [y]), "TypeError", "Cannot give sources to leaf input");
});

Deno.test("leavesOf lists inputs and params by name and rejects conflicting avals", () => {
  const g = nx.add(
    nx.mul(f("b", [2]), nx.param("w2", [2])),
    nx.add(f("a", [2]), nx.param("w1", [2])),
  );
  const { inputs, params } = leavesOf([g]);
  assert.deepEqual(inputs.map((e) => e.arg.name), ["a", "b"]);
  assert.deepEqual(params.map((e) => e.arg.name), ["w1", "w2"]);
  throwsMsg(
    () => leavesOf([nx.add(f("x", [2]), nx.cast(i32("x", [2]), "f32"))]),
    "TypeError",
    'input "x" is used as f32[2] and as i32[2]; one name must have one shape and dtype',
  );
  // An input and a param may share a name: they are different namespaces.
  assert.equal(leavesOf([nx.add(f("n", [1]), nx.param("n", [1]))]).inputs.length, 1);
});

Deno.test("isOp narrows by op name", () => {
  const s = nx.sum(f("x", [2, 3]), 0, { keepdims: true });
  assert.ok(nx.isOp(s, "sum"));
  if (nx.isOp(s, "sum")) assert.deepEqual(s.arg.axes, [0]);
  assert.ok(!nx.isOp(s, "rmax"));
});
