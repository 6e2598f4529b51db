/**
 * Dtypes: promotion table, predicates, byte sizes and value rounding.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { byteSize, type DType, DTYPES, isDType, isFloat, isInt, promote, roundTo } from "../mod.ts";
import { fcParams } from "./_util.ts";

// The promotion lattice written out by hand (row promotes with column).
const TABLE: Record<DType, Record<DType, DType>> = {
  bool: { bool: "bool", u32: "u32", i32: "i32", f16: "f16", f32: "f32" },
  u32: { bool: "u32", u32: "u32", i32: "i32", f16: "f16", f32: "f32" },
  i32: { bool: "i32", u32: "i32", i32: "i32", f16: "f16", f32: "f32" },
  f16: { bool: "f16", u32: "f16", i32: "f16", f16: "f16", f32: "f32" },
  f32: { bool: "f32", u32: "f32", i32: "f32", f16: "f32", f32: "f32" },
};

Deno.test("promote() matches the hand-written promotion table for all 25 pairs", () => {
  assert.deepEqual([...DTYPES], ["bool", "u32", "i32", "f16", "f32"]);
  for (const a of DTYPES) {
    for (const b of DTYPES) assert.equal(promote(a, b), TABLE[a][b], `${a} with ${b}`);
  }
});

Deno.test("promote() is commutative, associative and idempotent", () => {
  const d = fc.constantFrom(...DTYPES);
  fc.assert(
    fc.property(d, d, d, (a, b, c) => {
      assert.equal(promote(a, b), promote(b, a));
      assert.equal(promote(promote(a, b), c), promote(a, promote(b, c)));
      assert.equal(promote(a, a), a);
    }),
    fcParams(100),
  );
});

Deno.test("isFloat, isInt and isDType classify dtypes", () => {
  assert.deepEqual(DTYPES.filter(isFloat), ["f16", "f32"]);
  assert.deepEqual(DTYPES.filter(isInt), ["u32", "i32"]);
  for (const d of DTYPES) assert.ok(isDType(d));
  for (const s of ["f64", "int", "", "toString", "constructor", "F32"]) assert.ok(!isDType(s), s);
});

Deno.test("byteSize gives the GPU element width", () => {
  assert.deepEqual(DTYPES.map(byteSize), [4, 4, 4, 2, 4]);
});

Deno.test("roundTo rounds floats, truncates and wraps integers, and maps bool to 0/1", () => {
  assert.equal(roundTo("f32", 0.1), Math.fround(0.1));
  assert.equal(roundTo("f16", 65520), Infinity); // past f16's max finite value
  assert.equal(roundTo("f16", 1 / 3), 0.333251953125);
  assert.equal(roundTo("i32", 2.9), 2);
  assert.equal(roundTo("i32", -2.9), -2);
  assert.equal(roundTo("i32", 2 ** 31), -(2 ** 31));
  assert.equal(roundTo("i32", NaN), 0);
  assert.equal(roundTo("u32", -1), 2 ** 32 - 1);
  assert.equal(roundTo("u32", 2 ** 32 + 5), 5);
  assert.equal(roundTo("bool", 0), 0);
  assert.equal(roundTo("bool", -0.5), 1);
  assert.equal(roundTo("bool", 7), 1);
});

Deno.test("roundTo is idempotent for every dtype", () => {
  fc.assert(
    fc.property(fc.constantFrom(...DTYPES), fc.double(), (d, v) => {
      const r = roundTo(d, v);
      assert.ok(Object.is(roundTo(d, r), r));
    }),
    fcParams(300),
  );
});
