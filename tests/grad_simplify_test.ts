/**
 * Backward graphs stay small: no multiplications by 1, no additions of 0,
 * no double negations or chained views, no constant-only subgraphs, and a
 * node count within a small factor of the forward graph's.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import { constValue, grad, valueAndGrad } from "../lib/autodiff/mod.ts";
import { tokenCrossEntropy } from "../lib/nn/mod.ts";

/** Every node of the backward graphs that the forward graph does not have, with a reason it is wasteful. */
function waste(value: nx.Expr, grads: readonly nx.Expr[]): string[] {
  const fwd = new Set(nx.toposort([value]));
  const bad: string[] = [];
  for (const e of nx.toposort(grads)) {
    if (fwd.has(e) || e.src.length === 0) continue;
    const c = e.src.map(constValue);
    const what = `${e.op} ${nx.fmtShape(e.shape)}`;
    // (pad of a constant is not constant: it has a zero border)
    if (e.op !== "pad" && c.every((v) => v !== undefined)) bad.push(`constant-only ${what}`);
    if (e.op === "mul" && c.some((v) => v === 1 || v === 0)) bad.push(`mul by ${c} in ${what}`);
    if ((e.op === "add" || e.op === "sub") && c.some((v) => v === 0)) bad.push(`+0 in ${what}`);
    if (e.op === "neg" && e.src[0]!.op === "neg") bad.push(`double neg ${what}`);
    for (const op of ["reshape", "expand", "permute"]) {
      if (e.op === op && e.src[0]!.op === op) bad.push(`${op} of ${op}`);
    }
    if (e.op === "slice" && e.src[0]!.op === "pad") bad.push(`slice of pad ${what}`);
  }
  return bad;
}

function losses(): [string, nx.Expr][] {
  const x = nx.input("x", [2, 6, 8]);
  const w1 = nx.param("w1", [8, 16]), w2 = nx.param("w2", [16, 8]);
  const g = nx.param("ln.weight", [8]), b = nx.param("ln.bias", [8]);
  const y = nx.input("y", [2, 6], "i32");
  const mlp = nx.matmul(nx.gelu(nx.matmul(nx.add(nx.mul(nx.layerNorm(x), g), b), w1)), w2);
  const q = nx.reshape(nx.matmul(x, nx.param("wq", [8, 8])), [2, 6, 2, 4]);
  const k = nx.reshape(nx.matmul(x, nx.param("wk", [8, 8])), [2, 6, 2, 4]);
  const v = nx.reshape(nx.matmul(x, nx.param("wv", [8, 8])), [2, 6, 2, 4]);
  const perm = [0, 2, 1, 3];
  const att = nx.attention(nx.permute(q, perm), nx.permute(k, perm), nx.permute(v, perm), {
    causal: true,
  });
  const emb = nx.gather(nx.param("emb", [10, 8]), y);
  return [
    ["mse mlp", nx.mean(nx.square(mlp))],
    ["cross-entropy", tokenCrossEntropy(nx.add(x, mlp), y)],
    ["attention", nx.mean(nx.square(nx.permute(att, perm)))],
    ["embedding + rms", nx.sum(nx.mul(nx.rmsNorm(emb), x))],
    ["slices", nx.sum(nx.mul(nx.concat([nx.slice(w1, 1, 0, 4), nx.slice(w1, 1, 4, 16)], 1), 3))],
  ];
}

Deno.test("backward graphs carry no ·1, +0, double negation, view chains or constant subgraphs", () => {
  for (const [name, loss] of losses()) {
    const { value, grads } = valueAndGrad(loss);
    assert.deepEqual(waste(value, Object.values(grads)), [], name);
  }
});

Deno.test("backward graphs stay within 1.5× the forward graph's node count", () => {
  for (const [name, loss] of losses()) {
    const { value, grads } = valueAndGrad(loss);
    const f = nx.toposort([value]).length;
    const all = nx.toposort([value, ...Object.values(grads)]).length;
    if (Deno.env.get("GRAD_SIZES")) console.log(`${name}: forward ${f}, backward adds ${all - f}`);
    assert.ok(all - f <= 1.5 * f, `${name}: forward ${f} nodes, backward adds ${all - f}`);
  }
});

Deno.test("simple gradients are exactly the expected nodes", () => {
  const x = nx.input("x", [3, 4]), w = nx.param("w", [3, 4]), u = nx.param("u", [5]);
  const g = grad(nx.add(nx.sum(nx.mul(x, w)), nx.scalar(2)), [w, u]);
  assert.equal(g.w, x, "∂Σ(x·w)/∂w is x itself");
  assert.equal(g.u, nx.full([5], 0), "an unused parameter gets a zero constant");
  assert.equal(grad(nx.sum(nx.mul(x, w)), [x]).x, w, "inputs can be differentiated too");
  const s = grad(nx.sum(nx.square(w)), ["w"]);
  assert.equal(s.w, nx.mul(w, 2), "∂Σw²/∂w is w·2, summed once");
});
