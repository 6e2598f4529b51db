/**
 * Train-step graph structure: outputs, per-layer gradient norms, updates
 * covering exactly the trained parameters and their state, frozen
 * parameters left alone, and clear errors.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import { grad } from "../lib/autodiff/mod.ts";
import { adamw, onlyNormParams, sgd } from "../lib/optim/mod.ts";
import {
  initOptimizerState,
  runStepInterpreted,
  STEP_INPUT,
  trainStepGraph,
} from "../lib/train/mod.ts";
import { assertClose, randn } from "./_util.ts";

/** Two blocks with a pre-norm linear sublayer each, an embedding and a FakeLN constant. */
function tinyNet() {
  const x = nx.input("x", [3, 4]);
  let h = nx.mul(x, nx.param("emb.scale", [4]));
  for (let i = 0; i < 2; i++) {
    const ln = nx.add(
      nx.mul(nx.layerNorm(h), nx.param(`blocks.${i}.ln_1.weight`, [4])),
      nx.param(`blocks.${i}.ln_1.bias`, [4]),
    );
    h = nx.add(h, nx.matmul(nx.tanh(ln), nx.param(`blocks.${i}.fc.weight`, [4, 4])));
  }
  const sigma = nx.param("ln_f.sigma", []);
  const loss = nx.mean(nx.square(nx.div(h, sigma)));
  const values: Record<string, nx.NDArray> = {
    "emb.scale": nx.array(randn(4, 1, 0.5).map((v) => v + 1), [4]),
    "ln_f.sigma": nx.array([2], []),
  };
  for (let i = 0; i < 2; i++) {
    values[`blocks.${i}.ln_1.weight`] = nx.array(randn(4, 10 + i, 0.1).map((v) => v + 1), [4]);
    values[`blocks.${i}.ln_1.bias`] = nx.array(randn(4, 20 + i, 0.1), [4]);
    values[`blocks.${i}.fc.weight`] = nx.array(randn(16, 30 + i, 0.5), [4, 4]);
  }
  return { loss, values, inputs: { x: nx.array(randn(12, 5), [3, 4]) } };
}

Deno.test("trainStepGraph outputs loss, lr, global and per-block gradient norms", () => {
  const { loss, values, inputs } = tinyNet();
  const step = trainStepGraph(loss, undefined, sgd({ lr: 0.1 }), {
    metrics: { "h.mean": nx.mean(nx.input("x", [3, 4])) },
  });
  assert.deepEqual(step.outputNames, [
    "loss",
    "gradNorm",
    "lr",
    "gradNorm.blocks.0",
    "gradNorm.blocks.1",
    "gradNorm.other",
    "h.mean",
  ]);
  // FakeLN's σ̄ is a constant: frozen by default
  assert.deepEqual(step.frozen, ["ln_f.sigma"]);
  assert.equal(step.stepInput, STEP_INPUT);
  const r = runStepInterpreted(step, values, inputs, 1);
  const s = r.scalars;
  assertClose(
    [s["gradNorm.blocks.0"]! ** 2 + s["gradNorm.blocks.1"]! ** 2 + s["gradNorm.other"]! ** 2],
    [s.gradNorm! ** 2],
    { rtol: 1e-12 },
  );
  assert.equal(s.lr, 0.1);
  // plain SGD: p' = p − lr·g, with g from the gradient of the same loss
  const [g] = nx.interpret([grad(loss, ["blocks.1.fc.weight"])["blocks.1.fc.weight"]!], {
    ...values,
    ...inputs,
  });
  const p0 = values["blocks.1.fc.weight"]!.data, p1 = r.values["blocks.1.fc.weight"]!.data;
  assertClose(
    Float64Array.from(p1),
    Float64Array.from(p0, (v, i) => Math.fround(v) - 0.1 * g!.data[i]!),
    { rtol: 1e-12, atol: 1e-15 },
  );
});

Deno.test("freezing all but norm parameters updates only them and their AdamW state", () => {
  const { loss, values, inputs } = tinyNet();
  const step = trainStepGraph(loss, onlyNormParams(), adamw({ lr: 0.01 }));
  const norms = [
    "blocks.0.ln_1.bias",
    "blocks.0.ln_1.weight",
    "blocks.1.ln_1.bias",
    "blocks.1.ln_1.weight",
  ];
  assert.deepEqual(step.trainable, norms);
  assert.deepEqual(
    Object.keys(step.updates).sort(),
    [...norms, ...norms.flatMap((n) => [`opt.m.${n}`, `opt.v.${n}`])].sort(),
  );
  const start = { ...values, ...initOptimizerState(step) };
  const r = runStepInterpreted(step, start, inputs, 1);
  for (const n of step.frozen) assert.equal(r.values[n], start[n], `${n} must be untouched`);
  for (const n of norms) assert.notDeepEqual([...r.values[n]!.data], [...start[n]!.data], n);
});

Deno.test("trainStepGraph reports bad selections and clashing metric names", () => {
  const { loss } = tinyNet();
  assert.throws(
    () => trainStepGraph(loss, ["nope"], sgd({ lr: 1 })),
    /no parameter of the loss is selected for training/,
  );
  assert.throws(
    () => trainStepGraph(loss, undefined, sgd({ lr: 1 }), { metrics: { loss } }),
    /already outputs "loss"/,
  );
  const { values, inputs } = tinyNet();
  const step = trainStepGraph(loss, undefined, sgd({ lr: 1 }));
  assert.throws(() => runStepInterpreted(step, values, inputs, 0), RangeError);
});

Deno.test("grad reports non-scalar losses, unknown names and non-leaf wrt", () => {
  const w = nx.param("w", [2]);
  const x = nx.input("x", [2]);
  assert.throws(() => grad(nx.mul(w, 2), ["w"]), /the loss must have one element/);
  assert.throws(() => grad(nx.sum(w), ["v"]), /no parameter of that name.*Parameters: w/);
  assert.throws(() => grad(nx.sum(nx.mul(w, x)), ["x"]), /"x" is an input/);
  assert.throws(() => grad(nx.sum(w), [nx.exp(w)]), /pass a param or input leaf/);
});
