/**
 * Dtypes are part of the TypeScript type of every expression. These checks
 * run when `deno test`/`deno check` type-checks this file: an `Equals`
 * assertion fails to compile when a type is wrong, and each
 * `@ts-expect-error` fails to compile when the line below it *stops* being
 * an error. The runtime part checks the value-level dtypes agree.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import type { DType, Expr, F64Array, Promote } from "../mod.ts";

/** Exact type equality (not mere assignability). */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;

/** Compiles only when `T` is exactly `true`. */
function check<T extends true>(_ok?: T): void {}

const f = nx.input("f", [2, 3]);
const h = nx.input("h", [2, 3], "f16");
const i = nx.input("i", [2, 3], "i32");
const u = nx.input("u", [2, 3], "u32");
const b = nx.less(f, 0);

// Leaves carry their dtype.
check<Equals<typeof f, Expr<"f32">>>();
check<Equals<typeof i, Expr<"i32">>>();
check<Equals<ReturnType<typeof nx.iota<"i32">>, Expr<"i32">>>();
check<Equals<typeof b, Expr<"bool">>>();

// Promotion through binary builders.
const fi = nx.add(f, i);
check<Equals<typeof fi, Expr<"f32">>>();
const iu = nx.mul(i, u);
check<Equals<typeof iu, Expr<"i32">>>();
const hi = nx.sub(i, h);
check<Equals<typeof hi, Expr<"f16">>>();
const fh = nx.maximum(h, f);
check<Equals<typeof fh, Expr<"f32">>>();
// Numbers are weak: they take the expression's dtype, on either side.
const i1 = nx.add(i, 1);
check<Equals<typeof i1, Expr<"i32">>>();
const h2 = nx.div(2, h);
check<Equals<typeof h2, Expr<"f16">>>();
const uu = nx.minimum(u, 3);
check<Equals<typeof uu, Expr<"u32">>>();
const w = nx.where(b, i, 0);
check<Equals<typeof w, Expr<"i32">>>();
const wf = nx.where(b, i, f);
check<Equals<typeof wf, Expr<"f32">>>();

// Comparisons give bool.
check<Equals<ReturnType<typeof nx.less>, Expr<"bool">>>();
const eq = nx.equal(i, 2);
check<Equals<typeof eq, Expr<"bool">>>();
const ge = nx.greaterEqual(h, f);
check<Equals<typeof ge, Expr<"bool">>>();

// cast names its result dtype.
const c = nx.cast(f, "i32");
check<Equals<typeof c, Expr<"i32">>>();
const cb = nx.cast(i, "bool");
check<Equals<typeof cb, Expr<"bool">>>();

// Unary, reduction, movement and norm builders keep the dtype.
const e = nx.exp(h);
check<Equals<typeof e, Expr<"f16">>>();
const si = nx.sum(i, -1);
check<Equals<typeof si, Expr<"i32">>>();
const ni = nx.neg(i);
check<Equals<typeof ni, Expr<"i32">>>();
const pi = nx.permute(nx.reshape(i, [3, 2]), [1, 0]);
check<Equals<typeof pi, Expr<"i32">>>();
const ln = nx.layerNorm(h);
check<Equals<typeof ln, Expr<"f16">>>();
const g = nx.gather(nx.param("emb", [10, 4]), nx.input("ids", [3], "u32"));
check<Equals<typeof g, Expr<"f32">>>();
const mm = nx.matmul(f, nx.param("w", [3, 5]));
check<Equals<typeof mm, Expr<"f32">>>();
const evalMm = () =>
  nx.interpretOne(mm, {
    f: nx.array(new Float64Array(6), [2, 3]),
    w: nx.array(new Float64Array(15), [3, 5]),
  });
check<Equals<ReturnType<typeof evalMm>, F64Array<"f32">>>();

// The type-level promotion table equals the value-level one (the literal
// values must match Promote<A, B>, or this object does not compile).
const TABLE: { [A in DType]: { [B in DType]: Promote<A, B> } } = {
  bool: { bool: "bool", u32: "u32", i32: "i32", f16: "f16", f32: "f32" },
  u32: { bool: "u32", u32: "u32", i32: "i32", f16: "f16", f32: "f32" },
  i32: { bool: "i32", u32: "i32", i32: "i32", f16: "f16", f32: "f32" },
  f16: { bool: "f16", u32: "f16", i32: "f16", f16: "f16", f32: "f32" },
  f32: { bool: "f32", u32: "f32", i32: "f32", f16: "f32", f32: "f32" },
};
const pr = nx.promote("u32", "f16");
check<Equals<typeof pr, "f16">>();

// Ill-typed programs do not compile. Each line is wrapped in a function so
// that only the type checker sees it.
export function illTyped(): void {
  // @ts-expect-error exp needs a float expression
  nx.exp(i);
  // @ts-expect-error log needs a float expression
  nx.log(u);
  // @ts-expect-error sqrt is not defined on bool
  nx.sqrt(b);
  // @ts-expect-error norms need a float expression
  nx.layerNorm(i);
  // @ts-expect-error rmsNorm needs a float expression
  nx.rmsNorm(u);
  // @ts-expect-error mean needs a float expression
  nx.mean(i);
  // @ts-expect-error softmax needs a float expression
  nx.softmax(i);
  // @ts-expect-error attention needs float q, k, v
  nx.attention(i, i, i);
  // @ts-expect-error gather indices must be i32 or u32
  nx.gather(f, f);
  // @ts-expect-error the where condition must be bool
  nx.where(f, f, f);
  // @ts-expect-error matmul operands must share a dtype
  nx.matmul(f, i);
  // @ts-expect-error an i32 expression is not an f32 expression
  const _x: Expr<"f32"> = i;
  // @ts-expect-error a comparison is not a float
  const _y: Expr<"f32"> = nx.less(f, 1);
  // @ts-expect-error cast takes a dtype name
  nx.cast(f, "f64");
  // @ts-expect-error inputs take a dtype name
  nx.input("z", [1], "int");
  // @ts-expect-error silu needs a float expression
  nx.silu(i);
}

Deno.test("static dtypes agree with the dtypes computed at run time", () => {
  const pairs: [Expr, DType][] = [
    [fi, "f32"],
    [iu, "i32"],
    [hi, "f16"],
    [fh, "f32"],
    [i1, "i32"],
    [h2, "f16"],
    [uu, "u32"],
    [w, "i32"],
    [wf, "f32"],
    [eq, "bool"],
    [ge, "bool"],
    [c, "i32"],
    [cb, "bool"],
    [e, "f16"],
    [si, "i32"],
    [ni, "i32"],
    [pi, "i32"],
    [ln, "f16"],
    [g, "f32"],
    [mm, "f32"],
  ];
  for (const [x, d] of pairs) assert.equal(x.dtype, d);
  assert.equal(evalMm().dtype, "f32");
  for (const a of nx.DTYPES) {
    for (const bb of nx.DTYPES) assert.equal(nx.promote(a, bb), TABLE[a][bb], `${a}, ${bb}`);
  }
});

Deno.test("the ill-typed calls are also rejected at run time", () => {
  assert.throws(() => illTyped(), TypeError);
  const bad: (() => unknown)[] = [
    () => nx.exp(i as never),
    () => nx.layerNorm(i as never),
    () => nx.mean(i as never),
    () => nx.gather(f, f as never),
    () => nx.where(f as never, f, f),
    () => nx.matmul(f, i as never),
    () => nx.cast(f, "f64" as never),
    () => nx.input("z", [1], "int" as never),
  ];
  for (const fn of bad) assert.throws(fn, TypeError);
});
