/**
 * Decompositions of composites into primitives.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../mod.ts";
import { decompose, type Expr, OP_KIND, toposort } from "../mod.ts";
import { fcParams } from "./_util.ts";
import { arbRecipe, buildRecipe } from "./fixtures/graphs.ts";

const composites = (roots: readonly Expr[]) =>
  toposort(roots).filter((e) => OP_KIND[e.op] === "composite");

Deno.test("decompose() leaves no composite and keeps shapes and dtypes", () => {
  fc.assert(
    fc.property(arbRecipe, (r) => {
      const ns = buildRecipe(r);
      const ds = decompose(ns);
      assert.equal(composites(ds).length, 0);
      ds.forEach((d, i) => {
        assert.deepEqual(d.shape, ns[i]!.shape);
        assert.equal(d.dtype, ns[i]!.dtype);
      });
    }),
    fcParams(100),
  );
});

Deno.test("decompose() returns primitive graphs unchanged and is idempotent", () => {
  const x = nx.input("x", [2, 3]);
  const prim = nx.softmax(nx.mul(x, 2));
  assert.equal(decompose([prim])[0], prim);
  const comp = nx.layerNorm(nx.attention(x, x, x, { causal: true }));
  const once = decompose([comp]);
  assert.deepEqual(decompose(once), once);
  // Interning: decomposing twice gives the very same nodes.
  assert.equal(decompose([comp])[0], once[0]);
});

Deno.test("decompose() handles nested residuals with composites in their bodies", () => {
  const x = nx.input("x", [2, 4]);
  const r0 = nx.residual(x, (h) => nx.attention(nx.rmsNorm(h), h, h, { causal: true }), {
    role: "attn",
    layer: 0,
  });
  const r1 = nx.residual(
    r0,
    (h) => nx.residual(h, (g) => nx.layerNorm(g), { role: "in", layer: 0 }),
    {
      role: "mlp",
      layer: 0,
    },
  );
  const [d] = decompose([r1]);
  assert.equal(composites([d!]).length, 0);
  assert.ok(!toposort([d!]).some((e) => e.op === "hole"), "every hole filled");
  // The residual stream reaches the output through the additions.
  assert.ok(toposort([d!]).includes(x));
});

Deno.test("a residual whose body ignores its hole decomposes to x + body", () => {
  const x = nx.input("x", [3]), c = nx.input("c", [3]);
  const r = nx.residual(x, () => c, { role: "mlp", layer: 0 });
  assert.equal(decompose([r])[0], nx.add(x, c));
});

Deno.test("norm decompositions are the spec's formulas", () => {
  const x = nx.input("x", [2, 5]);
  const d = 5;
  const [rms] = decompose([nx.rmsNorm(x, { eps: 1e-6 })]);
  const ms = nx.mul(nx.sum(nx.square(x), -1, { keepdims: true }), 1 / d);
  assert.equal(rms, nx.mul(x, nx.rsqrt(nx.add(ms, 1e-6))));
  const [fake] = decompose([nx.fakeNorm(x, 4)]);
  const mu = nx.mul(nx.sum(x, -1, { keepdims: true }), 1 / d);
  assert.equal(fake, nx.mul(nx.sub(x, mu), 0.25));
});
