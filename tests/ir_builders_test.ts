/**
 * Builders: NumPy broadcasting (against a hand-written evaluator), weak
 * numbers, dtype promotion, movement and reduction helpers, and every
 * user-facing error message.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../mod.ts";
import { type Expr, toposort } from "../mod.ts";
import { fcParams, npBroadcast, ravel, unravel } from "./_util.ts";

function throwsMsg(fn: () => unknown, name: "TypeError" | "RangeError", message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.equal(e.message, message);
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    return true;
  });
}

const seq = (shape: readonly number[], start = 1) =>
  nx.array(Array.from({ length: nx.numel(shape) }, (_, i) => start + i), shape);

// Element of operand `s` read at output index `idx` under NumPy rules.
function bcastRead(
  data: ArrayLike<number>,
  s: readonly number[],
  out: readonly number[],
  idx: number[],
): number {
  const off = out.length - s.length;
  const j = s.map((d, a) => (d === 1 ? 0 : idx[a + off]!));
  return data[ravel(j, s)]!;
}

const arbBShape = fc.array(fc.constantFrom(1, 2, 3), { maxLength: 4 });

Deno.test("binary builders broadcast like NumPy (shape and values)", () => {
  fc.assert(
    fc.property(
      arbBShape,
      arbBShape,
      fc.constantFrom("add", "sub", "mul", "maximum"),
      (sa, sb, op) => {
        const a = nx.input("a", sa), b = nx.input("b", sb);
        const want = npBroadcast(sa, sb);
        if (!want) {
          assert.throws(() => nx[op](a, b), {
            name: "TypeError",
            message: /shapes do not broadcast \(axis -\d+: \d vs \d\)/,
          });
          return;
        }
        const y = nx[op](a, b);
        assert.deepEqual(y.shape, want);
        const av = seq(sa, 1), bv = seq(sb, 100);
        const got = nx.interpretOne(y, { a: av, b: bv }).data;
        const f = {
          add: (x: number, z: number) => x + z,
          sub: (x: number, z: number) => x - z,
          mul: (x: number, z: number) => x * z,
          maximum: Math.max,
        }[op];
        for (let i = 0; i < got.length; i++) {
          const idx = unravel(i, want);
          assert.equal(
            got[i],
            f(bcastRead(av.data, sa, want, idx), bcastRead(bv.data, sb, want, idx)),
          );
        }
      },
    ),
    fcParams(150),
  );
});

Deno.test("where() broadcasts condition and both branches like NumPy", () => {
  fc.assert(
    fc.property(arbBShape, arbBShape, arbBShape, (sc, sa, sb) => {
      const c = nx.input("c", sc, "bool"), a = nx.input("a", sa), b = nx.input("b", sb);
      const want = npBroadcast(sc, sa, sb);
      if (!want) {
        assert.throws(() => nx.where(c, a, b), {
          name: "TypeError",
          message: /shapes do not broadcast \(axis -\d+: /,
        });
        return;
      }
      const y = nx.where(c, a, b);
      assert.deepEqual(y.shape, want);
      const cv = nx.array(Array.from({ length: nx.numel(sc) }, (_, i) => i % 2), sc, "bool");
      const av = seq(sa, 1), bv = seq(sb, 100);
      const got = nx.interpretOne(y, { c: cv, a: av, b: bv }).data;
      for (let i = 0; i < got.length; i++) {
        const idx = unravel(i, want);
        const pick: number = bcastRead(cv.data, sc, want, idx)
          ? bcastRead(av.data, sa, want, idx)
          : bcastRead(bv.data, sb, want, idx);
        assert.equal(got[i], pick);
      }
    }),
    fcParams(150),
  );
});

Deno.test("broadcastTo adds reshape/expand only where needed", () => {
  const x = nx.input("x", [3]);
  assert.equal(nx.broadcastTo(x, [3]), x);
  const y = nx.broadcastTo(x, [2, 3]);
  assert.deepEqual(toposort([y]).map((e) => e.op), ["input", "reshape", "expand"]);
  const z = nx.broadcastTo(nx.input("c", [2, 1]), [2, 1]);
  assert.equal(z.op, "input");
  assert.deepEqual(toposort([nx.broadcastTo(x, [1, 3])]).map((e) => e.op), ["input", "reshape"]);
});

Deno.test("broadcast failures name the offending axis", () => {
  throwsMsg(
    () => nx.add(nx.input("a", [4, 128, 256]), nx.input("b", [512])),
    "TypeError",
    "Cannot add f32[4,128,256] and f32[512]: shapes do not broadcast (axis -1: 256 vs 512); reshape one so each axis is equal or 1",
  );
  throwsMsg(
    () => nx.mul(nx.input("a", [2, 3]), nx.input("b", [4, 3])),
    "TypeError",
    "Cannot mul f32[2,3] and f32[4,3]: shapes do not broadcast (axis -2: 2 vs 4); reshape one so each axis is equal or 1",
  );
  throwsMsg(
    () => nx.less(nx.input("a", [2]), nx.input("b", [3])),
    "TypeError",
    "Cannot compare (<) f32[2] and f32[3]: shapes do not broadcast (axis -1: 2 vs 3); reshape one so each axis is equal or 1",
  );
  throwsMsg(
    () => nx.where(nx.input("c", [2, 3], "bool"), nx.input("a", [2, 3]), nx.input("b", [4])),
    "TypeError",
    "Cannot where bool[2,3], f32[2,3], f32[4]: shapes do not broadcast (axis -1: 3 vs 4); reshape one so each axis is equal or 1",
  );
  throwsMsg(
    () => nx.broadcastTo(nx.input("a", [2, 3]), [4, 3]),
    "TypeError",
    "Cannot broadcast f32[2,3] to [4,3]: axis 0 has size 2, not 1 or 4 (sizes must match or be 1, aligned from the right)",
  );
  throwsMsg(
    () => nx.broadcastTo(nx.input("a", [2, 3]), [3]),
    "TypeError",
    "Cannot broadcast f32[2,3] to [3]: the target has lower rank (2 > 1)",
  );
});

Deno.test("numbers are weak: they take the other operand's dtype", () => {
  const i = nx.input("i", [2], "i32"),
    h = nx.input("h", [2], "f16"),
    b = nx.input("b", [2], "bool");
  assert.equal(nx.add(i, 1).dtype, "i32");
  assert.equal(nx.mul(2, h).dtype, "f16");
  assert.equal(nx.less(i, 3).dtype, "bool");
  assert.equal(nx.equal(b, 1).dtype, "bool");
  const [r] = nx.interpret([nx.sub(10, i)], { i: nx.array([3, -4], [2], "i32") });
  assert.deepEqual([...r!.data], [7, 14]);
  // A scalar number becomes a constant of the result's shape.
  const c = nx.add(nx.input("x", [2, 3]), 1).src[1]!;
  assert.equal(c.op, "const");
  assert.deepEqual(c.shape, [2, 3]);
});

Deno.test("numbers that the other operand's dtype cannot hold are rejected, not truncated", () => {
  const i = nx.input("i", [3], "i32"),
    u = nx.input("u", [3], "u32"),
    b = nx.input("b", [3], "bool");
  throwsMsg(
    () => nx.add(i, 0.5),
    "RangeError",
    'Cannot add i32[3] and 0.5: 0.5 is not representable as i32 (integers in [-2147483648, 2147483647]); cast the expression first, e.g. nx.cast(x, "f32")',
  );
  throwsMsg(
    () => nx.mul(2 ** 31, i),
    "RangeError",
    'Cannot mul 2147483648 and i32[3]: 2147483648 is not representable as i32 (integers in [-2147483648, 2147483647]); cast the expression first, e.g. nx.cast(x, "f32")',
  );
  throwsMsg(
    () => nx.add(u, -1),
    "RangeError",
    'Cannot add u32[3] and -1: -1 is not representable as u32 (integers in [0, 4294967295]); cast the expression first, e.g. nx.cast(x, "f32")',
  );
  throwsMsg(
    () => nx.where(nx.less(i, 0), i, -Infinity),
    "RangeError",
    'Cannot where bool[3], i32[3], -Infinity: -Infinity is not representable as i32 (integers in [-2147483648, 2147483647]); cast the expression first, e.g. nx.cast(x, "f32")',
  );
  throwsMsg(
    () => nx.equal(b, 2),
    "RangeError",
    'Cannot compare (==) bool[3] and 2: 2 is not representable as bool (0 or 1); cast the expression first, e.g. nx.cast(x, "f32")',
  );
  throwsMsg(
    () => nx.full([2], 1.5, "i32"),
    "RangeError",
    "Cannot make an i32 constant of 1.5: it is not representable as i32 (integers in [-2147483648, 2147483647])",
  );
  assert.equal(nx.add(i, -(2 ** 31)).dtype, "i32");
  assert.equal(nx.add(u, 2 ** 32 - 1).dtype, "u32");
  assert.equal(nx.add(nx.input("x", [3]), NaN).dtype, "f32");
});

Deno.test("mixed dtypes promote, inserting casts", () => {
  const f = nx.input("f", [2]), i = nx.input("i", [2], "i32"), u = nx.input("u", [2], "u32");
  const y = nx.add(f, i);
  assert.equal(y.dtype, "f32");
  assert.deepEqual(y.src.map((s) => s.op), ["input", "cast"]);
  assert.equal(nx.add(i, u).dtype, "i32");
  assert.equal(nx.maximum(nx.input("h", [2], "f16"), i).dtype, "f16");
  assert.equal(nx.cast(f, "f32"), f);
  assert.equal(nx.cast(f, "i32").dtype, "i32");
});

Deno.test("binary builders reject two numbers and non-expressions", () => {
  throwsMsg(
    () => nx.add(1, 2),
    "TypeError",
    "Cannot add two numbers; make one an expression (nx.scalar)",
  );
  throwsMsg(
    () => nx.add("x" as unknown as number, nx.input("x", [1])),
    "TypeError",
    "Cannot add: operand x is not an expression or a number",
  );
  throwsMsg(
    () => nx.exp(undefined as unknown as Expr<"f32">),
    "TypeError",
    "Cannot exp: operand undefined is not an expression or a number",
  );
  throwsMsg(
    () => nx.add(nx.input("b", [2], "bool"), nx.input("b", [2], "bool")),
    "TypeError",
    "Cannot add bool[2] and bool[2]: is not defined for bool; use nx.where or cast",
  );
});

Deno.test("comparisons give bool and greater/greaterEqual swap operands", () => {
  const a = nx.input("a", [3]), b = nx.input("b", [3]);
  assert.equal(nx.greater(a, b), nx.less(b, a));
  assert.equal(nx.greaterEqual(a, b), nx.lessEqual(b, a));
  const av = nx.array([1, 2, 3]), bv = nx.array([2, 2, 2]);
  const outs = nx.interpret(
    [nx.less(a, b), nx.lessEqual(a, b), nx.greater(a, b), nx.greaterEqual(a, b), nx.equal(a, b)],
    { a: av, b: bv },
  );
  assert.deepEqual(outs.map((o) => [...o.data]), [[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [
    0,
    1,
    0,
  ]]);
  assert.ok(outs.every((o) => o.dtype === "bool"));
});

Deno.test("where() requires a bool condition", () => {
  const x = nx.input("x", [3]);
  throwsMsg(
    () => nx.where(x as unknown as Expr<"bool">, x, 0),
    "TypeError",
    "Cannot where f32[3]: the condition must be bool (use nx.less etc.)",
  );
});

Deno.test("unary float-only builders reject integer operands at run time too", () => {
  const i = nx.input("i", [3], "i32") as unknown as Expr<"f32">;
  for (const op of ["exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "recip"] as const) {
    throwsMsg(
      () => nx[op](i),
      "TypeError",
      `Cannot ${op} i32[3]: needs a float operand; cast it first (nx.cast(x, "f32"))`,
    );
  }
  throwsMsg(
    () => nx.mean(i),
    "TypeError",
    'Cannot mean i32[3]: needs a float operand; cast it first (nx.cast(x, "f32"))',
  );
});

Deno.test("reductions: axes, keepdims, mean and errors", () => {
  const x = nx.input("x", [2, 3, 4]);
  assert.deepEqual(nx.sum(x).shape, []);
  assert.deepEqual(nx.sum(x, -1).shape, [2, 3]);
  assert.deepEqual(nx.sum(x, [0, 2], { keepdims: true }).shape, [1, 3, 1]);
  assert.deepEqual(nx.max(x, 1).shape, [2, 4]);
  assert.equal(nx.sum(x, []), x);
  assert.equal(nx.sum(x, [2, 0]), nx.sum(x, [0, -1]));
  throwsMsg(
    () => nx.sum(x, [1, -2]),
    "RangeError",
    "Cannot sum f32[2,3,4]: axis 1 is repeated in [1,-2]",
  );
  throwsMsg(
    () => nx.max(x, 3),
    "RangeError",
    "Cannot max f32[2,3,4]: axis 3 is out of range for rank 3 (valid: -3..2)",
  );
  throwsMsg(
    () => nx.mean(x, 0.5),
    "RangeError",
    "Cannot sum f32[2,3,4]: axis 0.5 is not an integer",
  );
  throwsMsg(
    () => nx.max(nx.input("e", [0, 2]), 0),
    "TypeError",
    "Cannot max f32[0,2]: max over an empty axis has no value",
  );
  throwsMsg(
    () => nx.sum(nx.scalar(1), 0),
    "RangeError",
    "Cannot sum f32[]: axis 0 is out of range: a rank-0 (scalar) shape has no axes",
  );
  const [m] = nx.interpret([nx.mean(x, [0, 2])], { x: seq([2, 3, 4], 0) });
  // mean over axes 0 and 2 of 0..23 laid out [2,3,4]
  const want = [0, 1, 2].map((j) => {
    let s = 0;
    for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) s += i * 12 + j * 4 + k;
    return s / 8;
  });
  assert.deepEqual([...m!.data], want);
});

Deno.test("reshape infers one -1 and explains mismatches", () => {
  const x = nx.input("x", [2, 3, 4]);
  assert.deepEqual(nx.reshape(x, [-1, 4]).shape, [6, 4]);
  assert.deepEqual(nx.reshape(x, [2, -1]).shape, [2, 12]);
  assert.equal(nx.reshape(x, [2, 3, 4]), x);
  assert.equal(nx.reshape(x, [2, -1, 4]), x);
  throwsMsg(
    () => nx.reshape(x, [5, 5]),
    "TypeError",
    "Cannot reshape f32[2,3,4] to [5,5]: 24 elements cannot become 25",
  );
  throwsMsg(
    () => nx.reshape(x, [-1, -1]),
    "TypeError",
    "Cannot reshape f32[2,3,4] to [-1,-1]: at most one -1",
  );
  throwsMsg(
    () => nx.reshape(x, [5, -1]),
    "TypeError",
    "Cannot reshape f32[2,3,4] to [5,-1]: 24 elements do not divide into 5",
  );
  throwsMsg(
    () => nx.reshape(x, [-2, -12]),
    "TypeError",
    "Cannot reshape f32[2,3,4]: shape [-2,-12] has size -2; sizes must be non-negative integers",
  );
});

Deno.test("permute and transpose: identity, negative axes and errors", () => {
  const x = nx.input("x", [2, 3, 4]);
  assert.equal(nx.permute(x, [0, 1, 2]), x);
  assert.equal(nx.permute(x, [-1, 0, 1]), nx.permute(x, [2, 0, 1]));
  assert.deepEqual(nx.permute(x, [2, 0, 1]).shape, [4, 2, 3]);
  assert.deepEqual(nx.transpose(x).shape, [2, 4, 3]);
  throwsMsg(
    () => nx.permute(x, [0, 1]),
    "RangeError",
    "Cannot permute f32[2,3,4] by [0,1]: needs 3 axes, got 2",
  );
  throwsMsg(
    () => nx.permute(x, [0, 2, -1]),
    "RangeError",
    "Cannot permute f32[2,3,4]: axis 2 is repeated in [0,2,-1]",
  );
  throwsMsg(
    () => nx.permute(x, [0, 1, 3]),
    "RangeError",
    "Cannot permute f32[2,3,4]: axis 3 is out of range for rank 3 (valid: -3..2)",
  );
  throwsMsg(
    () => nx.transpose(nx.input("v", [3])),
    "RangeError",
    "Cannot transpose f32[3]: needs rank >= 2",
  );
});

Deno.test("slice, pad and concat: identities, negative axes and errors", () => {
  const x = nx.input("x", [2, 3]);
  assert.equal(nx.slice(x, 1, 0, 3), x);
  assert.deepEqual(nx.slice(x, -1, 1, 3).shape, [2, 2]);
  throwsMsg(
    () => nx.slice(x, 1, 2, 5),
    "RangeError",
    "Cannot slice f32[2,3]: axis 1 range [2, 5) is outside [0, 3]",
  );
  throwsMsg(
    () => nx.slice(x, 2, 0, 1),
    "RangeError",
    "Cannot slice f32[2,3]: axis 2 is out of range for rank 2 (valid: -2..1)",
  );
  assert.deepEqual(nx.pad(x, [1, 0], [0, 2]).shape, [3, 5]);
  assert.equal(nx.concat([x], 0), x);
  assert.equal(nx.concat([x, x], -1), nx.concat([x, x], 1));
  assert.deepEqual(nx.concat([x, x, x], 0).shape, [6, 3]);
  throwsMsg(
    () => nx.concat([], 0),
    "TypeError",
    "Cannot concat nothing: pass at least one expression",
  );
  throwsMsg(
    () => nx.concat([x, x], 2),
    "RangeError",
    "Cannot concat f32[2,3], f32[2,3]: axis 2 is out of range for rank 2 (valid: -2..1)",
  );
  // A single operand still gets its axis checked.
  throwsMsg(
    () => nx.concat([x], 7),
    "RangeError",
    "Cannot concat f32[2,3]: axis 7 is out of range for rank 2 (valid: -2..1)",
  );
});

Deno.test("matmul: NumPy batch broadcasting and the documented errors", () => {
  const a = nx.input("a", [4, 128, 256]);
  throwsMsg(
    () => nx.matmul(a, nx.input("w", [512, 64])),
    "TypeError",
    "Cannot matmul f32[4,128,256] by f32[512,64]: inner dims 256 and 512 differ",
  );
  throwsMsg(
    () => nx.matmul(nx.input("v", [3]), nx.input("m", [3, 2])),
    "TypeError",
    "Cannot matmul f32[3] by f32[3,2]: both operands need rank >= 2",
  );
  throwsMsg(
    () => nx.matmul(nx.input("p", [2, 2, 3]), nx.input("q", [3, 3, 4])),
    "TypeError",
    "Cannot matmul f32[2,2,3] by f32[3,3,4]: batch dims [2] and [3] do not broadcast",
  );
  throwsMsg(
    () => nx.matmul(nx.input("p", [2, 3]), nx.input("qi", [3, 4], "i32") as unknown as Expr<"f32">),
    "TypeError",
    "Cannot matmul f32[2,3] by i32[3,4]: dtypes differ; cast one",
  );
  // Rank-2 right operand: one flat product, no broadcast copy of the weight.
  const y = nx.matmul(a, nx.input("w", [256, 64]));
  assert.deepEqual(y.shape, [4, 128, 64]);
  assert.ok(!toposort([y]).some((e) => e.op === "expand"));
  assert.deepEqual(nx.matmul(nx.input("l", [5, 1, 2, 3]), nx.input("r", [4, 3, 6])).shape, [
    5,
    4,
    2,
    6,
  ]);
  assert.deepEqual(nx.matmul(nx.input("m2", [2, 3]), nx.input("r3", [4, 3, 6])).shape, [4, 2, 6]);
});

Deno.test("gather requires integer indices", () => {
  throwsMsg(
    () => nx.gather(nx.input("t", [10, 4]), nx.input("ix", [3]) as unknown as Expr<"i32">),
    "TypeError",
    "Cannot gather f32[10,4] and f32[3]: indices must be i32 or u32, got f32",
  );
  assert.deepEqual(nx.gather(nx.input("t", [10, 4]), nx.input("ii", [2, 3], "i32")).shape, [
    2,
    3,
    4,
  ]);
});

Deno.test("leaf builders validate their arguments", () => {
  throwsMsg(
    () => nx.full([2], "1" as unknown as number),
    "TypeError",
    "Cannot make a constant from string; pass a number",
  );
  throwsMsg(
    () => nx.input("x", [2, 1.5]),
    "TypeError",
    "Cannot make input: shape [2,1.5] has size 1.5; sizes must be non-negative integers",
  );
  throwsMsg(
    () => nx.iota([2, 3], 2),
    "RangeError",
    "Cannot make iota [2,3]: axis 2 is out of range for rank 2 (valid: -2..1)",
  );
  assert.equal(nx.iota([2, 3], -1), nx.iota([2, 3], 1));
  assert.equal(nx.iota([2, 3], 0).dtype, "i32");
  assert.deepEqual(nx.scalar(3).shape, []);
});

Deno.test("norm builders: kinds, defaults, float check", () => {
  const x = nx.input("x", [2, 5]);
  const arg = (e: Expr) => e.arg as { kind: string; eps: number; dim?: number; sigma?: number };
  assert.deepEqual(arg(nx.layerNorm(x)), { kind: "layer", eps: 1e-5 });
  assert.deepEqual(arg(nx.rmsNorm(x, { eps: 1e-6 })), { kind: "rms", eps: 1e-6 });
  assert.deepEqual(arg(nx.crmsNorm(x)), { kind: "crms", eps: 1e-5, dim: 6 });
  assert.deepEqual(arg(nx.l2Norm(x)), { kind: "l2", eps: 1e-12 });
  assert.deepEqual(arg(nx.fakeNorm(x, 2)), { kind: "fake", eps: 0, sigma: 2 });
  throwsMsg(
    () => nx.layerNorm(nx.input("i", [3], "i32") as unknown as Expr<"f32">),
    "TypeError",
    "Cannot norm (layer) i32[3]: needs a float operand",
  );
  throwsMsg(
    () => nx.fakeNorm(x, 0),
    "RangeError",
    "Cannot norm (fake) f32[2,5]: sigma must be > 0, got 0",
  );
});

Deno.test("attention and residual builders", () => {
  const q = nx.input("q", [2, 4, 16]);
  const at = nx.attention(q, q, q);
  assert.deepEqual(at.arg, { causal: false, scale: 0.25 });
  const x = nx.input("x", [2, 3]);
  const r = nx.residual(x, (h) => nx.mul(h, 2), { role: "mlp", layer: 1 });
  assert.equal(r.op, "residual");
  assert.deepEqual(r.arg, { hole: "mlp.1", role: "mlp", layer: 1 });
  const body = r.src[1]!;
  assert.equal(nx.fill(body, nx.hole("mlp.1", [2, 3]), x), nx.mul(x, 2));
  throwsMsg(
    () => nx.residual(x, () => nx.input("y", [3]), { role: "mlp", layer: 0 }),
    "TypeError",
    "Cannot residual f32[2,3] and f32[3]: the body must have the stream's shape and dtype",
  );
});

Deno.test("activation builders match their formulas", () => {
  const x = nx.input("x", [7]);
  const xs = [-3, -1, -0.5, 0, 0.5, 1, 3];
  const outs = nx.interpret(
    [nx.relu(x), nx.sigmoid(x), nx.silu(x), nx.gelu(x), nx.square(x), nx.abs(x), nx.neg(x)],
    { x: nx.array(xs) },
  );
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const gelu = (v: number) =>
    0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const want = [
    xs.map((v) => Math.max(v, 0)),
    xs.map(sig),
    xs.map((v) => v * sig(v)),
    xs.map(gelu),
    xs.map((v) => v * v),
    xs.map(Math.abs),
    xs.map((v) => -v),
  ];
  outs.forEach((o, k) =>
    o.data.forEach((v, i) => assert.ok(Math.abs(v - want[k]![i]!) < 1e-12, `${k}[${i}]`))
  );
});
