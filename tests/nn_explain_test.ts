/**
 * Tests of explainModel(): golden text for the main placements, and every
 * norm node of every placement shows up exactly once.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../lib/ir/mod.ts";
import {
  buildModel,
  explainModel,
  type ModelConfig,
  normFormer,
  PLACEMENTS,
  qkNorm,
} from "../lib/nn/mod.ts";

const CFG: ModelConfig = {
  vocabSize: 11,
  dModel: 8,
  nLayers: 2,
  nHeads: 2,
  batch: 1,
  seqLen: 4,
};

Deno.test("explainModel() shows Pre-LN, Post-LN, HybridNorm and HybridNorm* blocks", () => {
  const golden: Record<string, string> = {
    "pre-ln": `pre-ln: 2 blocks, d_model 8, stream norm LN
  x0 = tok_emb[ids] + pos_emb
block 0
  x1 = x0 + Attn0(LN[ln_1](x0))
  x2 = x1 + MLP0(LN[ln_2](x1))
block 1
  x3 = x2 + Attn1(LN[ln_1](x2))
  x4 = x3 + MLP1(LN[ln_2](x3))
head
  logits = unembed(LN[ln_f](x4))`,
    "post-ln": `post-ln: 2 blocks, d_model 8, stream norm LN
  x0 = tok_emb[ids] + pos_emb
block 0
  x1 = LN[ln_1](x0 + Attn0(x0))
  x2 = LN[ln_2](x1 + MLP0(x1))
block 1
  x3 = LN[ln_1](x2 + Attn1(x2))
head
  logits = unembed(LN[ln_2](x3 + MLP1(x3)))`,
    "hybridnorm": `hybridnorm: 2 blocks, d_model 8, stream norm RMS
  x0 = tok_emb[ids] + pos_emb
block 0
  x1 = RMS[ln_2](x0 + Attn0[q_norm: RMS, k_norm: RMS, v_norm: RMS](x0))
  x2 = x1 + MLP0(x1)
block 1
  x3 = RMS[ln_2](x2 + Attn1[q_norm: RMS, k_norm: RMS, v_norm: RMS](x2))
  x4 = x3 + MLP1(x3)
head
  logits = unembed(RMS[ln_f](x4))`,
    "hybridnorm-star": `hybridnorm-star: 2 blocks, d_model 8, stream norm RMS
  x0 = tok_emb[ids] + pos_emb
block 0
  x1 = x0 + Attn0[q_norm: RMS, k_norm: RMS, v_norm: RMS](RMS[ln_1](x0))
  x2 = x1 + MLP0(RMS[ln_2](x1))
block 1
  x3 = RMS[ln_2](x2 + Attn1[q_norm: RMS, k_norm: RMS, v_norm: RMS](x2))
  x4 = x3 + MLP1(x3)
head
  logits = unembed(RMS[ln_f](x4))`,
  };
  for (const [name, text] of Object.entries(golden)) {
    assert.equal(explainModel(buildModel(CFG, name)), text, name);
  }
});

Deno.test("explainModel() mentions every norm node of every placement once", () => {
  const cases = [
    ...Object.keys(PLACEMENTS).map((n) => PLACEMENTS[n]!()),
    normFormer({ headScale: "post_WO", residScale: true }),
    qkNorm({ qk: "l2" }),
    PLACEMENTS["pre-ln"]!({ affine: false }),
  ];
  for (const p of cases) {
    for (const cfg of [CFG, { ...CFG, positions: "rope" as const, mlp: "swiglu" as const }]) {
      const m = buildModel(cfg, p);
      const text = explainModel(m);
      const shown = text.split("\n").slice(1).join("\n")
        .match(/\b(LN|RMS|CRMS|L2|FakeLN)(?=[[(\],])/g) ?? [];
      const nodes = nx.toposort([m.logits]).filter((e) => e.op === "norm");
      assert.equal(shown.length, nodes.length, `${p.name}:\n${text}`);
    }
  }
});
