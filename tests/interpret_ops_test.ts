/**
 * The float64 interpreter, op by op, against hand-written index math:
 * movement ops, gather, matmul, reductions, iota, integer and cast
 * semantics (WGSL's), and every binding/evaluation error.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../mod.ts";
import { type Expr, interpret, interpretOne, numel } from "../mod.ts";
import { arbShape, fcParams, ravel, unravel } from "./_util.ts";

function throwsMsg(fn: () => unknown, name: "TypeError" | "RangeError", message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.equal(e.message, message);
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    return true;
  });
}

// Distinct, exactly representable values so any misplaced element shows.
const seq = (shape: readonly number[], dtype: nx.DType = "f32") =>
  nx.array(Array.from({ length: numel(shape) }, (_, i) => i * 1.5 - 7), shape, dtype);

const run = (y: Expr, b: nx.Bindings): number[] => [...interpretOne(y, b).data];

// A shape together with a permutation of its axes.
const arbPermuted = arbShape(4, 3).chain((s) =>
  fc.tuple(fc.constant(s), fc.shuffledSubarray(s.map((_, i) => i), { minLength: s.length }))
);

Deno.test("permute matches index math", () => {
  fc.assert(
    fc.property(arbPermuted, ([s, perm]) => {
      const xv = seq(s);
      const y = nx.permute(nx.input("x", s), perm);
      const out = y.shape;
      assert.deepEqual(out, perm.map((p) => s[p]!));
      const got = run(y, { x: xv });
      for (let i = 0; i < got.length; i++) {
        const oi = unravel(i, out);
        const xi = new Array<number>(s.length);
        perm.forEach((p, a) => (xi[p] = oi[a]!));
        assert.equal(got[i], xv.data[ravel(xi, s)]);
      }
    }),
    fcParams(100),
  );
});

// A shape with a random [start, end) per axis.
const arbSliced = arbShape(4, 4).chain((s) =>
  fc.tuple(
    fc.constant(s),
    fc.tuple(...s.map((d) =>
      fc.tuple(fc.integer({ min: 0, max: d }), fc.integer({ min: 0, max: d })).map(([a, b]) =>
        a <= b ? [a, b] : [b, a]
      )
    )),
  )
);

Deno.test("slice matches index math", () => {
  fc.assert(
    fc.property(arbSliced, ([s, ranges]) => {
      const xv = seq(s);
      const starts = ranges.map((r) => r[0]!), ends = ranges.map((r) => r[1]!);
      const y = s.length ? nx.mk("slice", [nx.input("x", s)], { starts, ends }) : nx.input("x", s);
      const out = ranges.map(([a, b]) => b! - a!);
      assert.deepEqual(y.shape, out);
      const got = run(y, { x: xv });
      assert.equal(got.length, numel(out));
      for (let i = 0; i < got.length; i++) {
        const xi = unravel(i, out).map((v, a) => v + starts[a]!);
        assert.equal(got[i], xv.data[ravel(xi, s)]);
      }
    }),
    fcParams(100),
  );
});

Deno.test("pad matches index math (zeros outside the source)", () => {
  const arb = arbShape(3, 3).chain((s) =>
    fc.tuple(
      fc.constant(s),
      fc.array(fc.nat(2), { minLength: s.length, maxLength: s.length }),
      fc.array(fc.nat(2), { minLength: s.length, maxLength: s.length }),
    )
  );
  fc.assert(
    fc.property(arb, ([s, before, after]) => {
      const xv = seq(s);
      const y = nx.pad(nx.input("x", s), before, after);
      const out = s.map((d, a) => d + before[a]! + after[a]!);
      assert.deepEqual(y.shape, out);
      const got = run(y, { x: xv });
      for (let i = 0; i < got.length; i++) {
        const xi = unravel(i, out).map((v, a) => v - before[a]!);
        const inside = xi.every((v, a) => v >= 0 && v < s[a]!);
        assert.equal(got[i], inside ? xv.data[ravel(xi, s)] : 0);
      }
    }),
    fcParams(100),
  );
});

Deno.test("concat matches index math", () => {
  const arb = fc.tuple(arbShape(3, 3), fc.array(fc.nat(3), { minLength: 1, maxLength: 3 })).filter(
    ([s]) => s.length > 0,
  ).chain(([s, sizes]) => fc.tuple(fc.constant(s), fc.constant(sizes), fc.nat(s.length - 1)));
  fc.assert(
    fc.property(arb, ([s, sizes, ax]) => {
      const shapes = sizes.map((n) => s.map((d, a) => (a === ax ? n : d)));
      const xs = shapes.map((sh, k) => nx.input(`c${k}`, sh));
      const vals = shapes.map((sh, k) =>
        nx.array(Array.from({ length: numel(sh) }, (_, i) => 1000 * k + i), sh)
      );
      const y = nx.concat(xs, ax);
      const out = s.map((d, a) => (a === ax ? sizes.reduce((p, q) => p + q, 0) : d));
      assert.deepEqual(y.shape, out);
      const got = run(y, Object.fromEntries(vals.map((v, k) => [`c${k}`, v])));
      for (let i = 0; i < got.length; i++) {
        const oi = unravel(i, out);
        let k = 0, pos = oi[ax]!;
        while (pos >= sizes[k]!) pos -= sizes[k++]!;
        const xi = oi.map((v, a) => (a === ax ? pos : v));
        assert.equal(got[i], vals[k]!.data[ravel(xi, shapes[k]!)]);
      }
    }),
    fcParams(100),
  );
});

Deno.test("expand (via broadcastTo) matches index math", () => {
  const arb = arbShape(4, 3).chain((out) =>
    fc.tuple(
      fc.constant(out),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
    )
  );
  fc.assert(
    fc.property(arb, ([out, ones]) => {
      const s = out.map((d, a) => (ones[a] ? 1 : d));
      const xv = seq(s);
      const got = run(nx.broadcastTo(nx.input("x", s), out), { x: xv });
      for (let i = 0; i < got.length; i++) {
        const xi = unravel(i, out).map((v, a) => (s[a] === 1 ? 0 : v));
        assert.equal(got[i], xv.data[ravel(xi, s)]);
      }
    }),
    fcParams(100),
  );
});

Deno.test("gather matches index math for i32 and u32 indices", () => {
  const arb = fc.tuple(fc.integer({ min: 1, max: 5 }), arbShape(2, 3), arbShape(2, 3));
  fc.assert(
    fc.property(arb, fc.constantFrom("i32" as const, "u32" as const), ([v, rest, is], dt) => {
      const ts = [v, ...rest];
      const tv = seq(ts);
      const iv = nx.array(Array.from({ length: numel(is) }, (_, i) => (i * 7 + 3) % v), is, dt);
      const y = nx.gather(nx.input("t", ts), nx.input("i", is, dt));
      const out = [...is, ...rest];
      assert.deepEqual(y.shape, out);
      const got = run(y, { t: tv, i: iv });
      for (let k = 0; k < got.length; k++) {
        const oi = unravel(k, out);
        const row = iv.data[ravel(oi.slice(0, is.length), is)]!;
        assert.equal(got[k], tv.data[ravel([row, ...oi.slice(is.length)], ts)]);
      }
    }),
    fcParams(100),
  );
});

Deno.test("gather reports an out-of-range index with its position", () => {
  const y = nx.gather(nx.input("t", [3, 2]), nx.input("i", [2, 2], "i32"));
  throwsMsg(
    () => interpretOne(y, { t: seq([3, 2]), i: nx.array([0, 1, 3, 2], [2, 2], "i32") }),
    "RangeError",
    "Cannot gather from f32[3,2]: index 3 at position 2 is outside [0, 3)",
  );
  throwsMsg(
    () => interpretOne(y, { t: seq([3, 2]), i: nx.array([0, -1, 1, 2], [2, 2], "i32") }),
    "RangeError",
    "Cannot gather from f32[3,2]: index -1 at position 1 is outside [0, 3)",
  );
});

Deno.test("matmul matches a naive triple loop, with batch broadcasting", () => {
  const arb = fc.record({
    m: fc.integer({ min: 1, max: 4 }),
    k: fc.integer({ min: 1, max: 4 }),
    n: fc.integer({ min: 1, max: 4 }),
    ba: fc.array(fc.constantFrom(1, 2), { maxLength: 2 }),
    bb: fc.array(fc.constantFrom(1, 2), { maxLength: 2 }),
  });
  fc.assert(
    fc.property(arb, ({ m, k, n, ba, bb }) => {
      const sa = [...ba, m, k], sb = [...bb, k, n];
      const av = seq(sa),
        bv = nx.array(Array.from({ length: numel(sb) }, (_, i) => (i % 5) - 2.5), sb);
      const y = nx.matmul(nx.input("a", sa), nx.input("b", sb));
      const nb = Math.max(ba.length, bb.length);
      const pad = (s: number[]) => [...Array<number>(nb - s.length).fill(1), ...s];
      const batch = pad(ba).map((d, i) => Math.max(d, pad(bb)[i]!));
      assert.deepEqual(y.shape, [...batch, m, n]);
      const got = run(y, { a: av, b: bv });
      for (let o = 0; o < got.length; o++) {
        const oi = unravel(o, y.shape);
        const bi = oi.slice(0, nb), i = oi[nb]!, j = oi[nb + 1]!;
        const pick = (s: number[]) => bi.slice(nb - s.length).map((v, a) => (s[a] === 1 ? 0 : v));
        let acc = 0;
        for (let kk = 0; kk < k; kk++) {
          acc += av.data[ravel([...pick(ba), i, kk], sa)]! *
            bv.data[ravel([...pick(bb), kk, j], sb)]!;
        }
        assert.ok(Math.abs(got[o]! - acc) <= 1e-12 * (1 + Math.abs(acc)), `${got[o]} vs ${acc}`);
      }
    }),
    fcParams(100),
  );
});

Deno.test("sum and max over any axes match naive reductions", () => {
  const arb = arbShape(4, 3).filter((s) => s.length > 0).chain((s) =>
    fc.tuple(fc.constant(s), fc.subarray(s.map((_, i) => i), { minLength: 1 }))
  );
  fc.assert(
    fc.property(arb, ([s, axes]) => {
      const xv = nx.array(
        Array.from({ length: numel(s) }, (_, i) => Math.fround(Math.sin(i * 1.7) * 10)),
        s,
      );
      const x = nx.input("x", s);
      const [su, mx] = interpret([
        nx.sum(x, axes, { keepdims: true }),
        nx.max(x, axes, { keepdims: true }),
      ], {
        x: xv,
      });
      const out = s.map((d, a) => (axes.includes(a) ? 1 : d));
      const wantS = new Array<number>(numel(out)).fill(0),
        wantM = new Array<number>(numel(out)).fill(-Infinity);
      for (let i = 0; i < numel(s); i++) {
        const o = ravel(unravel(i, s).map((v, a) => (axes.includes(a) ? 0 : v)), out);
        wantS[o]! += xv.data[i]!;
        wantM[o] = Math.max(wantM[o]!, xv.data[i]!);
      }
      su!.data.forEach((v, i) => assert.ok(Math.abs(v - wantS[i]!) < 1e-9));
      assert.deepEqual([...mx!.data], wantM);
    }),
    fcParams(100),
  );
});

Deno.test("reductions over empty axes: sum is 0; NaN propagates through max", () => {
  assert.deepEqual(run(nx.sum(nx.input("e", [2, 0]), 1), { e: nx.array([], [2, 0]) }), [0, 0]);
  assert.deepEqual(run(nx.max(nx.input("x", [3])), { x: nx.array([1, NaN, 2]) }), [NaN]);
  assert.deepEqual(run(nx.maximum(nx.input("x", [2]), 0), { x: nx.array([NaN, -1]) }), [NaN, 0]);
  assert.deepEqual(run(nx.minimum(nx.input("x", [2]), 0), { x: nx.array([NaN, 1]) }), [NaN, 0]);
});

Deno.test("iota counts along its axis", () => {
  assert.deepEqual(run(nx.iota([2, 3], 0), {}), [0, 0, 0, 1, 1, 1]);
  assert.deepEqual(run(nx.iota([2, 3], 1), {}), [0, 1, 2, 0, 1, 2]);
  assert.deepEqual(run(nx.iota([2, 2, 2], -2, "f32"), {}), [0, 0, 1, 1, 0, 0, 1, 1]);
});

Deno.test("constants: float values exact, integer values as their dtype", () => {
  assert.deepEqual(run(nx.full([2], 0.1), {}), [0.1, 0.1]);
  assert.deepEqual(run(nx.full([2], 7, "u32"), {}), [7, 7]);
  assert.ok(Object.is(run(nx.scalar(-0), {})[0], -0));
});

Deno.test("integer arithmetic wraps like WGSL i32/u32", () => {
  const a = nx.input("a", [4], "i32"), b = nx.input("b", [4], "i32");
  const av = nx.array([2147483647, -2147483648, 65537, -7], [4], "i32");
  const bv = nx.array([2147483647, -1, 65537, 2], [4], "i32");
  assert.deepEqual(run(nx.add(a, b), { a: av, b: bv }), [-2, 2147483647, 131074, -5]);
  assert.deepEqual(run(nx.sub(a, b), { a: av, b: bv }), [0, -2147483647, 0, -9]);
  // Low 32 bits of the exact product (Math.imul), even past 2^53.
  assert.deepEqual(run(nx.mul(a, b), { a: av, b: bv }), [
    Math.imul(2147483647, 2147483647),
    Math.imul(-2147483648, -1),
    Math.imul(65537, 65537),
    -14,
  ]);
  assert.deepEqual(run(nx.neg(a), { a: av }), [-2147483647, -2147483648, -65537, 7]);
  assert.deepEqual(run(nx.abs(a), { a: av }), [2147483647, -2147483648, 65537, 7]);
  const u = nx.input("u", [3], "u32"), w = nx.input("w", [3], "u32");
  const uv = nx.array([4294967295, 3, 0], [3], "u32"),
    wv = nx.array([4294967295, 5, 1], [3], "u32");
  assert.deepEqual(run(nx.mul(u, w), { u: uv, w: wv }), [1, 15, 0]);
  assert.deepEqual(run(nx.sub(u, w), { u: uv, w: wv }), [0, 4294967294, 4294967295]);
  assert.deepEqual(run(nx.neg(u), { u: uv }), [1, 4294967293, 0]);
});

Deno.test("integer division truncates; x/0 and MIN/-1 give x, as WGSL specifies", () => {
  const a = nx.input("a", [6], "i32"), b = nx.input("b", [6], "i32");
  const av = nx.array([7, -7, 7, -2147483648, 5, -5], [6], "i32");
  const bv = nx.array([2, 2, -2, -1, 0, 0], [6], "i32");
  assert.deepEqual(run(nx.div(a, b), { a: av, b: bv }), [3, -3, -3, -2147483648, 5, -5]);
  const u = nx.input("u", [2], "u32");
  assert.deepEqual(
    run(nx.div(u, nx.full([2], 0, "u32")), { u: nx.array([9, 4294967295], [2], "u32") }),
    [9, 4294967295],
  );
});

Deno.test("float to integer casts truncate and saturate (WGSL), NaN gives 0", () => {
  const x = nx.input("x", [8]);
  const xv = nx.array([2.9, -2.9, 3e9, -3e9, Infinity, -Infinity, NaN, -0.5], [8]);
  assert.deepEqual(run(nx.cast(x, "i32"), { x: xv }), [
    2,
    -2,
    2147483647,
    -2147483648,
    2147483647,
    -2147483648,
    0,
    0,
  ]);
  assert.deepEqual(run(nx.cast(x, "u32"), { x: xv }), [2, 0, 3e9, 0, 4294967295, 0, 0, 0]);
  assert.deepEqual(
    run(nx.cast(nx.input("y", [2]), "u32"), { y: nx.array([5e9, 4294967295.5], [2]) }),
    [4294967295, 4294967295],
  );
});

Deno.test("integer to integer casts wrap (bit reinterpretation), bool casts give 0/1", () => {
  const i = nx.input("i", [3], "i32"), u = nx.input("u", [2], "u32");
  assert.deepEqual(run(nx.cast(i, "u32"), { i: nx.array([-1, 5, -2147483648], [3], "i32") }), [
    4294967295,
    5,
    2147483648,
  ]);
  assert.deepEqual(run(nx.cast(u, "i32"), { u: nx.array([4294967295, 2147483648], [2], "u32") }), [
    -1,
    -2147483648,
  ]);
  const x = nx.input("x", [4]);
  // WGSL bool(e) is e != 0, so NaN is true.
  assert.deepEqual(run(nx.cast(x, "bool"), { x: nx.array([0, -0, 2.5, NaN], [4]) }), [0, 0, 1, 1]);
  assert.deepEqual(run(nx.cast(nx.less(x, 1), "f32"), { x: nx.array([0, 1, 2, -1], [4]) }), [
    1,
    0,
    0,
    1,
  ]);
});

Deno.test("comparisons and where follow IEEE rules for NaN and -0", () => {
  const x = nx.input("x", [3]), y = nx.input("y", [3]);
  const b = { x: nx.array([NaN, -0, 1]), y: nx.array([NaN, 0, 2]) };
  assert.deepEqual(run(nx.equal(x, y), b), [0, 1, 0]);
  assert.deepEqual(run(nx.less(x, y), b), [0, 0, 1]);
  assert.deepEqual(run(nx.lessEqual(x, y), b), [0, 1, 1]);
  assert.deepEqual(run(nx.where(nx.less(x, y), x, y), b), [NaN, 0, 1]);
});

Deno.test("float math is float64, not rounded to f32", () => {
  const x = nx.input("x", [1]);
  assert.deepEqual(run(nx.div(x, 3), { x: nx.array([1]) }), [1 / 3]);
  assert.deepEqual(run(nx.exp(x), { x: nx.array([1]) }), [Math.E]);
  // Inputs are rounded to their dtype on the way in.
  assert.deepEqual(run(x, { x: nx.array([0.1]) }), [Math.fround(0.1)]);
});

Deno.test("interpret returns outputs in order, with dtype and shape, leaves included", () => {
  const x = nx.input("x", [2, 2]);
  const outs = interpret([nx.sum(x, 1), x, nx.less(x, 0), nx.sum(x, 1)], {
    x: nx.array([1, -2, 3, 4], [2, 2]),
  });
  assert.deepEqual(outs.map((o) => [o.dtype, [...o.shape], [...o.data]]), [
    ["f32", [2], [-1, 7]],
    ["f32", [2, 2], [1, -2, 3, 4]],
    ["bool", [2, 2], [0, 1, 0, 0]],
    ["f32", [2], [-1, 7]],
  ]);
  assert.deepEqual(interpret([]), []);
});

Deno.test("interpret does not modify its bindings", () => {
  const d = new Float32Array([1, 2, 3]);
  const x = nx.input("x", [3]);
  run(nx.neg(nx.reshape(x, [3, 1])), { x: nx.array(d, [3]) });
  assert.deepEqual([...d], [1, 2, 3]);
});

Deno.test("missing, wrong-shape, wrong-dtype and malformed bindings are reported", () => {
  const x = nx.input("x", [2, 3]);
  throwsMsg(
    () => interpretOne(nx.exp(x), {}),
    "TypeError",
    'Cannot evaluate: no value bound for input "x" (f32[2,3])',
  );
  throwsMsg(
    () => interpretOne(nx.param("w", [4]), {}),
    "TypeError",
    'Cannot evaluate: no value bound for param "w" (f32[4])',
  );
  throwsMsg(
    () => interpretOne(x, { x: nx.array([1, 2, 3, 4, 5, 6], [3, 2]) }),
    "TypeError",
    'Cannot evaluate: input "x" expects f32[2,3], got f32[3,2]',
  );
  throwsMsg(
    () => interpretOne(x, { x: nx.array([1, 2, 3, 4, 5, 6], [2, 3], "i32") }),
    "TypeError",
    'Cannot evaluate: input "x" expects f32[2,3], got i32[2,3]',
  );
  // Names that exist on Object.prototype are not bindings.
  throwsMsg(
    () => interpretOne(nx.input("toString", [1]), {}),
    "TypeError",
    'Cannot evaluate: no value bound for input "toString" (f32[1])',
  );
  // A hand-made record whose data does not fit its shape.
  throwsMsg(
    () => interpretOne(x, { x: { dtype: "f32", shape: [2, 3], data: new Float64Array(2) } }),
    "TypeError",
    'Cannot evaluate: input "x" has 2 values for shape [2,3] (needs 6)',
  );
});

Deno.test("an unfilled hole is reported by name", () => {
  const h = nx.hole("attn.0", [2]);
  throwsMsg(
    () => interpretOne(nx.add(h, 1), {}),
    "TypeError",
    'Cannot evaluate a graph with an unfilled hole "attn.0"; fill it first',
  );
});
