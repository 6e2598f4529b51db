/**
 * GPU checks of the backward pass and the train step: gradients compiled
 * by kernels/ match the float64 interpreter (tolerance growing with the
 * reduction length), and a compiled AdamW step run through trainLoop
 * (parameters and state staying on the GPU) matches runStepInterpreted.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import { compile } from "../kernels/mod.ts";
import { valueAndGrad } from "../lib/autodiff/mod.ts";
import { tokenCrossEntropy } from "../lib/nn/mod.ts";
import { adamw, warmupCosine } from "../lib/optim/mod.ts";
import {
  initOptimizerState,
  runStepInterpreted,
  trainLoop,
  trainStepGraph,
} from "../lib/train/mod.ts";
import { hasGpu, randn, rng } from "./_util.ts";

const gpu = await hasGpu();
const V = 8, D = 16, F = 32, B = 16;

/** A tiny LM: embedding, LayerNorm with affine, GELU MLP, softmax cross-entropy. */
function tinyLm() {
  const x = nx.input("x", [B], "i32"), y = nx.input("y", [B], "i32");
  const emb = nx.gather(nx.param("tok_emb.weight", [V, D]), x);
  const h = nx.add(nx.mul(nx.layerNorm(emb), nx.param("ln.weight", [D])), nx.param("ln.bias", [D]));
  const a = nx.gelu(
    nx.add(nx.matmul(h, nx.param("fc1.weight", [D, F])), nx.param("fc1.bias", [F])),
  );
  const loss = tokenCrossEntropy(nx.matmul(a, nx.param("fc2.weight", [F, V])), y);
  const params: Record<string, nx.NDArray> = {
    "tok_emb.weight": nx.array(new Float32Array(randn(V * D, 1)), [V, D]),
    "ln.weight": nx.array(new Float32Array(randn(D, 2, 0.1).map((v) => v + 1)), [D]),
    "ln.bias": nx.array(new Float32Array(randn(D, 3, 0.1)), [D]),
    "fc1.weight": nx.array(new Float32Array(randn(D * F, 4, 0.3)), [D, F]),
    "fc1.bias": nx.array(new Float32Array(F), [F]),
    "fc2.weight": nx.array(new Float32Array(randn(F * V, 5, 0.3)), [F, V]),
  };
  const r = rng(6);
  const batch = () => ({
    x: nx.array(Int32Array.from({ length: B }, () => Math.floor(r() * V)), [B], "i32"),
    y: nx.array(Int32Array.from({ length: B }, () => Math.floor(r() * V)), [B], "i32"),
  });
  return { loss, params, batch };
}

/** |a − e| ≤ tol·(1 + k/16)·max|e| with k the longest reduction feeding the value. */
function assertNear(a: ArrayLike<number>, e: ArrayLike<number>, k: number, what: string): void {
  let m = 0;
  for (let i = 0; i < e.length; i++) m = Math.max(m, Math.abs(e[i]!));
  const tol = 2e-6 * (1 + k / 16) * Math.max(m, 1e-6);
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(a[i]! - e[i]!);
    if (!(d <= tol)) {
      throw new Error(`${what}[${i}]: got ${a[i]}, expected ${e[i]} (|diff| ${d} > ${tol})`);
    }
  }
}

Deno.test({
  name:
    "compiled gradients match the interpreter's (gather, LayerNorm, GELU, matmul, cross-entropy)",
  ignore: !gpu,
  async fn() {
    const { loss, params, batch } = tinyLm();
    const { value, grads } = valueAndGrad(loss);
    const names = Object.keys(grads);
    const outs = [value, ...names.map((n) => grads[n]!)];
    using prog = await compile(outs);
    prog.setParams(params);
    const data = batch();
    const got = await prog.run(data);
    const ref = nx.interpret(outs, { ...params, ...data });
    // the longest reductions: B rows into weight gradients, F/D/V features per row
    assertNear(got[0]!.data, ref[0]!.data, V, "loss");
    names.forEach((n, i) => assertNear(got[i + 1]!.data, ref[i + 1]!.data, Math.max(B, F), n));
  },
});

Deno.test({
  name: "a compiled AdamW step run by trainLoop matches runStepInterpreted over 3 steps",
  ignore: !gpu,
  async fn() {
    const { loss, params, batch } = tinyLm();
    const opt = adamw({ lr: warmupCosine({ peak: 0.05, warmup: 1, total: 3 }), weightDecay: 0.1 });
    const step = trainStepGraph(loss, undefined, opt, { clip: 1 });
    const start = { ...params, ...initOptimizerState(step) };
    using prog = await compile(step.outputList, { updates: step.updates });
    prog.setParams(start);
    const batches = [batch(), batch(), batch()];
    const log = await trainLoop(prog, step, { steps: 3, batch: (t) => batches[t - 1]! });
    let values: Record<string, nx.NDArray> = start;
    for (let t = 1; t <= 3; t++) {
      const r = runStepInterpreted(step, values, batches[t - 1]!, t);
      values = r.values;
      for (const n of ["loss", "gradNorm", "lr"]) {
        assertNear([log[t - 1]!.values[n]!], [r.scalars[n]!], Math.max(B, F), `${n} at step ${t}`);
      }
    }
    const onGpu = await prog.getParams();
    assert.deepEqual(Object.keys(onGpu).sort(), Object.keys(values).sort());
    for (const [n, v] of Object.entries(values)) {
      // AdamW divides by √v̂: relative errors of the gradient pass through, so compare per element
      const a = onGpu[n]!.data, e = v.data;
      for (let i = 0; i < e.length; i++) {
        const d = Math.abs(a[i]! - e[i]!);
        const tol = 1e-5 * Math.abs(e[i]!) + (n.startsWith("opt.v.") ? 1e-9 : 1e-5);
        if (!(d <= tol)) throw new Error(`${n}[${i}]: got ${a[i]}, expected ${e[i]} (|diff| ${d})`);
      }
    }
  },
});
