import { assertClose } from "./_util.ts";
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import { buildModel, initParams } from "../lib/nn/mod.ts";
const { activationRms, attentionEntropy, blockStreams, updateRatios } = nx;

Deno.test("attentionEntropy() is log(keys seen) for uniform attention, causal or not", () => {
  const T = 5;
  const q = nx.input("q", [1, 2, T, 4]);
  const k = nx.input("k", [1, 2, T, 4]);
  const v = nx.input("v", [1, 2, T, 4]);
  const zeros = nx.array(new Float64Array(2 * T * 4), [1, 2, T, 4]);
  const ones = nx.array(new Float64Array(2 * T * 4).fill(1), [1, 2, T, 4]);
  for (const causal of [false, true]) {
    const a = nx.attention(q, k, v, { causal });
    const ent = attentionEntropy(nx.sum(a));
    const [h] = nx.interpret([ent["attnEntropy.0"]!], { q: zeros, k: ones, v: ones });
    let expected = Math.log(T);
    if (causal) {
      expected = Array.from({ length: T }, (_, i) => Math.log(i + 1)).reduce((x, y) => x + y) / T;
    }
    assertClose(h!.data, [expected], { atol: 1e-9 }, `entropy causal=${causal}`);
  }
});

Deno.test("blockStreams() gives the placed stream after each block, feeding the logits", () => {
  const cfg = { vocabSize: 11, dModel: 8, nLayers: 2, nHeads: 2, batch: 1, seqLen: 4 };
  for (const variant of ["pre-ln", "post-ln", "hybridnorm", "hybridnorm-star"]) {
    const model = buildModel(cfg, variant);
    const streams = blockStreams(model);
    assert.equal(streams.length, 2, variant);
    const inLogits = new Set(nx.toposort([model.logits]));
    for (const s of streams) {
      assert.ok(inLogits.has(s), `${variant}: stream is a node of the logits graph`);
    }
    const params = initParams(model, 3);
    const ids = nx.array(new Int32Array([1, 2, 3, 4]), [1, 4], "i32");
    const rms = activationRms(model);
    const [s1, r1] = nx.interpret([streams[1]!, rms["actRms.1"]!], { ...params, ids });
    const manual = Math.sqrt(s1!.data.reduce((a, x) => a + x * x, 0) / s1!.data.length);
    assertClose(r1!.data, [manual], { atol: 1e-12 }, `${variant} actRms.1`);
    if (variant === "post-ln") {
      assertClose(r1!.data, [1], { atol: 1e-3 }, "post-LN stream is normalised");
    }
  }
});

Deno.test("updateRatios() computes ‖ΔW‖/‖W‖ per block over matrices", () => {
  const w0 = nx.param("blocks.0.mlp.fc1.weight", [2, 2]);
  const w1 = nx.param("blocks.1.mlp.fc1.weight", [2, 2]);
  const b0 = nx.param("blocks.0.mlp.fc1.bias", [2]);
  const upd = {
    ["blocks.0.mlp.fc1.weight"]: nx.mul(w0, 1.5),
    ["blocks.1.mlp.fc1.weight"]: nx.add(w1, 1),
    ["blocks.0.mlp.fc1.bias"]: nx.mul(b0, 9),
  };
  const r = updateRatios([w0, w1, b0] as nx.Expr[], upd);
  assert.deepEqual(Object.keys(r).sort(), ["updateRatio.blocks.0", "updateRatio.blocks.1"]);
  const vals = {
    ["blocks.0.mlp.fc1.weight"]: nx.array([1, 2, 3, 4], [2, 2]),
    ["blocks.1.mlp.fc1.weight"]: nx.array([1, 1, 1, 1], [2, 2]),
  };
  const [a, b] = nx.interpret([r["updateRatio.blocks.0"]!, r["updateRatio.blocks.1"]!], vals);
  assertClose(a!.data, [0.5], { atol: 1e-12 });
  assertClose(b!.data, [1], { atol: 1e-12 });
});
