/**
 * Spec §12 item 3 in float32 on the GPU (compiled WGSL kernels):
 * Pre-LN ≡ Pre-RMSNorm ≡ Pre-CRMSNorm on logits within rtol 1e-5 of
 * max|logit| (the spec's measured float32 tolerance, loosened linearly with
 * depth); the compiled Pre-LN is also checked against the float64
 * interpreter. Skipped without a WebGPU adapter.
 *
 * Kept to one small config and three programs: on llvmpipe with a cold
 * shader cache the first run of each new kernel costs seconds (this test
 * took 17 s cold, 1 s warm here), and backward graphs (item 4 in float32)
 * take minutes, so item 4 and the negative tests run in float64 only
 * (equiv_prenorm_test.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import { compile } from "../kernels/mod.ts";
import {
  buildModel,
  type Model,
  type ModelConfig,
  type ParamMap,
  preLn,
  toPreCrms,
  toPreRms,
} from "../lib/nn/mod.ts";
import { hasGpu, randomIds, rng } from "./_util.ts";

const gpu = await hasGpu();

function gaussParams(model: Model, seed: number): ParamMap {
  const r = rng(seed);
  const g = () => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
  const out: ParamMap = {};
  for (const p of model.params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const fanIn = p.shape.length === 2 ? p.shape[0]! : 1;
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (/ln_\w+\.weight$/.test(p.name)) d[i] = 1 + 0.3 * g();
      else if (p.name.endsWith(".bias")) d[i] = 0.2 * g();
      else if (p.name.includes("emb")) d[i] = 0.3 + g();
      else d[i] = g() / Math.sqrt(fanIn);
    }
    out[p.name] = nx.array(d, p.shape, "f32");
  }
  return out;
}

async function gpuRun(
  outs: nx.Expr[],
  params: ParamMap,
  inputs: Record<string, nx.NDArray>,
): Promise<Float32Array[]> {
  const prog = await compile(outs);
  try {
    const need = new Set(nx.leavesOf(outs).params.map((e) => e.arg.name));
    prog.setParams(Object.fromEntries(Object.entries(params).filter(([k]) => need.has(k))));
    const res = await prog.run(inputs);
    return res.map((a) => Float32Array.from(a.data as ArrayLike<number>));
  } finally {
    prog[Symbol.dispose]();
  }
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// RoPE graphs are left out: the compiler currently needs tens of seconds
// to build their kernels on llvmpipe (reported to the lead).
const CONFIGS: ModelConfig[] = [
  { vocabSize: 11, dModel: 16, nLayers: 2, nHeads: 2, batch: 2, seqLen: 8 },
];

Deno.test({
  name:
    "GPU float32: Pre-LN ≡ Pre-RMSNorm ≡ Pre-CRMSNorm on logits (rtol 1e-5 of max|logit| per layer)",
  ignore: !gpu,
  fn: async () => {
    for (const [i, cfg] of CONFIGS.entries()) {
      const m = buildModel(cfg, preLn());
      const p = gaussParams(m, 30 + i);
      const x = randomIds(cfg, i);
      const [ref] = await gpuRun([m.logits], p, { ids: x });
      const [f64] = interpret([m.logits], { ...p, ids: x });
      const scale = maxAbs(f64!.data);
      const tol = 1e-5 * scale * cfg.nLayers;
      assert.ok(
        maxErr(ref!, f64!.data) <= tol,
        `Pre-LN GPU vs float64: ${maxErr(ref!, f64!.data)}`,
      );
      for (const conv of [toPreRms, toPreCrms]) {
        const c = conv(cfg, p);
        const cm = buildModel(c.config, c.placement);
        const [got] = await gpuRun([cm.logits], c.params, { ids: x });
        const e = maxErr(got!, ref!);
        assert.ok(e <= tol, `${conv.name} config ${i}: ${e} > ${tol}`);
      }
    }
  },
});
