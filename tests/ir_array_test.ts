/**
 * Host arrays: construction, validation, conversion.
 *
 * @module
 */
import assert from "node:assert/strict";
import { array, toFloat64, toNested } from "../mod.ts";

Deno.test("array() copies number lists into float64 and freezes the record", () => {
  const src = [1, 2, 3, 4, 5, 6];
  const a = array(src, [2, 3]);
  assert.equal(a.dtype, "f32");
  assert.deepEqual(a.shape, [2, 3]);
  assert.ok(a.data instanceof Float64Array);
  src[0] = 99;
  assert.equal(a.data[0], 1);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.shape));
});

Deno.test("array() defaults to a 1-D shape and fills from one number", () => {
  assert.deepEqual(array([1, 2, 3]).shape, [3]);
  const f = array(7, [2, 2], "i32");
  assert.deepEqual([...f.data], [7, 7, 7, 7]);
  assert.equal(f.dtype, "i32");
  assert.deepEqual([...array(2.5).data], [2.5]);
  assert.deepEqual(array([], [0, 3]).shape, [0, 3]);
  assert.deepEqual([...array(1, []).data], [1]);
});

Deno.test("array() keeps typed arrays as given", () => {
  const d = new Int32Array([1, -2]);
  assert.equal(array(d, [2], "i32").data, d);
});

Deno.test("array() rejects bad data, shapes and dtypes with clear messages", () => {
  assert.throws(() => array([1, 2, 3], [2, 2]), {
    name: "TypeError",
    message: "Cannot make an array of shape [2,2]: it needs 4 values, got 3",
  });
  assert.throws(() => array([1, 2], [2, -1]), {
    name: "TypeError",
    message: "Cannot make an array: shape [2,-1] has size -1; sizes must be non-negative integers",
  });
  assert.throws(() => array([1], [1], "f64" as "f32"), {
    name: "TypeError",
    message: 'Cannot make an array: unknown dtype "f64"',
  });
  // Nested lists would otherwise become NaN silently.
  assert.throws(() => array([[1, 2]] as unknown as number[], [1]), {
    name: "TypeError",
    message:
      "Cannot make an array: data[0] is object, not a number; pass flat row-major numbers (e.g. data.flat())",
  });
  assert.throws(() => array("abc" as unknown as number[], [3]), {
    name: "TypeError",
    message:
      "Cannot make an array: data must be a number, a number list or a typed array, got string",
  });
});

Deno.test("toFloat64 rounds each value to the array's dtype", () => {
  assert.deepEqual([...toFloat64(array([0.1], [1]))], [Math.fround(0.1)]);
  assert.deepEqual([...toFloat64(array([2.7, -2.7, 2 ** 31], [3], "i32"))], [2, -2, -(2 ** 31)]);
  assert.deepEqual([...toFloat64(array([-1], [1], "u32"))], [2 ** 32 - 1]);
  assert.deepEqual([...toFloat64(array([0, 3], [2], "bool"))], [0, 1]);
  const src = array([1, 2], [2]);
  assert.notEqual(toFloat64(src), src.data);
});

Deno.test("toNested rebuilds nested lists row-major", () => {
  assert.deepEqual(toNested(array([1, 2, 3, 4, 5, 6], [2, 3])), [[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(toNested(array([1, 2], [2, 1, 1])), [[[1]], [[2]]]);
  assert.equal(toNested(array(5, [])), 5);
  assert.deepEqual(toNested(array([], [2, 0])), [[], []]);
});
