/**
 * AdamW and SGD train steps against plain float64 reference loops written
 * out by hand (quadratic losses with known gradients), including the
 * warm-up + cosine schedule, weight-decay masks and gradient clipping.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import { adamw, scheduleAt, sgd, warmupCosine } from "../lib/optim/mod.ts";
import { initOptimizerState, runStepInterpreted, trainStepGraph } from "../lib/train/mod.ts";
import { assertClose, randn } from "./_util.ts";

const f32 = (a: Float64Array) => a.map(Math.fround);

/**
 * loss = ½Σ c_w(w − t_w)² + ½Σ c_b(b − t_b)², so ∂/∂w = c_w(w − t_w), ∂/∂b = c_b(b − t_b).
 */
function quadratic() {
  const w = nx.param("w", [3, 2]), b = nx.param("b", [4]);
  const cw = nx.input("cw", [3, 2]), tw = nx.input("tw", [3, 2]);
  const cb = nx.input("cb", [4]), tb = nx.input("tb", [4]);
  const half = (c: nx.Expr<"f32">, p: nx.Expr<"f32">, t: nx.Expr<"f32">) =>
    nx.mul(nx.sum(nx.mul(c, nx.square(nx.sub(p, t)))), 0.5);
  const loss = nx.add(half(cw, w, tw), half(cb, b, tb));
  const data = {
    cw: f32(randn(6, 11).map((v) => Math.abs(v) + 0.5)),
    tw: f32(randn(6, 12)),
    cb: f32(randn(4, 13).map((v) => Math.abs(v) + 0.5)),
    tb: f32(randn(4, 14)),
  };
  const inputs = {
    cw: nx.array(data.cw, [3, 2]),
    tw: nx.array(data.tw, [3, 2]),
    cb: nx.array(data.cb, [4]),
    tb: nx.array(data.tb, [4]),
  };
  return { loss, data, inputs, w0: f32(randn(6, 15)), b0: f32(randn(4, 16)) };
}

Deno.test("AdamW step matches a hand-written float64 AdamW over 6 steps (schedule, decay mask)", () => {
  const { loss, data, inputs, w0, b0 } = quadratic();
  const lr = warmupCosine({ peak: 0.1, warmup: 2, total: 6, min: 0.01 });
  const [b1, b2, eps, wd] = [0.9, 0.999, 1e-8, 0.1];
  const step = trainStepGraph(
    loss,
    undefined,
    adamw({ lr, beta1: b1, beta2: b2, eps, weightDecay: wd }),
  );
  assert.deepEqual(step.trainable, ["b", "w"]);
  assert.deepEqual(step.slots.map((s) => s.name).sort(), [
    "opt.m.b",
    "opt.m.w",
    "opt.v.b",
    "opt.v.w",
  ]);

  let values: Record<string, nx.NDArray> = {
    w: nx.array(w0, [3, 2]),
    b: nx.array(b0, [4]),
    ...initOptimizerState(step),
  };
  // The reference, plainly: PyTorch AdamW; w (a matrix) is decayed, b (a vector) is not.
  const ref = {
    w: {
      p: Float64Array.from(w0),
      m: new Float64Array(6),
      v: new Float64Array(6),
      c: data.cw,
      t: data.tw,
      decay: true,
    },
    b: {
      p: Float64Array.from(b0),
      m: new Float64Array(4),
      v: new Float64Array(4),
      c: data.cb,
      t: data.tb,
      decay: false,
    },
  };
  for (let t = 1; t <= 6; t++) {
    const r = runStepInterpreted(step, values, inputs, t);
    const lrT = scheduleAt(lr, t);
    let refLoss = 0, sq = 0;
    for (const s of Object.values(ref)) {
      for (let i = 0; i < s.p.length; i++) {
        const g = s.c[i]! * (s.p[i]! - s.t[i]!);
        refLoss += 0.5 * s.c[i]! * (s.p[i]! - s.t[i]!) ** 2;
        sq += g * g;
        s.m[i] = b1 * s.m[i]! + (1 - b1) * g;
        s.v[i] = b2 * s.v[i]! + (1 - b2) * g * g;
        const mhat = s.m[i]! / (1 - b1 ** t);
        const vhat = s.v[i]! / (1 - b2 ** t);
        s.p[i] = s.p[i]! - lrT * (mhat / (Math.sqrt(vhat) + eps) + (s.decay ? wd * s.p[i]! : 0));
        // parameters and state are stored as f32 between steps
        s.p[i] = Math.fround(s.p[i]!);
        s.m[i] = Math.fround(s.m[i]!);
        s.v[i] = Math.fround(s.v[i]!);
      }
    }
    assertClose([r.scalars.loss!], [refLoss], { rtol: 1e-12, atol: 0 }, `loss at step ${t}`);
    assertClose([r.scalars.gradNorm!], [Math.sqrt(sq)], { rtol: 1e-12, atol: 0 }, `norm at ${t}`);
    assertClose([r.scalars.lr!], [lrT], { rtol: 1e-12, atol: 0 }, `lr at step ${t}`);
    values = r.values;
    for (const [name, s] of Object.entries(ref)) {
      const tol = { rtol: 1e-6, atol: 1e-9 };
      assertClose(f32(Float64Array.from(values[name]!.data)), s.p, tol, `${name} at step ${t}`);
      assertClose(f32(Float64Array.from(values[`opt.m.${name}`]!.data)), s.m, tol, `m of ${name}`);
      assertClose(f32(Float64Array.from(values[`opt.v.${name}`]!.data)), s.v, tol, `v of ${name}`);
    }
  }
});

Deno.test("SGD with momentum, coupled weight decay and global-norm clipping matches a float64 loop", () => {
  const { loss, data, inputs, w0, b0 } = quadratic();
  const [mu, wd, lr, clip] = [0.8, 0.05, 0.05, 0.5];
  const step = trainStepGraph(loss, ["w", "b"], sgd({ lr, momentum: mu, weightDecay: wd }), {
    clip,
  });
  let values: Record<string, nx.NDArray> = {
    w: nx.array(w0, [3, 2]),
    b: nx.array(b0, [4]),
    ...initOptimizerState(step),
  };
  const ref = {
    w: { p: Float64Array.from(w0), buf: new Float64Array(6), c: data.cw, t: data.tw, decay: true },
    b: { p: Float64Array.from(b0), buf: new Float64Array(4), c: data.cb, t: data.tb, decay: false },
  };
  let clipped = 0;
  for (let t = 1; t <= 5; t++) {
    const r = runStepInterpreted(step, values, inputs, t);
    const grads = Object.values(ref).map((s) => s.p.map((p, i) => s.c[i]! * (p - s.t[i]!)));
    const norm = Math.sqrt(grads.flatMap((g) => [...g]).reduce((a, g) => a + g * g, 0));
    const scale = Math.min(1, clip / (norm + 1e-6));
    if (scale < 1) clipped++;
    Object.values(ref).forEach((s, k) => {
      for (let i = 0; i < s.p.length; i++) {
        let g = grads[k]![i]! * scale;
        if (s.decay) g += wd * s.p[i]!;
        const buf = mu * s.buf[i]! + g;
        s.p[i] = Math.fround(s.p[i]! - lr * buf);
        s.buf[i] = Math.fround(buf);
      }
    });
    assertClose([r.scalars.gradNorm!], [norm], { rtol: 1e-12, atol: 0 }, `norm at ${t}`);
    values = r.values;
    for (const [name, s] of Object.entries(ref)) {
      const tol = { rtol: 1e-6, atol: 1e-9 };
      assertClose(f32(Float64Array.from(values[name]!.data)), s.p, tol, `${name} at step ${t}`);
      assertClose(
        f32(Float64Array.from(values[`opt.mom.${name}`]!.data)),
        s.buf,
        tol,
        `buf ${name}`,
      );
    }
  }
  assert.ok(clipped > 0, "the test should exercise clipping");
});
