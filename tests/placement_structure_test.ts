/**
 * Structural tests of placements: identity-norm limits (spec §15.8),
 * idempotence, HybridNorm* vs HybridNorm, Mix-LN's switch layer, norm
 * sites per placement, and normalised rows where a norm writes the stream.
 *
 * Graphs are interned, so "the same graph" is checked by identity.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import {
  applyPlacement,
  buildBlock,
  buildModel,
  buildNeutral,
  deepNorm,
  definePlacement,
  hybridNorm,
  hybridNormStar,
  initParams,
  lnScaling,
  mixLn,
  type ModelConfig,
  normFormer,
  type Placement,
  PLACEMENTS,
  postLn,
  preLn,
  qkNorm,
  resolveConfig,
} from "../lib/nn/mod.ts";
import { assertClose, fcParams, rng } from "./_util.ts";

const CFG: ModelConfig = {
  vocabSize: 11,
  dModel: 8,
  nLayers: 3,
  nHeads: 2,
  batch: 1,
  seqLen: 4,
  positions: "rope",
  mlp: "swiglu",
};

/** The placement that adds nothing: sublayers become x + f(x), slots vanish. */
const plain = definePlacement("plain", { norm: { kind: "identity" } }, () => []);

function placed(cfg: ModelConfig, p: Placement): nx.Expr {
  const c = resolveConfig(cfg);
  return applyPlacement([buildNeutral(c, p.compressed).logits], p, c, { verify: true })[0]!;
}

function normsOf(e: nx.Expr): nx.Expr[] {
  return nx.toposort([e]).filter((n) => n.op === "norm");
}

function paramNames(e: nx.Expr): string[] {
  return nx.leavesOf([e]).params.map((p) => p.arg.name);
}

Deno.test("with the identity norm every placement reduces to x + f(x) (§15.8)", () => {
  // every registered placement, with identity norms (extra options where a
  // placement has non-norm features or a second norm kind)
  const special: Record<string, Placement> = {
    "qk-norm": qkNorm({ norm: "identity", qk: "identity" }),
    "normformer": normFormer({ norm: "identity", headScale: "none" }),
  };
  const ref = nx.decompose([placed(CFG, plain)])[0];
  const crmsPlain = definePlacement(
    "plain-c",
    { norm: { kind: "identity" }, compressed: true },
    () => [],
  );
  const refC = nx.decompose([placed(CFG, crmsPlain)])[0];
  const skip = new Set(["deepnorm", "ln-scaling"]); // checked against their own limits below
  for (const name of Object.keys(PLACEMENTS)) {
    if (skip.has(name)) continue;
    const p = special[name] ?? PLACEMENTS[name]!({ norm: "identity" });
    const want = p.compressed ? refC : ref;
    assert.equal(nx.decompose([placed(CFG, p)])[0], want, `${name} with identity norms`);
  }
  assert.equal(nx.decompose([placed(CFG, postLn({ norm: "identity", embNorm: true }))])[0], ref);
  // DeepNorm → αx + f(x)
  const alpha = 1.7;
  const deepRef = definePlacement("deep-ref", { norm: { kind: "identity" } }, (k) => [
    k.sublayer((x, f) => nx.add(nx.mul(x, alpha), f(x))),
  ]);
  assert.equal(
    nx.decompose([placed(CFG, deepNorm({ norm: "identity", alpha }))])[0],
    nx.decompose([placed(CFG, deepRef)])[0],
  );
  assert.notEqual(nx.decompose([placed(CFG, deepRef)])[0], ref);
  // LNS → x + f(x/√l)
  const lnsRef = definePlacement("lns-ref", { norm: { kind: "identity" } }, (k) => [
    k.sublayer((x, f, s) => nx.add(x, f(nx.mul(x, 1 / Math.sqrt(s.l))))),
  ]);
  assert.equal(
    nx.decompose([placed(CFG, lnScaling({ norm: "identity" }))])[0],
    nx.decompose([placed(CFG, lnsRef)])[0],
  );
  // NormFormer keeps its head scale and λ (not norms): numerically x + f(x) when they are 1
  const nf = buildModel(CFG, normFormer({ norm: "identity", residScale: true }));
  const pl = buildModel(CFG, plain);
  assert.ok(nf.params.some((p) => p.name.endsWith("head_scale")));
  const p = initParams(nf, 2);
  const ids = nx.array([1, 2, 3, 4], [1, 4], "i32");
  const [a, b] = interpret([nf.logits, pl.logits], { ...p, ids });
  assertClose(a!.data, b!.data, { atol: 1e-15, rtol: 0 });
});

Deno.test("applying a placement twice changes nothing", () => {
  const c = resolveConfig(CFG);
  for (const name of Object.keys(PLACEMENTS)) {
    const p = PLACEMENTS[name]!();
    const once = placed(CFG, p);
    assert.equal(applyPlacement([once], p, c)[0], once, name);
    // and re-placing the neutral model gives the same interned graph
    assert.equal(placed(CFG, p), once, name);
    // no residual or slot node survives placement
    assert.ok(!nx.toposort([once]).some((e) => e.op === "residual"), name);
  }
});

Deno.test("HybridNorm* differs from HybridNorm only in block 0, by one norm (§6, §15.7)", () => {
  const c = { ...CFG, nLayers: 4 };
  for (let l = 1; l < 4; l++) {
    assert.equal(buildBlock(c, hybridNormStar(), l), buildBlock(c, hybridNorm(), l), `block ${l}`);
  }
  const star = buildBlock(c, hybridNormStar(), 0), hn = buildBlock(c, hybridNorm(), 0);
  assert.notEqual(star, hn);
  assert.equal(normsOf(star).length, normsOf(hn).length + 1);
  const extra = paramNames(star).filter((n) => !paramNames(hn).includes(n));
  assert.deepEqual(extra, ["blocks.0.ln_1.weight"]);
  // and block 0 of HybridNorm* is pre-norm with QKV-norm on both sublayers
  const preQkv = definePlacement("pre-qkv", { norm: { kind: "rms" } }, (k) => [
    k.slot(["attn.q", "attn.k", "attn.v"], (x, s) => k.norm(x, s.name(`${s.slot}_norm`))),
    k.sublayer((x, f, s) => nx.add(x, f(k.norm(x, s.inNorm)))),
  ]);
  assert.equal(star, buildBlock(c, preQkv, 0));
  // HybridNorm block: post-norm attention sublayer + norm-free FFN (§12 item 15)
  const postAttn = definePlacement("post-attn", { norm: { kind: "rms" } }, (k) => [
    k.slot(["attn.q", "attn.k", "attn.v"], (x, s) => k.norm(x, s.name(`${s.slot}_norm`))),
    k.sublayer((x, f, s) => k.norm(nx.add(x, f(x)), s.name("ln_2")), { role: "attn" }),
  ]);
  assert.equal(hn, buildBlock(c, postAttn, 0));
});

Deno.test("mixLn() switches from Post-LN to Pre-LN at ⌊αN⌋", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.constantFrom(0.25, 0.5, 0.75),
      (n, ratio) => {
        const c = { ...CFG, nLayers: n, positions: "none" as const, mlp: "gelu" as const };
        const cut = Math.floor(ratio * n);
        for (let l = 0; l < n; l++) {
          const want = l < cut ? postLn({ norm: "rms" }) : preLn({ norm: "rms" });
          assert.equal(buildBlock(c, mixLn({ ratio }), l), buildBlock(c, want, l), `l=${l}`);
        }
      },
    ),
    fcParams(8),
  );
  // the final norm is kept (§15.11)
  const m = buildModel(CFG, mixLn());
  assert.ok(m.params.some((p) => p.name === "ln_f.weight"));
});

Deno.test("mixLn({ postLayerList }) makes exactly the listed blocks Post-LN", () => {
  const c = { ...CFG, nLayers: 4, positions: "none" as const, mlp: "gelu" as const };
  const list = [1, 3];
  for (let l = 0; l < 4; l++) {
    const want = list.includes(l) ? postLn({ norm: "rms" }) : preLn({ norm: "rms" });
    assert.equal(
      buildBlock(c, mixLn({ postLayerList: list }), l),
      buildBlock(c, want, l),
      `l=${l}`,
    );
  }
  assert.throws(
    () => buildModel(c, mixLn({ postLayerList: [0, 4] })),
    /postLayerList \[0,4\] names block\(s\) 4 outside 0\.\.3/,
  );
});

Deno.test("placements put their norms at the §16 sites", () => {
  const c = { ...CFG, nLayers: 2 };
  const sites = (p: Placement) =>
    [...new Set(paramNames(placed(c, p)).filter((n) => /ln|norm|scale|gain|sigma/.test(n)))]
      .map((n) => n.replace(/^blocks\.1\./, "blocks.*.").replace(/^blocks\.0\./, "blocks.*."))
      .filter((n, i, a) => a.indexOf(n) === i).sort();
  const want: Record<string, string[]> = {
    "post-ln": [
      "blocks.*.ln_1.bias",
      "blocks.*.ln_1.weight",
      "blocks.*.ln_2.bias",
      "blocks.*.ln_2.weight",
    ],
    "pre-rms": ["blocks.*.ln_1.weight", "blocks.*.ln_2.weight", "ln_f.weight"],
    "hybridnorm": [
      "blocks.*.attn.k_norm.weight",
      "blocks.*.attn.q_norm.weight",
      "blocks.*.attn.v_norm.weight",
      "blocks.*.ln_2.weight",
      "ln_f.weight",
    ],
    "sub-ln": [
      "blocks.*.attn.ln_inner.bias",
      "blocks.*.attn.ln_inner.weight",
      "blocks.*.ln_1.bias",
      "blocks.*.ln_1.weight",
      "blocks.*.ln_2.bias",
      "blocks.*.ln_2.weight",
      "blocks.*.mlp.ln_inner.bias",
      "blocks.*.mlp.ln_inner.weight",
      "ln_f.bias",
      "ln_f.weight",
    ],
    "peri-ln": [
      "blocks.*.ln_1.bias",
      "blocks.*.ln_1.weight",
      "blocks.*.ln_2.bias",
      "blocks.*.ln_2.weight",
      "blocks.*.ln_attn_out.bias",
      "blocks.*.ln_attn_out.weight",
      "blocks.*.ln_mlp_out.bias",
      "blocks.*.ln_mlp_out.weight",
      "ln_f.bias",
      "ln_f.weight",
    ],
    "ln-free": [
      "blocks.*.ln_1.bias",
      "blocks.*.ln_1.sigma",
      "blocks.*.ln_1.weight",
      "blocks.*.ln_2.bias",
      "blocks.*.ln_2.sigma",
      "blocks.*.ln_2.weight",
      "ln_f.bias",
      "ln_f.sigma",
      "ln_f.weight",
    ],
  };
  for (const [name, s] of Object.entries(want)) {
    assert.deepEqual(sites(PLACEMENTS[name]!()), s, name);
  }
  const nf = sites(normFormer({ residScale: true }));
  for (
    const n of [
      "blocks.*.attn.head_scale",
      "blocks.*.ln_attn_out.weight",
      "blocks.*.mlp.ln_inner.weight",
      "blocks.*.resid_scale",
    ]
  ) {
    assert.ok(nf.includes(n), n);
  }
  const l2 = sites(qkNorm({ qk: "l2" }));
  assert.ok(l2.includes("blocks.*.attn.qk_gain") && !l2.some((n) => n.includes("q_norm")));
  // deepnorm has no final norm; its sublayer norms are after the add
  assert.ok(!paramNames(placed(c, deepNorm())).includes("ln_f.weight"));
});

Deno.test("Post-LN and DeepNorm streams have normalised rows; Pre-LN's final norm too", () => {
  // ε = 0 so rows are exactly unit-variance (at init the stream variance is ~1e-3, near ε)
  const c = { ...CFG, nLayers: 2, batch: 2, eps: 0 };
  const r = rng(4);
  const ids = nx.array(Array.from({ length: 8 }, () => Math.floor(r() * 11)), [2, 4], "i32");
  for (const p of [postLn(), deepNorm(), preLn()]) {
    const m = buildModel(c, p);
    const params = initParams(m, 9);
    // the unembedding's input: the last norm output (γ = 1, β = 0 at init)
    const un = nx.toposort([m.logits]).find((e) =>
      e.op === "dot" && e.src[1]!.op === "param" &&
      (e.src[1]!.arg as { name: string }).name === "unembed.weight"
    )!;
    const [h] = interpret([un.src[0]!], { ...params, ids });
    const d = 8;
    for (let row = 0; row < h!.data.length / d; row++) {
      const v = h!.data.subarray(row * d, row * d + d);
      const mu = v.reduce((a, x) => a + x, 0) / d;
      const va = v.reduce((a, x) => a + (x - mu) ** 2, 0) / d;
      assert.ok(
        Math.abs(mu) < 1e-12 && Math.abs(va - 1) < 1e-3,
        `${p.name} row ${row}: ${mu} ${va}`,
      );
    }
  }
});
