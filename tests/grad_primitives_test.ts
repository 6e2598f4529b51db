/**
 * Gradient checks of every primitive op against float64 central
 * differences: the inner-product identity ⟨vjp(c), t⟩ = ⟨c, jvp(t)⟩ on the
 * interpreter, as properties over random shapes and values (away from
 * kinks and ties), plus the documented choices at ties.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../mod.ts";
import { checkVjp, grad, type PrimitiveOp, VJP } from "../lib/autodiff/mod.ts";
import { assertClose, fcParams, rng } from "./_util.ts";

type E = nx.Expr<"f32">;

/** f32-rounded normal values (seeded). */
function normal(n: number, seed: number, scale = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12), v = r();
    out[i] = Math.fround(scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  }
  return out;
}

/** Values on a 0.25 grid shifted by `offset`: two grids with different offsets never tie. */
function grid(n: number, seed: number, offset: number): Float64Array {
  return normal(n, seed).map((v) => Math.round(v * 4) / 4 + offset);
}

/** Distinct values (a shuffled 0.1 ladder) so maxima have clear gaps. */
function distinct(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return Float64Array.from(v, Math.fround);
}

interface Leaf {
  name: string;
  node: E;
  data: Float64Array;
}

function leaf(name: string, shape: readonly number[], data: Float64Array): Leaf {
  return { name, node: nx.param(name, shape), data };
}

/** Asserts the inner-product identity for `out` with respect to `leaves`. */
function expectVjp(out: nx.Expr, leaves: readonly Leaf[], seed: number, extra = {}): void {
  const b: Record<string, nx.NDArray> = { ...extra };
  for (const l of leaves) b[l.name] = nx.array(l.data, l.node.shape);
  const r = checkVjp(out, leaves.map((l) => l.node), b, { seed });
  const tol = 1e-7 + 1e-6 * r.scale;
  if (!(Math.abs(r.analytic - r.numeric) <= tol)) {
    throw new Error(
      `vjp ${r.analytic} vs central difference ${r.numeric} (|diff| ${
        Math.abs(r.analytic - r.numeric)
      } > ${tol})\n${nx.printExpr(out)}`,
    );
  }
}

const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 });
const seedArb = fc.integer({ min: 1, max: 1_000_000 });
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** A shape that broadcasts to `s`: some axes set to 1, some leading axes dropped. */
const bcastArb = (s: readonly number[]) =>
  fc.tuple(
    fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }),
    fc.integer({ min: 0, max: s.length - 1 }),
  ).map(([ones, drop]) => s.map((d, i) => (ones[i] ? 1 : d)).slice(drop));

Deno.test("the VJP table has a rule for every primitive op", () => {
  const prim = (Object.keys(nx.OP_KIND) as nx.Op[]).filter((o) =>
    nx.OP_KIND[o] !== "composite"
  ) as PrimitiveOp[];
  for (const op of prim) assert.equal(typeof VJP[op], "function", op);
});

Deno.test("unary ops: vjp matches central differences", () => {
  const ops: [string, (x: E) => nx.Expr, (v: number) => number][] = [
    ["neg", nx.neg, (v) => v],
    ["exp", nx.exp, (v) => v],
    ["sin", nx.sin, (v) => v],
    ["cos", nx.cos, (v) => v],
    ["tanh", nx.tanh, (v) => v],
    ["log", nx.log, (v) => Math.abs(v) + 0.3],
    ["sqrt", nx.sqrt, (v) => Math.abs(v) + 0.3],
    ["rsqrt", nx.rsqrt, (v) => Math.abs(v) + 0.3],
    ["recip", nx.recip, (v) => (v < 0 ? v - 0.3 : v + 0.3)],
    // kinks kept away from 0
    ["abs", nx.abs, (v) => (v < 0 ? v - 0.1 : v + 0.1)],
    ["relu", nx.relu, (v) => (v < 0 ? v - 0.1 : v + 0.1)],
    // float→float casts carry the cotangent through unchanged
    ["cast f16", (x) => nx.cast(nx.cast(x, "f16"), "f32"), (v) => v],
  ];
  fc.assert(
    fc.property(shapeArb, seedArb, fc.integer({ min: 0, max: ops.length - 1 }), (s, seed, k) => {
      const [, f, dom] = ops[k]!;
      const x = leaf("x", s, normal(numel(s), seed).map((v) => Math.fround(dom(v))));
      expectVjp(f(x.node), [x], seed);
    }),
    fcParams(120),
  );
});

Deno.test("broadcasting binary ops: vjp matches central differences", () => {
  const ops: [string, (a: E, b: E) => nx.Expr][] = [
    ["add", nx.add],
    ["sub", nx.sub],
    ["mul", nx.mul],
    ["div", nx.div],
    ["max", nx.maximum],
    ["min", nx.minimum],
  ];
  fc.assert(
    fc.property(
      shapeArb.chain((s) => fc.tuple(fc.constant(s), bcastArb(s))),
      fc.boolean(),
      seedArb,
      fc.integer({ min: 0, max: ops.length - 1 }),
      ([sa, sb], swap, seed, k) => {
        const [name, f] = ops[k]!;
        // Grids with different offsets never tie (max/min kinks); the
        // denominator of div stays away from 0.
        let bData = grid(numel(sb), seed + 1, 0.1);
        if (name === "div") bData = bData.map((v) => (v < 0 ? v - 0.4 : v + 0.4));
        const a = leaf("a", sa, grid(numel(sa), seed, 0));
        const b = leaf("b", sb, bData);
        const out = swap && name !== "div" ? f(b.node, a.node) : f(a.node, b.node);
        expectVjp(out, [a, b], seed);
      },
    ),
    fcParams(120),
  );
});

Deno.test("where and compares: cotangent goes to the branches, none to the condition", () => {
  fc.assert(
    fc.property(shapeArb, seedArb, fc.integer({ min: 0, max: 2 }), (s, seed, k) => {
      const a = leaf("a", s, grid(numel(s), seed, 0));
      const c = leaf("c", s, grid(numel(s), seed + 1, 0.1));
      const x = leaf("x", s, normal(numel(s), seed + 2));
      const y = leaf("y", [s[s.length - 1]!], normal(s[s.length - 1]!, seed + 3));
      const cond = [nx.less, nx.lessEqual, nx.equal][k]!(a.node, c.node);
      const out = nx.mul(nx.where(cond, x.node, nx.exp(y.node)), nx.add(a.node, 1));
      expectVjp(out, [a, c, x, y], seed);
      // the compare itself contributes nothing to c's gradient
      const g = grad(nx.sum(nx.where(cond, x.node, y.node)), [c.node]);
      assert.equal(nx.printExpr(g.c!).split("\n")[0], `%0: f32${nx.fmtShape(s)} = const 0`);
    }),
    fcParams(120),
  );
});

Deno.test("sum and rmax over several axes: vjp matches central differences", () => {
  fc.assert(
    fc.property(
      shapeArb.chain((s) =>
        fc.tuple(fc.constant(s), fc.subarray(s.map((_, i) => i), { minLength: 1 }))
      ),
      seedArb,
      fc.boolean(),
      ([s, axes], seed, isMax) => {
        const x = leaf("x", s, distinct(numel(s), seed));
        const w = leaf("w", s, normal(numel(s), seed + 1));
        // mix in w so the reduction's input is not a leaf only
        const y = nx.mul(x.node, nx.exp(nx.mul(w.node, 0.1)));
        const out = isMax ? nx.max(y, axes) : nx.sum(y, axes, { keepdims: true });
        expectVjp(out, [x, w], seed);
      },
    ),
    fcParams(80),
  );
});

Deno.test("movement ops: reshape, permute, expand, slice, pad, concat invert correctly", () => {
  fc.assert(
    fc.property(
      shapeArb,
      seedArb,
      fc.integer({ min: 0, max: 5 }),
      fc.context(),
      (s, seed, k, ctx) => {
        const r = rng(seed);
        const pick = (n: number) => Math.floor(r() * n);
        const x = leaf("x", s, normal(numel(s), seed));
        const rank = s.length;
        let out: nx.Expr;
        switch (k) {
          case 0: {
            out = nx.reshape(nx.exp(x.node), [-1]);
            if (rank > 1) out = nx.reshape(out, [s[0]!, numel(s.slice(1))]);
            break;
          }
          case 1: {
            const perm = s.map((_, i) => i).sort(() => r() - 0.5);
            out = nx.permute(x.node, perm);
            break;
          }
          case 2: {
            const bs = s.map((d, i) => (i % 2 ? 1 : d));
            const src = leaf("b", bs, normal(numel(bs), seed + 1));
            out = nx.mul(nx.broadcastTo(src.node, [2, ...s]), 1.5);
            expectVjp(out, [src], seed);
            return;
          }
          case 3: {
            const starts = s.map((d) => pick(d));
            const ends = s.map((d, i) => starts[i]! + 1 + pick(d - starts[i]!));
            out = nx.exp(mkSlice(x.node, starts, ends));
            break;
          }
          case 4: {
            out = nx.pad(x.node, s.map(() => pick(3)), s.map(() => pick(3)));
            out = nx.mul(out, out);
            break;
          }
          default: {
            const ax = pick(rank);
            const other = s.map((d, i) => (i === ax ? 1 + pick(3) : d));
            const y = leaf("y", other, normal(numel(other), seed + 1));
            out = nx.concat([x.node, y.node, x.node], ax);
            ctx.log(`concat axis ${ax}`);
            expectVjp(nx.mul(out, out), [x, y], seed);
            return;
          }
        }
        expectVjp(out, [x], seed);
      },
    ),
    fcParams(120),
  );
});

function mkSlice(x: nx.Expr, starts: readonly number[], ends: readonly number[]): E {
  return nx.mk("slice", [x], { starts, ends }) as E;
}

Deno.test("matmul (batched, broadcast batch, rank-2 right operand): vjp matches", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 2 }),
      seedArb,
      (batch, m, kk, n, mode, seed) => {
        const sa = [...batch, m, kk];
        // mode 0: same batch; 1: rank-2 right operand; 2: right batch broadcast from 1s
        const sb = mode === 0
          ? [...batch, kk, n]
          : mode === 1
          ? [kk, n]
          : [...batch.map(() => 1), kk, n];
        const a = leaf("a", sa, normal(numel(sa), seed));
        const b = leaf("b", sb, normal(numel(sb), seed + 1));
        expectVjp(nx.matmul(a.node, b.node), [a, b], seed);
      },
    ),
    fcParams(80),
  );
});

Deno.test("gather: gradient scatter-adds rows, repeated indices accumulate", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 0, maxLength: 2 }),
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }),
      seedArb,
      (v, rest, idxShape, seed) => {
        const r = rng(seed);
        const ts = [v, ...rest.filter((d) => d > 0)];
        const t = leaf("t", ts, normal(numel(ts), seed));
        const idx = nx.input("idx", idxShape, "i32");
        const ids = Array.from({ length: numel(idxShape) }, () => Math.floor(r() * v));
        const out = nx.tanh(nx.gather(t.node, idx));
        expectVjp(out, [t], seed, { idx: nx.array(ids, idxShape, "i32") });
      },
    ),
    fcParams(80),
  );
});

Deno.test("gather gradient counts each index occurrence exactly", () => {
  const t = nx.param("t", [4, 2]);
  const idx = nx.input("idx", [5], "i32");
  const g = grad(nx.sum(nx.gather(t, idx)), ["t"]);
  const [out] = nx.interpret([g.t!], {
    t: nx.array(0, [4, 2]),
    idx: nx.array([1, 1, 3, 1, 0], [5], "i32"),
  });
  assert.deepEqual([...out!.data], [1, 1, 3, 3, 0, 0, 1, 1]);
});

Deno.test("max/min ties split the cotangent evenly; rmax ties share it", () => {
  const a = nx.param("a", [3]), b = nx.param("b", [3]);
  const g = grad(nx.sum(nx.add(nx.maximum(a, b), nx.mul(nx.minimum(a, b), 10))), ["a", "b"]);
  const vals = { a: nx.array([1, 2, 3], [3]), b: nx.array([1, 5, 0], [3]) };
  const [ga, gb] = nx.interpret([g.a!, g.b!], vals);
  assert.deepEqual([...ga!.data], [5.5, 10, 1]);
  assert.deepEqual([...gb!.data], [5.5, 1, 10]);
  const x = nx.param("x", [2, 3]);
  const gx = grad(nx.sum(nx.max(x, -1)), ["x"]).x!;
  const [o] = nx.interpret([gx], { x: nx.array([2, 7, 7, 4, 4, 4], [2, 3]) });
  assertClose(o!.data, [0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3], { atol: 1e-15 });
});

Deno.test("abs has derivative 0 at 0 (documented choice)", () => {
  const x = nx.param("x", [3]);
  const [o] = nx.interpret([grad(nx.sum(nx.abs(x)), ["x"]).x!], { x: nx.array([-2, 0, 3], [3]) });
  assert.deepEqual([...o!.data], [-1, 0, 1]);
});
