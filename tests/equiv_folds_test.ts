/**
 * Spec §12 items 1, 2, 5–13 as fast-check properties on the float64
 * interpreter, each with a negative test that shows it can fail.
 *
 * Parameters are bound as f32, so a fold that computes new weights is exact
 * only when the new weights are representable: where a test needs that,
 * its factors are powers of two (and it says so); otherwise the tolerance
 * covers one f32 rounding of the weights.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import {
  applyPlacement,
  attentionBody,
  buildModel,
  calibrateFakeLn,
  deepNorm,
  foldDeepNormAlpha,
  foldFakeLn,
  foldHeadScale,
  foldLnScaling,
  foldVNormGain,
  hybridNorm,
  lnFree,
  lnScaling,
  type Model,
  type ModelConfig,
  normFormer,
  normLayer,
  type ParamMap,
  postLn,
  preLn,
  resolveConfig,
} from "../lib/nn/mod.ts";
import { assertClose, fcParams, randomIds, rng } from "./_util.ts";

function gaussFrom(seed: number): () => number {
  const r = rng(seed);
  return () => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
}

/** Random parameters (dyadic: multiples of 2^-8, gains 1 + k/64). */
function randomParams(model: Pick<Model, "params">, seed: number): ParamMap {
  const g = gaussFrom(seed);
  const q = (v: number, bits: number) => Math.round(v * 2 ** bits) / 2 ** bits;
  const out: ParamMap = {};
  for (const p of model.params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    const fanIn = p.shape.length === 2 ? p.shape[0]! : 1;
    for (let i = 0; i < n; i++) {
      if (p.name.endsWith(".sigma")) d[i] = 2 ** Math.round(2 * g()); // powers of two
      else if (/(ln_\w+|_norm|head_scale|resid_scale)(\.weight)?$/.test(p.name)) {
        d[i] = q(1 + 0.4 * g(), 6);
      } else if (/ln_\w+\.bias$/.test(p.name)) d[i] = q(0.3 * g(), 6);
      else if (p.name.endsWith(".bias")) d[i] = q(0.2 * g(), 8);
      else if (p.name.includes("emb")) d[i] = q(0.3 + g(), 8);
      else d[i] = q(g() / Math.sqrt(fanIn), 8);
    }
    out[p.name] = nx.array(d, p.shape, "f32");
  }
  return out;
}

function run(
  cfg: ModelConfig,
  p: Parameters<typeof buildModel>[1],
  params: ParamMap,
  x: nx.NDArray,
): Float64Array {
  return interpret([buildModel(cfg, p).logits], { ...params, ids: x })[0]!.data;
}

function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

const arbCfg = fc.record({
  nLayers: fc.integer({ min: 1, max: 3 }),
  dModel: fc.constantFrom(8, 16),
  seqLen: fc.integer({ min: 2, max: 5 }),
  mlp: fc.constantFrom("gelu", "swiglu", "relu2"),
  positions: fc.constantFrom("learned", "rope"),
  tie: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1e6 }),
}).map((r) => ({
  cfg: {
    vocabSize: 9,
    dModel: r.dModel,
    nLayers: r.nLayers,
    nHeads: 2,
    dFf: 12,
    batch: 1,
    seqLen: r.seqLen,
    mlp: r.mlp as ModelConfig["mlp"],
    positions: r.positions as ModelConfig["positions"],
    tieEmbeddings: r.tie,
  } satisfies ModelConfig,
  seed: r.seed,
}));

Deno.test("§12 items 1, 2, 5, 6: LN = RMS on zero-mean rows, CRMS, mean shift and scale invariance", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 24 }),
      fc.integer({ min: 0, max: 1e6 }),
      fc.double({ min: -10, max: 10, noNaN: true }),
      fc.double({ min: 0.25, max: 4, noNaN: true }),
      (d, seed, c0, a0) => {
        // dyadic values (multiples of 2^-10, c of 2^-6, a of 1/8) so that x, x + c,
        // a·x and a zero-mean x are exact in f32, the dtype inputs are bound in
        const g = gaussFrom(seed);
        const q = (v: number, bits: number) => Math.round(v * 2 ** bits) / 2 ** bits;
        const c = q(c0, 6), a = Math.max(0.25, q(a0, 3));
        const xv = Array.from({ length: 3 * d }, () => q(g(), 10));
        const zm = xv.map((v, i) => (i % d === d - 1 ? 0 : v));
        for (let r = 0; r < 3; r++) {
          zm[r * d + d - 1] = -zm.slice(r * d, r * d + d - 1).reduce((s, t) => s + t, 0);
        }
        const x = nx.input("x", [3, d]);
        const b = { x: nx.array(xv, [3, d]) };
        const bz = { x: nx.array(zm, [3, d]) };
        const ln = normLayer(x, "n", { kind: "layer", affine: false });
        const rms = normLayer(x, "n", { kind: "rms", affine: false });
        // 1: LN(x) = RMS(x) for zero-mean x
        const [l1, r1] = interpret([ln, rms], bz);
        assertClose(r1!.data, l1!.data, { atol: 1e-12 });
        // 2: CRMS(x[:d−1]) = RMS(x)[:d−1] for zero-mean x
        const xc = nx.input("xc", [3, d - 1]);
        const crms = normLayer(xc, "n", { kind: "crms", affine: false });
        const head = zm.filter((_, i) => i % d !== d - 1);
        const [c1] = interpret([crms], { xc: nx.array(head, [3, d - 1]) });
        assertClose(c1!.data, r1!.data.filter((_, i) => i % d !== d - 1), { atol: 1e-12 });
        // 5: LN(x + c·1) = LN(x)
        const [l5] = interpret([ln], { x: nx.array(xv.map((v) => v + c), [3, d]) });
        const [l0] = interpret([ln], b);
        assertClose(l5!.data, l0!.data, { atol: 1e-12 * (1 + Math.abs(c)) });
        // 6: scale invariance, exact with ε = 0
        const ln0 = normLayer(x, "n", { kind: "layer", affine: false, eps: 0 });
        const rms0 = normLayer(x, "n", { kind: "rms", affine: false, eps: 0 });
        const [u, v] = interpret([ln0, rms0], b);
        const [us, vs] = interpret([ln0, rms0], { x: nx.array(xv.map((t) => a * t), [3, d]) });
        assertClose(us!.data, u!.data, { atol: 1e-12 });
        assertClose(vs!.data, v!.data, { atol: 1e-12 });
      },
    ),
    fcParams(20),
  );
  // negative: RMS ≠ LN on rows with a mean
  const x = nx.input("x", [1, 4]);
  const [l, r] = interpret(
    [
      normLayer(x, "n", { kind: "layer", affine: false }),
      normLayer(x, "n", { kind: "rms", affine: false }),
    ],
    { x: nx.array([1, 2, 3, 5], [1, 4]) },
  );
  assert.ok(maxErr(l!.data, r!.data) > 0.1);
  // negative (5): RMSNorm is not mean-shift invariant
  const rmsN = normLayer(x, "n", { kind: "rms", affine: false });
  const [r0] = interpret([rmsN], { x: nx.array([1, -2, 3, -2], [1, 4]) });
  const [r1] = interpret([rmsN], { x: nx.array([2, -1, 4, -1], [1, 4]) });
  assert.ok(maxErr(r0!.data, r1!.data) > 0.1);
  // negative (6): with ε > 0 scale invariance is only ε-close (a = 0.5: ~ε·(1/a² − 1)/2)
  const lnE = normLayer(x, "n", { kind: "layer", affine: false, eps: 1e-5 });
  const [s0] = interpret([lnE], { x: nx.array([1, -1, 1, -1], [1, 4]) });
  const [s1] = interpret([lnE], { x: nx.array([0.5, -0.5, 0.5, -0.5], [1, 4]) });
  const e6 = maxErr(s0!.data, s1!.data);
  assert.ok(e6 > 1e-5 && e6 < 3e-5, `ε-limited scale error ${e6}`);
});

Deno.test("§12 item 7: DeepNorm LN(αx + G) = Post-LN with G/α and ε/α²", () => {
  fc.assert(
    fc.property(arbCfg, fc.constantFrom(2, 4, 0.5), ({ cfg, seed }, alpha) => {
      // α a power of two: W/α and ε/α² are exact, so the check is at float64 precision
      const m = buildModel(cfg, deepNorm({ alpha }));
      const p = randomParams(m, seed);
      const x = randomIds(cfg, seed);
      const ref = interpret([m.logits], { ...p, ids: x })[0]!.data;
      const f = foldDeepNormAlpha(cfg, p, alpha);
      assertClose(run(f.config, f.placement, f.params, x), ref, { atol: 1e-10 * maxAbs(ref) });
      // negative: with ε unchanged the match is only ε-close
      const e = maxErr(run(f.config, postLn(), f.params, x), ref);
      assert.ok(e > 1e-10 * maxAbs(ref) && e < 1e-3 * maxAbs(ref), `unchanged ε: ${e}`);
    }),
    fcParams(10),
  );
  // the default α = (2N)^{1/4} (f32-rounded folded weights)
  const cfg: ModelConfig = { vocabSize: 9, dModel: 8, nLayers: 3, nHeads: 2, batch: 1, seqLen: 4 };
  const m = buildModel(cfg, deepNorm());
  const p = randomParams(m, 5);
  const x = randomIds(cfg, 5);
  const ref = interpret([m.logits], { ...p, ids: x })[0]!.data;
  const f = foldDeepNormAlpha(cfg, p, Math.pow(6, 0.25));
  assertClose(run(f.config, f.placement, f.params, x), ref, { atol: 1e-5 * maxAbs(ref) });
  // negative: Post-LN without the 1/α branch scaling
  assert.ok(maxErr(run(cfg, postLn({ eps: 1e-5 / Math.sqrt(6) }), p, x), ref) > 1e-2);
});

Deno.test("§12 item 8: LayerNorm Scaling = Pre-LN with γ/√l (and β/√l for LayerNorm)", () => {
  fc.assert(
    fc.property(arbCfg, fc.constantFrom("rms", "layer"), ({ cfg, seed }, norm) => {
      const m = buildModel(cfg, lnScaling({ norm }));
      const p = randomParams(m, seed);
      const x = randomIds(cfg, seed);
      const ref = interpret([m.logits], { ...p, ids: x })[0]!.data;
      const f = foldLnScaling(cfg, p, norm);
      // γ/√l is rounded to f32 once (exact for l = 1, 4)
      assertClose(run(f.config, f.placement, f.params, x), ref, { atol: 2e-6 * maxAbs(ref) });
      if (cfg.nLayers > 1) {
        // negative: the unscaled Pre-LN model differs
        assert.ok(maxErr(run(cfg, preLn({ norm }), p, x), ref) > 1e-3 * maxAbs(ref));
      }
    }),
    fcParams(12),
  );
  // negative (§15.2): with LayerNorm, scaling γ but not β is wrong
  const cfg: ModelConfig = { vocabSize: 9, dModel: 8, nLayers: 2, nHeads: 2, batch: 1, seqLen: 4 };
  const m = buildModel(cfg, lnScaling({ norm: "layer" }));
  const p = randomParams(m, 8);
  const x = randomIds(cfg, 8);
  const ref = interpret([m.logits], { ...p, ids: x })[0]!.data;
  const f = foldLnScaling(cfg, p, "layer");
  const wrong = { ...f.params, "blocks.1.ln_1.bias": p["blocks.1.ln_1.bias"]! };
  assert.ok(maxErr(run(cfg, preLn(), wrong, x), ref) > 1e-3 * maxAbs(ref));
});

Deno.test("§12 item 9: FakeLN folds exactly into the next linear layer", () => {
  fc.assert(
    fc.property(arbCfg, ({ cfg, seed }) => {
      const m = buildModel(cfg, lnFree());
      const p = randomParams(m, seed); // σ̄ powers of two: γ/σ̄ exact
      const x = randomIds(cfg, seed);
      const ref = interpret([m.logits], { ...p, ids: x })[0]!.data;
      const f = foldFakeLn(cfg, p);
      assert.ok(!buildModel(f.config, f.placement).params.some((q) => q.name.includes("ln_")));
      assertClose(run(f.config, f.placement, f.params, x), ref, { atol: 1e-10 * maxAbs(ref) });
      // negative: a real LayerNorm is not affine, so the same fold is not exact for it
      const lnRef = run(cfg, preLn(), p, x);
      assert.ok(maxErr(lnRef, run(f.config, f.placement, f.params, x)) > 1e-3);
    }),
    fcParams(12),
  );
});

Deno.test("§12 item 10: NormFormer head scale folds into W_O (pre_WO rows, post_WO columns and bias)", () => {
  fc.assert(
    fc.property(arbCfg, fc.constantFrom("pre_WO", "post_WO"), ({ cfg, seed }, headScale) => {
      const o = { headScale, postAttnNorm: false, residScale: true } as const;
      const m = buildModel(cfg, normFormer(o));
      const p = randomParams(m, seed);
      const x = randomIds(cfg, seed);
      const ref = interpret([m.logits], { ...p, ids: x })[0]!.data;
      const f = foldHeadScale(cfg, p, o);
      assert.ok(!Object.keys(f.params).some((n) => n.includes("head_scale")));
      assertClose(run(f.config, f.placement, f.params, x), ref, { atol: 1e-10 * maxAbs(ref) });
      // negative: the other placement's fold (rows ↔ columns) is wrong
      const other = headScale === "pre_WO" ? "post_WO" : "pre_WO";
      const g = foldHeadScale(cfg, p, { ...o, headScale: other });
      assert.ok(maxErr(run(f.config, f.placement, g.params, x), ref) > 1e-3 * maxAbs(ref));
    }),
    fcParams(12),
  );
  assert.throws(
    () =>
      foldHeadScale(
        { vocabSize: 9, dModel: 8, nLayers: 1, nHeads: 2, batch: 1, seqLen: 2 },
        {},
        {},
      ),
    /with LN_post on/,
  );
});

Deno.test("§12 item 13: HybridNorm's γ_v folds into W_O", () => {
  fc.assert(
    fc.property(arbCfg, ({ cfg, seed }) => {
      const m = buildModel(cfg, hybridNorm());
      const p = randomParams(m, seed);
      const x = randomIds(cfg, seed);
      const ref = interpret([m.logits], { ...p, ids: x })[0]!.data;
      const f = foldVNormGain(cfg, p);
      assertClose(run(cfg, hybridNorm(), f, x), ref, { atol: 1e-10 * maxAbs(ref) });
      // negative: scaling W_O's columns instead of its rows
      const c = resolveConfig(cfg);
      const wrong = { ...f };
      for (let i = 0; i < c.nLayers; i++) {
        const w = nx.toFloat64(p[`blocks.${i}.attn.o.weight`]!);
        const gv = nx.toFloat64(p[`blocks.${i}.attn.v_norm.weight`]!);
        const D = c.dModel;
        wrong[`blocks.${i}.attn.o.weight`] = nx.array(w.map((v, k) => v * gv[(k % D) % c.dHead]!), [
          D,
          D,
        ], "f32");
      }
      assert.ok(maxErr(run(cfg, hybridNorm(), wrong, x), ref) > 1e-3 * maxAbs(ref));
    }),
    fcParams(12),
  );
});

/** The placed HybridNorm attention sublayer alone: h ↦ Attn_qkv(h). */
function qkvAttention(cfg: ModelConfig) {
  const c = resolveConfig(cfg);
  const h = nx.input("h", [c.batch, c.seqLen, c.dModel]);
  const [out] = applyPlacement([attentionBody(c, 0, h)], hybridNorm(), c);
  const names = nx.leavesOf([out!]).params;
  return { out: out!, c, params: names.map((e) => ({ name: e.arg.name, shape: e.shape })) };
}

Deno.test("§12 item 11: QKV-norm attention is invariant to x → c·x, W → c·W and (γ_q, γ_k) → (cγ_q, γ_k/c)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1e6 }),
      fc.double({ min: 0.25, max: 4, noNaN: true }),
      fc.constantFrom(0.25, 0.5, 2, 4),
      fc.constantFrom("rope", "learned"),
      (seed, cs, cpow, positions) => {
        const cfg: ModelConfig = {
          vocabSize: 5,
          dModel: 8,
          nLayers: 1,
          nHeads: 2,
          batch: 1,
          seqLen: 4,
          bias: false,
          positions: positions as ModelConfig["positions"],
        };
        // ε = 0: the invariances are exact; dyadic h, W and c keep c·h and c·W exact in f32
        const c = Math.round(cs * 16) / 16;
        const exact = qkvAttention({ ...cfg, eps: 0 });
        const withEps = qkvAttention(cfg);
        const p = randomParams(exact as unknown as Pick<Model, "params">, seed);
        const g = gaussFrom(seed + 1);
        const hv = Array.from({ length: 32 }, () => Math.round(g() * 1024) / 1024);
        const at = (m: { out: nx.Expr }, h: number[], q: ParamMap) =>
          interpret([m.out], { ...q, h: nx.array(h, [1, 4, 8]) })[0]!.data;
        const ref = at(exact, hv, p);
        const scale = maxAbs(ref);
        assertClose(at(exact, hv.map((v) => v * c), p), ref, { atol: 1e-12 * scale });
        const pw: ParamMap = { ...p };
        for (const t of ["q", "k", "v"]) {
          const n = `blocks.0.attn.${t}.weight`;
          pw[n] = nx.array(nx.toFloat64(p[n]!).map((v) => v * c), p[n]!.shape, "f32");
        }
        assertClose(at(exact, hv, pw), ref, { atol: 1e-12 * scale });
        // (γ_q, γ_k) → (cγ_q, γ_k/c), c a power of two: exact
        const pg: ParamMap = { ...p };
        const sc = (n: string, f: number) =>
          nx.array(nx.toFloat64(p[n]!).map((v) => v * f), p[n]!.shape, "f32");
        pg["blocks.0.attn.q_norm.weight"] = sc("blocks.0.attn.q_norm.weight", cpow);
        pg["blocks.0.attn.k_norm.weight"] = sc("blocks.0.attn.k_norm.weight", 1 / cpow);
        assertClose(at(exact, hv, pg), ref, { atol: 1e-12 * scale });
        // ε = 1e-5: ε-limited, the error grows like ε / (c²·mean square of the projections)
        const refE = at(withEps, hv, p);
        const e = maxErr(at(withEps, hv.map((v) => v * c), p), refE) / maxAbs(refE);
        assert.ok(e < 2e-3 / Math.min(1, c * c), `ε-limited error ${e} at c = ${c}`);
        // negative: the invariance breaks when the projections' mean square ≲ ε (c = 1e-3)
        assert.ok(maxErr(at(withEps, hv.map((v) => v * 1e-3), p), refE) > 1e-2 * maxAbs(refE));
      },
    ),
    fcParams(12),
  );
});

Deno.test("§12 item 12: γ_q ⊙ r, γ_k ⊘ r keeps logits without RoPE; with RoPE only for pair-equal r", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
      const base: ModelConfig = {
        vocabSize: 5,
        dModel: 8,
        nLayers: 1,
        nHeads: 2,
        batch: 1,
        seqLen: 4,
        bias: false,
      };
      const g = gaussFrom(seed + 3);
      const hv = Array.from({ length: 32 }, g);
      // r: powers of two per coordinate of d_h = 4 (exact products)
      const r = [0.5, 2, 4, 0.25];
      const rPair = [0.5, 2, 0.5, 2]; // equal within half-split pairs (j, j + 2)
      const errFor = (positions: "rope" | "none", rr: number[]) => {
        const a = qkvAttention({ ...base, positions });
        const p = randomParams(a as unknown as Pick<Model, "params">, seed);
        const q2: ParamMap = { ...p };
        const gq = nx.toFloat64(p["blocks.0.attn.q_norm.weight"]!);
        const gk = nx.toFloat64(p["blocks.0.attn.k_norm.weight"]!);
        q2["blocks.0.attn.q_norm.weight"] = nx.array(gq.map((v, i) => v * rr[i]!), [4], "f32");
        q2["blocks.0.attn.k_norm.weight"] = nx.array(gk.map((v, i) => v / rr[i]!), [4], "f32");
        const at = (q: ParamMap) =>
          interpret([a.out], { ...q, h: nx.array(hv, [1, 4, 8]) })[0]!.data;
        const ref = at(p);
        return maxErr(at(q2), ref) / Math.max(1, maxAbs(ref));
      };
      assert.ok(errFor("none", r) < 1e-12, "no RoPE, any r");
      assert.ok(errFor("rope", rPair) < 1e-12, "RoPE, pair-equal r");
      const e = errFor("rope", r);
      assert.ok(e > 1e-3, `negative: RoPE with generic r must fail, got ${e}`);
    }),
    fcParams(10),
  );
});

Deno.test("calibrateFakeLn() measures each LayerNorm input's mean row std", () => {
  const cfg: ModelConfig = { vocabSize: 9, dModel: 8, nLayers: 2, nHeads: 2, batch: 2, seqLen: 4 };
  const pre = buildModel(cfg, preLn());
  const p = randomParams(pre, 12);
  const x = randomIds(cfg, 3);
  const sig = calibrateFakeLn(pre, p, { ids: x });
  assert.deepEqual(Object.keys(sig).sort(), [
    "blocks.0.ln_1.sigma",
    "blocks.0.ln_2.sigma",
    "blocks.1.ln_1.sigma",
    "blocks.1.ln_2.sigma",
    "ln_f.sigma",
  ]);
  // block 0's first norm reads the embeddings: recompute their mean row std by hand
  const E = nx.toFloat64(p["tok_emb.weight"]!), P = nx.toFloat64(p["pos_emb.weight"]!);
  let acc = 0;
  for (let i = 0; i < 8; i++) {
    const id = x.data[i]!, t = i % 4;
    const row = Array.from({ length: 8 }, (_, j) => E[id * 8 + j]! + P[t * 8 + j]!);
    const m = row.reduce((a, v) => a + v, 0) / 8;
    acc += Math.sqrt(row.reduce((a, v) => a + (v - m) ** 2, 0) / 8);
  }
  assertClose(sig["blocks.0.ln_1.sigma"]!.data, [Math.fround(acc / 8)], { atol: 1e-7 });
  // an LN-free model with these σ̄ and the Pre-LN γ/β runs and stays near Pre-LN at block 0
  const free = buildModel(cfg, lnFree());
  const [a, b] = [
    interpret([free.logits], { ...p, ...sig, ids: x })[0]!.data,
    interpret([pre.logits], { ...p, ids: x })[0]!.data,
  ];
  assert.ok(a.every(Number.isFinite) && maxErr(a, b) < maxAbs(b));
  assert.throws(
    () => calibrateFakeLn(buildModel(cfg, preLn({ affine: false })), p, { ids: x }),
    /no γ/,
  );
});
