/**
 * Init rules and statistics per variant (spec §1, §3, §6, §12 item 16,
 * §15.3–15.4): sample standard deviations within 2% of the constants.
 *
 * @module
 */
import assert from "node:assert/strict";
import type * as nx from "../lib/ir/mod.ts";
import {
  buildModel,
  deepNorm,
  deepNormConstants,
  initParams,
  initRuleFor,
  lnFree,
  type ModelConfig,
  normFormer,
  qkGainInit,
  qkNorm,
  resolveConfig,
  subLn,
} from "../lib/nn/mod.ts";

// large enough tables for ~1% sampling error on each std (≥ 16k samples per check)
const BIG: ModelConfig = {
  vocabSize: 512,
  dModel: 64,
  nLayers: 4,
  nHeads: 4,
  dFf: 256,
  batch: 1,
  seqLen: 4,
  maxSeqLen: 256,
  mlp: "swiglu",
};

function pooled(
  p: Record<string, nx.NDArray>,
  re: RegExp,
): { std: number; mean: number; max: number } {
  let n = 0, s = 0, s2 = 0, max = 0;
  for (const [k, v] of Object.entries(p)) {
    if (!re.test(k)) continue;
    for (const x of v.data) {
      n++;
      s += x;
      s2 += x * x;
      max = Math.max(max, Math.abs(x));
    }
  }
  assert.ok(n > 1000, `too few samples for ${re}: ${n}`);
  const mean = s / n;
  return { std: Math.sqrt(s2 / n - mean * mean), mean, max };
}

function near(got: number, want: number, rel: number, what: string): void {
  assert.ok(Math.abs(got - want) <= rel * want, `${what}: ${got} vs ${want} (±${rel * 100}%)`);
}

const Q = /attn\.(q|k)\.weight$/, V = /attn\.v\.weight$/, O = /attn\.o\.weight$/;
const FC = /mlp\.(fc1|fc2)\.weight$/, GATE = /mlp\.gate\.weight$/;

Deno.test("initParams() is deterministic per (seed, name) and independent of other params", () => {
  const a = initParams(buildModel(BIG, "pre-ln"), 7);
  const b = initParams(buildModel(BIG, "pre-ln"), 7);
  const c = initParams(buildModel(BIG, "pre-ln"), 8);
  const q = initParams(buildModel(BIG, qkNorm()), 7); // more parameters, same names share values
  for (const k of Object.keys(a)) {
    assert.deepEqual(a[k]!.data, b[k]!.data, k);
    assert.deepEqual(q[k]!.data, a[k]!.data, k);
  }
  assert.notDeepEqual(a["blocks.0.attn.q.weight"]!.data, c["blocks.0.attn.q.weight"]!.data);
  assert.notDeepEqual(a["blocks.0.attn.q.weight"]!.data, a["blocks.0.attn.k.weight"]!.data);
});

Deno.test("normal init: N(0, 0.02) weights, unit gains, zero biases", () => {
  const p = initParams(buildModel(BIG, normFormer({ residScale: true })), 1);
  for (const re of [Q, V, O, FC, GATE, /^tok_emb/, /^pos_emb/, /^unembed/]) {
    const s = pooled(p, re);
    near(s.std, 0.02, 0.02, String(re));
    assert.ok(Math.abs(s.mean) < 0.002, `${re} mean ${s.mean}`);
  }
  for (const [k, v] of Object.entries(p)) {
    if (/(ln_\w+\.weight|head_scale|resid_scale)$/.test(k)) {
      assert.ok(v.data.every((x) => x === 1), k);
    }
    if (k.endsWith(".bias")) assert.ok(v.data.every((x) => x === 0), k);
  }
});

Deno.test("megatron init: truncated at ±3σ (std ≈ 0.987σ), σ/√(2N) on W_O and W_2", () => {
  const cfg = { ...BIG, init: { scheme: "megatron", std: 0.013975 } } as const;
  const p = initParams(buildModel(cfg, "hybridnorm"), 2);
  const sigma = 0.013975, realised = 0.9866; // std of N(0,1) truncated at ±3
  const q = pooled(p, Q);
  near(q.std, realised * sigma, 0.02, "W_Q, W_K");
  assert.ok(q.max <= 3 * sigma + 1e-9, `max ${q.max}`);
  near(pooled(p, O).std, (realised * sigma) / Math.sqrt(8), 0.02, "W_O");
  near(pooled(p, /mlp\.fc2\.weight$/).std, (realised * sigma) / Math.sqrt(8), 0.02, "W_2");
  near(pooled(p, /mlp\.fc1\.weight$/).std, realised * sigma, 0.02, "W_1");
  near(pooled(p, /^tok_emb/).std, realised * sigma, 0.02, "E");
});

Deno.test("DeepNorm init: β = (8N)^(-1/4) on W_V, W_O, W_1, W_2 only", () => {
  const { alpha, beta } = deepNormConstants(12);
  near(alpha, 2.213, 0.001, "α(12)");
  near(beta, 0.3195, 0.001, "β(12)");
  const p = initParams(buildModel(BIG, deepNorm()), 3);
  const b4 = Math.pow(32, -0.25);
  for (const re of [V, O, FC]) near(pooled(p, re).std, 0.02 * b4, 0.02, `${re}`);
  near(pooled(p, Q).std, 0.02, 0.02, "W_Q, W_K unscaled");
  near(pooled(p, GATE).std, 0.02, 0.02, "SwiGLU gate unscaled (§15.3)");
});

Deno.test("Sub-LN (Magneto) init: γ = √(ln 2N) on W_V, W_O, W_1, W_2 only", () => {
  near(Math.sqrt(Math.log(24)), 1.783, 0.001, "γ(12)");
  near(Math.sqrt(Math.log(48)), 1.968, 0.001, "γ(24)");
  const p = initParams(buildModel(BIG, subLn()), 4);
  const g = Math.sqrt(Math.log(8));
  for (const re of [V, O, FC]) near(pooled(p, re).std, 0.02 * g, 0.02, `${re}`);
  near(pooled(p, Q).std, 0.02, 0.02, "W_Q, W_K unscaled");
  near(pooled(p, GATE).std, 0.02, 0.02, "gate unscaled");
});

Deno.test("special parameters: FakeLN σ̄ is a frozen constant, QK gain g₀ = log₂(L² − L)", () => {
  const ln = buildModel(BIG, lnFree());
  const sig = ln.params.filter((p) => p.name.endsWith(".sigma"));
  assert.equal(sig.length, 2 * 4 + 1);
  assert.ok(sig.every((p) => !p.trainable && p.shape.length === 0));
  assert.ok(ln.params.filter((p) => !p.name.endsWith(".sigma")).every((p) => p.trainable));
  const q = initParams(buildModel(BIG, qkNorm({ qk: "l2" })), 1);
  assert.equal(q["blocks.0.attn.qk_gain"]!.data[0], Math.fround(qkGainInit(4)));
  assert.equal(qkGainInit(4), Math.log2(12));
  assert.throws(
    () => initRuleFor("blocks.0.attn.mystery", [3], resolveConfig(BIG)),
    /Cannot initialise parameter "blocks\.0\.attn\.mystery" \[3\]: its name has no known role/,
  );
});
