/**
 * Spec §4 / §12 items 3–4: Pre-LN ≡ zero-mean Pre-LN ≡ Pre-RMSNorm ≡
 * Pre-CRMSNorm on logits for random configs and weights, and equal
 * gradients in the on-the-fly training form; with negative tests showing
 * the properties can fail.
 *
 * The float64 interpreter binds parameters in their declared dtype (f32),
 * so converted weights are rounded to f32 when bound. With "dyadic" random
 * weights (multiples of 2^-8, gains 1 + k/64) and a power-of-two width
 * every conversion is exact in f32, and the check is at float64 precision;
 * with Gaussian weights the rounding is the only error, and the spec's
 * float32 tolerance (rtol 1e-5 of max|logit|) applies.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import { grad } from "../lib/autodiff/mod.ts";
import {
  buildModel,
  centerOnTheFly,
  compressStream,
  foldPreLnAffine,
  type Model,
  type ModelConfig,
  type ParamMap,
  preCrms,
  preLn,
  recenterWriters,
  toPreCrms,
  toPreRms,
  toZeroMeanPreLn,
} from "../lib/nn/mod.ts";
import { assertClose, fcParams, randomIds, rng } from "./_util.ts";

/** Random parameters for a model; dyadic ones are exact under every §4 transform. */
function randomParams(model: Model, seed: number, dyadic: boolean): ParamMap {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
  const q = (v: number, bits: number) => dyadic ? Math.round(v * 2 ** bits) / 2 ** bits : v;
  const out: ParamMap = {};
  for (const p of model.params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    const isGain = /(ln_\w+)\.weight$/.test(p.name);
    const isNormBias = /(ln_\w+)\.bias$/.test(p.name);
    const fanIn = p.shape.length === 2 ? p.shape[0]! : 1;
    for (let i = 0; i < n; i++) {
      if (isGain) d[i] = q(1 + 0.3 * gauss(), 6);
      else if (isNormBias) d[i] = q(0.3 * gauss(), 6);
      else if (p.name.endsWith(".bias")) d[i] = q(0.2 * gauss(), 8);
      else if (p.name.includes("emb")) d[i] = q(0.5 + gauss(), 8); // nonzero mean on purpose
      else d[i] = q(gauss() / Math.sqrt(fanIn), 8);
    }
    out[p.name] = nx.array(d, p.shape, "f32");
  }
  return out;
}

function logitsOf(
  cfg: ModelConfig,
  placement: Parameters<typeof buildModel>[1],
  p: ParamMap,
  x: nx.NDArray,
) {
  const m = buildModel(cfg, placement);
  return interpret([m.logits], { ...p, ids: x })[0]!.data;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

const arbConfig = fc.record({
  nLayers: fc.integer({ min: 1, max: 3 }),
  dModel: fc.constantFrom(8, 16, 32),
  heads: fc.constantFrom(1, 2, 4),
  seqLen: fc.integer({ min: 2, max: 6 }),
  batch: fc.integer({ min: 1, max: 2 }),
  mlp: fc.constantFrom("gelu", "relu2", "swiglu"),
  positions: fc.constantFrom("learned", "rope", "none"),
  bias: fc.boolean(),
  tieEmbeddings: fc.boolean(),
  causal: fc.boolean(),
  gqa: fc.boolean(),
}).map((r): ModelConfig => ({
  vocabSize: 9,
  dModel: r.dModel,
  nLayers: r.nLayers,
  nHeads: r.heads,
  nKvHeads: r.gqa && r.heads > 1 ? r.heads / 2 : r.heads,
  dFf: r.dModel + 4,
  batch: r.batch,
  seqLen: r.seqLen,
  mlp: r.mlp as ModelConfig["mlp"],
  positions: r.positions as ModelConfig["positions"],
  bias: r.bias,
  tieEmbeddings: r.tieEmbeddings,
  causal: r.causal,
}));

Deno.test("Pre-LN ≡ zero-mean Pre-LN ≡ Pre-RMSNorm ≡ Pre-CRMSNorm on logits (float64, exact weights)", () => {
  fc.assert(
    fc.property(arbConfig, fc.integer({ min: 0, max: 1e6 }), (cfg, seed) => {
      const base = buildModel(cfg, preLn());
      const p = randomParams(base, seed, true);
      const x = randomIds(cfg, seed + 1);
      const ref = interpret([base.logits], { ...p, ids: x })[0]!.data;
      const tol = { atol: 1e-10 * Math.max(1, maxAbs(ref)), rtol: 0 };
      for (const conv of [toZeroMeanPreLn, toPreRms, toPreCrms]) {
        const c = conv(cfg, p);
        const got = logitsOf(c.config, c.placement, c.params, x);
        assertClose(got, ref, tol, `${conv.name} ${JSON.stringify(cfg)}`);
      }
    }),
    fcParams(25),
  );
});

Deno.test("Pre-LN ≡ Pre-RMSNorm ≡ Pre-CRMSNorm with Gaussian weights (f32-rounded, rtol 1e-5 of max|logit|)", () => {
  fc.assert(
    fc.property(arbConfig, fc.integer({ min: 0, max: 1e6 }), (cfg, seed) => {
      const c0 = { ...cfg, dModel: cfg.dModel + (cfg.nHeads === 1 ? 2 : 0) }; // not only 2^k widths
      const base = buildModel(c0, preLn());
      const p = randomParams(base, seed, false);
      const x = randomIds(c0, seed + 1);
      const ref = interpret([base.logits], { ...p, ids: x })[0]!.data;
      const tol = { atol: 1e-5 * Math.max(1, maxAbs(ref)) * c0.nLayers, rtol: 0 };
      for (const conv of [toPreRms, toPreCrms]) {
        const c = conv(c0, p);
        assertClose(logitsOf(c.config, c.placement, c.params, x), ref, tol, conv.name);
      }
    }),
    fcParams(10),
  );
});

Deno.test("§4 negative: skipping a step breaks the equivalence", () => {
  const cfg: ModelConfig = { vocabSize: 9, dModel: 16, nLayers: 2, nHeads: 2, batch: 2, seqLen: 4 };
  const base = buildModel(cfg, preLn());
  const p = randomParams(base, 3, true);
  const x = randomIds(cfg, 4);
  const ref = interpret([base.logits], { ...p, ids: x })[0]!.data;
  const err = (a: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - ref[i]!));
    return m;
  };
  // fold without recentring, then RMSNorm: the stream is not zero-mean
  const f = foldPreLnAffine(cfg, p);
  assert.ok(err(logitsOf(f.config, preLn({ norm: "rms", affine: false }), f.params, x)) > 1e-2);
  // RMSNorm with the original affine parameters, no conversion at all
  assert.ok(err(logitsOf(cfg, preLn({ norm: "rms" }), p, x)) > 1e-2);
  // compress without recentring (CRMS assumes a zero-mean stream)
  const bad = compressStream(f.config, f.params);
  assert.ok(err(logitsOf(f.config, preCrms({ affine: false }), bad, x)) > 1e-2);
  // recentred but not folded: β is then added after the norm; a RMS model without β differs
  const r = recenterWriters({ ...cfg, tieEmbeddings: false }, p);
  assert.ok(err(logitsOf(cfg, preLn({ norm: "rms" }), r, x)) > 1e-2);
  // and the positive control: recentring alone keeps Pre-LN exact (LN removes the mean)
  assert.ok(err(logitsOf(cfg, preLn(), r, x)) < 1e-10);
});

function gradsOf(loss: nx.Expr, params: ParamMap, bind: Record<string, nx.NDArray>) {
  const g = grad(loss, Object.keys(params));
  const names = Object.keys(g).sort();
  const vals = interpret(names.map((n) => g[n]!), { ...params, ...bind });
  return Object.fromEntries(names.map((n, i) => [n, vals[i]!.data]));
}

function centralDiff(
  loss: nx.Expr,
  params: ParamMap,
  bind: Record<string, nx.NDArray>,
  name: string,
  index: number,
): number {
  const base = params[name]!;
  const at = (delta: number) => {
    const d = new Float32Array(base.data as Float32Array);
    d[index] = d[index]! + delta;
    const v = d[index]!; // the f32 value actually bound
    const [l] = interpret([loss], { ...params, ...bind, [name]: nx.array(d, base.shape, "f32") });
    return { v, l: l!.data[0]! };
  };
  const h = 2 ** -10;
  const a = at(h), b = at(-h);
  return (a.l - b.l) / (a.v - b.v);
}

Deno.test("§4 training equivalence: raw Pre-LN gradients equal the on-the-fly Pre-RMSNorm's", () => {
  const configs: ModelConfig[] = [
    { vocabSize: 9, dModel: 8, nLayers: 2, nHeads: 2, batch: 2, seqLen: 4 },
    {
      vocabSize: 7,
      dModel: 12,
      nLayers: 1,
      nHeads: 3,
      batch: 1,
      seqLen: 5,
      mlp: "swiglu",
      positions: "rope",
      tieEmbeddings: true,
    },
  ];
  for (const [ci, cfg] of configs.entries()) {
    const m = buildModel(cfg, preLn());
    const p = randomParams(m, 10 + ci, false);
    const bind = { ids: randomIds(cfg, 1), targets: randomIds(cfg, 2) };
    const fly = centerOnTheFly(m);
    const kinds = nx.toposort([fly.logits]).filter((e) => e.op === "norm")
      .map((e) => (e.arg as nx.OpArgs["norm"]).kind);
    assert.ok(kinds.length === 2 * cfg.nLayers + 1 && kinds.every((k) => k === "rms"));
    // the same function of the raw parameters
    const [l0, l1] = interpret([m.loss, fly.loss], { ...p, ...bind });
    assertClose(l1!.data, l0!.data, { atol: 1e-12 });
    // autodiff gradients agree for every parameter
    const g0 = gradsOf(m.loss, p, bind), g1 = gradsOf(fly.loss, p, bind);
    for (const n of Object.keys(g0)) {
      assertClose(g1[n]!, g0[n]!, { atol: 1e-9 * Math.max(1, maxAbs(g0[n]!)), rtol: 0 }, n);
    }
    // float64 central differences on both graphs, for a few entries of W_O, W_2, E, γ/β, W_QKV
    const picks = [
      "blocks.0.attn.o.weight",
      "blocks.0.mlp.fc2.weight",
      "tok_emb.weight",
      "blocks.0.ln_1.weight",
      "blocks.0.ln_2.bias",
      "blocks.0.attn.q.weight",
      "ln_f.weight",
    ];
    for (const n of picks) {
      const idx = (ci * 7 + n.length) % p[n]!.data.length;
      const d0 = centralDiff(m.loss, p, bind, n, idx);
      const d1 = centralDiff(fly.loss, p, bind, n, idx);
      assertClose([d1], [d0], { atol: 1e-9 }, `FD ${n}[${idx}] on-the-fly vs Pre-LN`);
      // and autodiff matches the finite difference (O(h²) truncation)
      assertClose([g0[n]![idx]!], [d0], { atol: 1e-6, rtol: 1e-4 }, `grad vs FD ${n}[${idx}]`);
    }
    // Pre-LN: ∂L/∂W_O sums to 0 over the output axis (§15.1: W stored [in, out])
    const go = g0["blocks.0.attn.o.weight"]!;
    const [rows, cols] = p["blocks.0.attn.o.weight"]!.shape as [number, number];
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let j = 0; j < cols; j++) s += go[i * cols + j]!;
      assert.ok(Math.abs(s) < 1e-12 * Math.max(1, maxAbs(go)) * cols, `row ${i}: ${s}`);
    }
  }
});

Deno.test("§4 negative: training pre-centred Pre-RMSNorm weights directly is not equivalent", () => {
  const cfg: ModelConfig = { vocabSize: 9, dModel: 8, nLayers: 2, nHeads: 2, batch: 2, seqLen: 4 };
  const m = buildModel(cfg, preLn());
  const p = randomParams(m, 21, true);
  const bind = { ids: randomIds(cfg, 1), targets: randomIds(cfg, 2) };
  const c = toPreRms(cfg, p);
  const rms = buildModel(c.config, c.placement);
  // same loss value …
  const [l0] = interpret([m.loss], { ...p, ...bind });
  const [l1] = interpret([rms.loss], { ...c.params, ...bind });
  assertClose(l1!.data, l0!.data, { atol: 1e-10 });
  // … but the RMS model's ∂L/∂W_O has a mean component over the output axis
  const g = gradsOf(rms.loss, c.params, bind)["blocks.0.attn.o.weight"]!;
  let worst = 0;
  for (let i = 0; i < 8; i++) {
    let s = 0;
    for (let j = 0; j < 8; j++) s += g[i * 8 + j]!;
    worst = Math.max(worst, Math.abs(s));
  }
  assert.ok(worst > 1e-4 * maxAbs(g), `row sums ${worst}`);
});
