/**
 * Shapes: formatting, strides, validation, axis normalisation and NumPy
 * broadcasting laws (against a hand-written reference).
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  broadcastShapes,
  checkShape,
  fmtShape,
  normAxes,
  normAxis,
  numel,
  shapeEq,
  stridesOf,
} from "../mod.ts";
import { arbShape, fcParams, npBroadcast, ravel, unravel } from "./_util.ts";

// Shapes that often broadcast: sizes drawn from {1, 2, 3}.
const arbBShape = fc.array(fc.constantFrom(1, 2, 3), { maxLength: 4 });

Deno.test("fmtShape, numel and stridesOf describe row-major shapes", () => {
  assert.equal(fmtShape([]), "[]");
  assert.equal(fmtShape([2, 3, 4]), "[2,3,4]");
  assert.equal(numel([]), 1);
  assert.equal(numel([2, 0, 5]), 0);
  assert.equal(numel([2, 3, 4]), 24);
  assert.deepEqual(stridesOf([2, 3, 4]), [12, 4, 1]);
  assert.deepEqual(stridesOf([]), []);
});

Deno.test("stridesOf agrees with ravel on every element", () => {
  fc.assert(
    fc.property(arbShape(4, 4), (s) => {
      const st = stridesOf(s);
      for (let i = 0; i < numel(s); i++) {
        const idx = unravel(i, s);
        assert.equal(idx.reduce((acc, v, a) => acc + v * st[a]!, 0), i);
        assert.equal(ravel(idx, s), i);
      }
    }),
    fcParams(100),
  );
});

Deno.test("shapeEq compares rank and sizes", () => {
  assert.ok(shapeEq([], []));
  assert.ok(shapeEq([2, 3], [2, 3]));
  assert.ok(!shapeEq([2, 3], [3, 2]));
  assert.ok(!shapeEq([2], [2, 1]));
});

Deno.test("checkShape freezes a copy and rejects bad sizes with the shape in the message", () => {
  const src = [2, 3];
  const s = checkShape(src, "Cannot test");
  assert.ok(Object.isFrozen(s));
  assert.notEqual(s, src);
  assert.deepEqual(s, [2, 3]);
  assert.throws(() => checkShape([2, -1], "Cannot test"), {
    name: "TypeError",
    message: "Cannot test: shape [2,-1] has size -1; sizes must be non-negative integers",
  });
  assert.throws(() => checkShape([1.5], "Cannot test"), { name: "TypeError", message: /size 1.5/ });
  assert.throws(() => checkShape([NaN], "Cannot test"), { name: "TypeError", message: /size NaN/ });
  assert.throws(() => checkShape(3 as unknown as number[], "Cannot test"), {
    name: "TypeError",
    message: "Cannot test: expected a shape array, got 3",
  });
});

Deno.test("broadcastShapes is commutative", () => {
  fc.assert(
    fc.property(arbBShape, arbBShape, (a, b) => {
      assert.deepEqual(broadcastShapes(a, b), broadcastShapes(b, a));
    }),
    fcParams(300),
  );
});

Deno.test("broadcastShapes has [] as identity", () => {
  fc.assert(
    fc.property(arbShape(5, 5, 0), (a) => {
      assert.deepEqual(broadcastShapes(a, []), a);
      assert.deepEqual(broadcastShapes([], a), a);
    }),
    fcParams(200),
  );
});

Deno.test("broadcastShapes is associative (including where it fails)", () => {
  fc.assert(
    fc.property(arbBShape, arbBShape, arbBShape, (a, b, c) => {
      const ab = broadcastShapes(a, b), bc = broadcastShapes(b, c);
      const left = ab && broadcastShapes(ab, c);
      const right = bc && broadcastShapes(a, bc);
      // Pairwise failure on either side means the triple does not broadcast.
      assert.deepEqual(left ?? undefined, right ?? undefined);
    }),
    fcParams(300),
  );
});

Deno.test("broadcastShapes agrees with a hand-written NumPy rule", () => {
  fc.assert(
    fc.property(arbBShape, arbBShape, (a, b) => {
      const got = broadcastShapes(a, b);
      const want = npBroadcast(a, b);
      assert.deepEqual(got === undefined ? undefined : [...got], want);
      if (got) assert.ok(Object.isFrozen(got));
    }),
    fcParams(300),
  );
  // Cases worth naming.
  assert.deepEqual(broadcastShapes([8, 1, 6, 1], [7, 1, 5]), [8, 7, 6, 5]);
  assert.deepEqual(broadcastShapes([5, 4], [1]), [5, 4]);
  assert.deepEqual(broadcastShapes([0], [1]), [0]);
  assert.equal(broadcastShapes([2, 1], [8, 4, 3]), undefined);
  assert.equal(broadcastShapes([0], [2]), undefined);
});

Deno.test("normAxis counts negative axes from the end and names the valid range", () => {
  assert.equal(normAxis(-1, 3, "Cannot t"), 2);
  assert.equal(normAxis(0, 3, "Cannot t"), 0);
  assert.equal(normAxis(-3, 3, "Cannot t"), 0);
  assert.throws(() => normAxis(3, 3, "Cannot sum f32[2,3,4]"), {
    name: "RangeError",
    message: "Cannot sum f32[2,3,4]: axis 3 is out of range for rank 3 (valid: -3..2)",
  });
  assert.throws(() => normAxis(-4, 3, "Cannot t"), { name: "RangeError", message: /axis -4/ });
  assert.throws(() => normAxis(0.5, 3, "Cannot t"), {
    name: "RangeError",
    message: /axis 0.5 is not an integer/,
  });
  assert.throws(() => normAxis(0, 0, "Cannot sum f32[]"), {
    name: "RangeError",
    message: "Cannot sum f32[]: axis 0 is out of range: a rank-0 (scalar) shape has no axes",
  });
});

Deno.test("normAxes sorts, and rejects repeated axes naming the user's list", () => {
  assert.deepEqual(normAxes([2, 0], 3, "Cannot t"), [0, 2]);
  assert.deepEqual(normAxes([-1, 0], 3, "Cannot t"), [0, 2]);
  assert.deepEqual(normAxes([], 3, "Cannot t"), []);
  assert.throws(() => normAxes([1, -2], 3, "Cannot sum f32[2,3,4]"), {
    name: "RangeError",
    message: "Cannot sum f32[2,3,4]: axis 1 is repeated in [1,-2]",
  });
});

Deno.test("normAxes gives sorted distinct in-range axes for any valid list", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }).chain((r) =>
        fc.tuple(fc.constant(r), fc.uniqueArray(fc.integer({ min: -r, max: r - 1 })))
      ),
      ([r, axes]) => {
        const norm = axes.map((a) => (a < 0 ? a + r : a));
        if (new Set(norm).size !== norm.length) {
          assert.throws(() => normAxes(axes, r, "Cannot t"), RangeError);
          return;
        }
        assert.deepEqual(normAxes(axes, r, "Cannot t"), [...norm].sort((x, y) => x - y));
      },
    ),
    fcParams(200),
  );
});
