/**
 * Optimizer building blocks: schedules (graph = host), bias corrections,
 * clipping, parameter masks and argument validation.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../mod.ts";
import {
  adamw,
  clipByGlobalNorm,
  isNormParam,
  oneMinusPow,
  onlyNormParams,
  scheduleAt,
  scheduleExpr,
  selectParams,
  sgd,
  warmupCosine,
} from "../lib/optim/mod.ts";
import { assertClose, fcParams } from "./_util.ts";

Deno.test("warm-up + cosine schedule: the graph equals the host formula at every step", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 20 }),
      fc.integer({ min: 1, max: 50 }),
      fc.double({ min: 1e-5, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (warmup, span, peak, minFrac) => {
        const s = warmupCosine({ peak, warmup, total: warmup + span, min: peak * minFrac });
        const t = nx.input("t", [], "f32");
        const e = scheduleExpr(s, t);
        for (
          const step of [
            1,
            warmup,
            warmup + 1,
            warmup + Math.ceil(span / 2),
            warmup + span,
            warmup + span + 7,
          ]
        ) {
          if (step < 1) continue;
          const [v] = nx.interpret([e], { t: nx.array([step], []) });
          assertClose(v!.data, [scheduleAt(s, step)], { rtol: 1e-12, atol: 1e-15 }, `lr(${step})`);
        }
      },
    ),
    fcParams(40),
  );
  const s = warmupCosine({ peak: 1, warmup: 10, total: 110, min: 0.1 });
  assert.equal(scheduleAt(s, 5), 0.5);
  assert.equal(scheduleAt(s, 10), 1);
  assertClose([scheduleAt(s, 60)], [0.55], { atol: 1e-15 });
  assert.equal(scheduleAt(s, 110), 0.1);
  assert.equal(scheduleAt(s, 500), 0.1);
});

Deno.test("oneMinusPow is 1 − βᵗ to 1e-12 relative, on both branches", () => {
  const t = nx.input("t", [], "f32");
  for (const beta of [0.9, 0.99, 0.999, 0.9999]) {
    const e = oneMinusPow(beta, t);
    for (const step of [1, 2, 5, 10, 100, 1000, 100000]) {
      const [v] = nx.interpret([e], { t: nx.array([step], []) });
      assertClose(v!.data, [1 - beta ** step], { rtol: 1e-12, atol: 0 }, `1-${beta}^${step}`);
    }
  }
});

Deno.test("clipByGlobalNorm scales only when the norm exceeds the limit", () => {
  const a = nx.param("a", [2]), b = nx.param("b", [1]);
  for (const [va, vb, max] of [[[3, 0], [4], 1], [[0.3, 0], [0.4], 1]] as const) {
    const c = clipByGlobalNorm({ a, b }, max);
    const vals = { a: nx.array([...va], [2]), b: nx.array([...vb], [1]) };
    const [n, ca, cb] = nx.interpret([c.norm, c.grads.a!, c.grads.b!], vals);
    const norm = Math.hypot(va[0], va[1], vb[0]);
    assertClose(n!.data, [norm], { atol: 1e-6 });
    const k = Math.min(1, max / (norm + 1e-6));
    assertClose(ca!.data, va.map((v) => v * k), { atol: 1e-12 });
    assertClose(cb!.data, vb.map((v) => v * k), { atol: 1e-12 });
  }
  assert.throws(() => clipByGlobalNorm({ a }, 0), RangeError);
});

Deno.test("parameter masks: norm parameters by name, selections, sigma never trained", () => {
  for (
    const n of [
      "blocks.0.ln_1.weight",
      "blocks.2.ln_2.bias",
      "ln_f.weight",
      "blocks.1.attn.q_norm.weight",
      "blocks.1.attn.ln_inner.weight",
      "blocks.0.ln_attn_out.weight",
    ]
  ) assert.ok(isNormParam(n), n);
  for (
    const n of [
      "tok_emb.weight",
      "blocks.0.attn.q.weight",
      "blocks.0.mlp.fc1.bias",
      "blocks.0.ln_1.sigma",
      "unembed.weight",
      "blocks.0.resid_scale",
    ]
  ) assert.ok(!isNormParam(n), n);
  const p = onlyNormParams([/^unembed\./]);
  assert.ok(p("unembed.bias") && p("ln_f.bias") && !p("tok_emb.weight"));
  const sel = selectParams(["w", /^blocks\.1\./]);
  assert.ok(sel("w") && sel("blocks.1.x") && !sel("blocks.10") && !sel("ww"));
});

Deno.test("optimizers reject bad hyper-parameters with RangeError", () => {
  assert.throws(() => adamw({ lr: 1e-3, beta1: 1 }), /beta1 1 is outside \[0, 1\)/);
  assert.throws(() => adamw({ lr: 1e-3, eps: 0 }), RangeError);
  assert.throws(() => sgd({ lr: 0.1, momentum: -0.1 }), RangeError);
  assert.throws(() => sgd({ lr: 0.1, nesterov: true }), /Nesterov/);
  assert.throws(() => warmupCosine({ peak: 1, warmup: 10, total: 10 }), /total \(10\) must be/);
  assert.throws(() => scheduleAt(-1, 1), RangeError);
});
