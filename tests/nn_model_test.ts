/**
 * Tests of the block vocabulary and the model builder: an independent
 * plain-JS transformer forward pass as the reference, RoPE, causality,
 * heads, the loss, parameter names and errors.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import {
  buildModel,
  initParams,
  type ModelConfig,
  placementByName,
  PLACEMENTS,
  rope,
  tokenCrossEntropy,
} from "../lib/nn/mod.ts";
import { assertClose, fcParams, randn, rng } from "./_util.ts";

type P = Record<string, nx.NDArray>;

// ---------------------------------------------------------------------------
// A plain-JS reference transformer (Pre-LN), written without the DSL.

function mat(p: P, name: string): { d: Float64Array; r: number; c: number } {
  const a = p[name]!;
  return { d: nx.toFloat64(a), r: a.shape[0]!, c: a.shape[1] ?? 1 };
}
function matvec(x: number[], w: { d: Float64Array; r: number; c: number }, b?: Float64Array) {
  const out = new Array<number>(w.c).fill(0);
  for (let i = 0; i < w.r; i++) for (let j = 0; j < w.c; j++) out[j]! += x[i]! * w.d[i * w.c + j]!;
  if (b) { for (let j = 0; j < w.c; j++) out[j]! += b[j]!; }
  return out;
}
function lnRef(x: number[], g?: Float64Array, b?: Float64Array, eps = 1e-5, rms = false) {
  const n = x.length;
  const mu = rms ? 0 : x.reduce((a, v) => a + v, 0) / n;
  const v = x.reduce((a, t) => a + (t - mu) ** 2, 0) / n;
  return x.map((t, i) => ((t - mu) / Math.sqrt(v + eps)) * (g ? g[i]! : 1) + (b ? b[i]! : 0));
}
function geluRef(x: number) {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}
function ropeRef(v: number[], t: number, theta: number) {
  const dh = v.length, half = dh / 2;
  const out = v.slice();
  for (let j = 0; j < half; j++) {
    const a = t * Math.pow(theta, (-2 * j) / dh);
    out[j] = v[j]! * Math.cos(a) - v[j + half]! * Math.sin(a);
    out[j + half] = v[j + half]! * Math.cos(a) + v[j]! * Math.sin(a);
  }
  return out;
}

function refForward(cfg: Required<ModelConfig>, p: P, ids: number[][], rms: boolean): number[] {
  const f = (n: string) => (p[n] ? nx.toFloat64(p[n]!) : undefined);
  const { dModel: d, nHeads: H, nLayers: N } = cfg;
  const Hkv = cfg.nKvHeads, dh = d / H;
  const out: number[] = [];
  for (const seq of ids) {
    const E = mat(p, "tok_emb.weight");
    let h = seq.map((id, t) => {
      const row = Array.from({ length: d }, (_, j) => E.d[id * d + j]!);
      if (cfg.positions === "learned") {
        const pe = mat(p, "pos_emb.weight");
        for (let j = 0; j < d; j++) row[j]! += pe.d[t * d + j]!;
      }
      return row;
    });
    for (let l = 0; l < N; l++) {
      const pre = `blocks.${l}`;
      const a = h.map((x) => lnRef(x, f(`${pre}.ln_1.weight`), f(`${pre}.ln_1.bias`), 1e-5, rms));
      const proj = (w: string) =>
        a.map((x) => matvec(x, mat(p, `${pre}.attn.${w}.weight`), f(`${pre}.attn.${w}.bias`)));
      const q = proj("q"), k = proj("k"), v = proj("v");
      const heads = h.map(() => new Array<number>(d).fill(0));
      for (let hh = 0; hh < H; hh++) {
        const kh = Math.floor(hh / (H / Hkv));
        const sl = (m: number[][], i: number, head: number) => {
          const s = m[i]!.slice(head * dh, head * dh + dh);
          return cfg.positions === "rope" ? ropeRef(s, i, cfg.ropeTheta) : s;
        };
        for (let i = 0; i < seq.length; i++) {
          const qi = sl(q, i, hh);
          const lim = cfg.causal ? i : seq.length - 1;
          const sc: number[] = [];
          for (let j = 0; j <= lim; j++) {
            const kj = sl(k, j, kh);
            sc.push(qi.reduce((acc, x, c) => acc + x * kj[c]!, 0) / Math.sqrt(dh));
          }
          const m = Math.max(...sc);
          const e = sc.map((s) => Math.exp(s - m));
          const z = e.reduce((x, y) => x + y, 0);
          for (let j = 0; j <= lim; j++) {
            for (let c = 0; c < dh; c++) {
              heads[i]![hh * dh + c]! += (e[j]! / z) * v[j]![kh * dh + c]!;
            }
          }
        }
      }
      h = h.map((x, i) => {
        const o = matvec(heads[i]!, mat(p, `${pre}.attn.o.weight`), f(`${pre}.attn.o.bias`));
        return x.map((t, j) => t + o[j]!);
      });
      h = h.map((x) => {
        const y = lnRef(x, f(`${pre}.ln_2.weight`), f(`${pre}.ln_2.bias`), 1e-5, rms);
        let u = matvec(y, mat(p, `${pre}.mlp.fc1.weight`), f(`${pre}.mlp.fc1.bias`));
        if (cfg.mlp === "gelu") u = u.map(geluRef);
        else if (cfg.mlp === "relu2") u = u.map((t) => Math.max(t, 0) ** 2);
        else {
          const g = matvec(y, mat(p, `${pre}.mlp.gate.weight`), f(`${pre}.mlp.gate.bias`));
          u = u.map((t, j) => t * g[j]! / (1 + Math.exp(-g[j]!)));
        }
        const o = matvec(u, mat(p, `${pre}.mlp.fc2.weight`), f(`${pre}.mlp.fc2.bias`));
        return x.map((t, j) => t + o[j]!);
      });
    }
    for (const x of h) {
      const y = lnRef(x, f("ln_f.weight"), f("ln_f.bias"), 1e-5, rms);
      out.push(...matvec(y, mat(p, "unembed.weight")));
    }
  }
  return out;
}

function randomParams(
  model: { params: readonly { name: string; shape: readonly number[] }[] },
  seed: number,
): P {
  const out: P = {};
  let s = seed;
  for (const p of model.params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const gainLike = /(ln_\w+|_norm)\.weight$/.test(p.name);
    const v = randn(n, s++, gainLike ? 0.3 : 0.5);
    if (gainLike) { for (let i = 0; i < n; i++) v[i] = 1 + v[i]!; }
    out[p.name] = nx.array(v, p.shape, "f32");
  }
  return out;
}

function idsArray(
  b: number,
  t: number,
  v: number,
  seed: number,
): { arr: nx.NDArray; rows: number[][] } {
  const r = rng(seed);
  const rows = Array.from(
    { length: b },
    () => Array.from({ length: t }, () => Math.floor(r() * v)),
  );
  return { arr: nx.array(rows.flat(), [b, t], "i32"), rows };
}

const BASE = {
  vocabSize: 13,
  dModel: 8,
  nLayers: 2,
  nHeads: 2,
  nKvHeads: 2,
  dFf: 12,
  batch: 2,
  seqLen: 5,
  maxSeqLen: 6,
  mlp: "gelu",
  positions: "learned",
  ropeTheta: 10000,
  ropePairs: "half",
  causal: true,
  bias: true,
  tieEmbeddings: false,
  unembedBias: false,
  head: { kind: "lm" },
  eps: 1e-5,
  init: {},
} as const satisfies Required<ModelConfig>;

Deno.test("buildModel() Pre-LN/Pre-RMS logits match a plain-JS transformer", () => {
  const variants: Required<ModelConfig>[] = [
    BASE,
    { ...BASE, positions: "rope", mlp: "swiglu", nHeads: 4, nKvHeads: 2, bias: false },
    { ...BASE, positions: "none", mlp: "relu2", causal: false, nLayers: 1 },
  ];
  for (const [i, cfg] of variants.entries()) {
    for (const name of ["pre-ln", "pre-rms"]) {
      const m = buildModel(cfg, name, { rewrite: { verify: { forbid: ["residual"] } } });
      const p = randomParams(m, 100 + i);
      const ids = idsArray(cfg.batch, cfg.seqLen, cfg.vocabSize, i);
      const [lg] = interpret([m.logits], { ...p, ids: ids.arr });
      const ref = refForward(cfg, p, ids.rows, name === "pre-rms");
      assertClose(lg!.data, ref, { atol: 1e-9, rtol: 1e-9 }, `${name} variant ${i}`);
    }
  }
});

Deno.test("rope() rotates half-split pairs, and q·k depends only on the offset", () => {
  const T = 5, dh = 6;
  const x = nx.input("x", [1, 1, T, dh]);
  const xv = randn(T * dh, 3);
  const [y] = interpret([rope(x, 100)], { x: nx.array(xv, [1, 1, T, dh]) });
  for (let t = 0; t < T; t++) {
    const ref = ropeRef(Array.from(xv.subarray(t * dh, t * dh + dh)), t, 100);
    assertClose(y!.data.subarray(t * dh, t * dh + dh), ref, { atol: 1e-12 }, `t=${t}`);
  }
  // interleaved pairs (2j, 2j+1) are the half-split rotation of a permuted vector
  const [yi] = interpret([rope(x, 100, "interleaved")], { x: nx.array(xv, [1, 1, T, dh]) });
  const perm = [0, 2, 4, 1, 3, 5];
  for (let t = 0; t < T; t++) {
    const v = perm.map((p) => xv[t * dh + p]!);
    const r = ropeRef(v, t, 100);
    const got = perm.map((p) => yi!.data[t * dh + p]!);
    assertClose(got, r, { atol: 1e-12 }, `interleaved t=${t}`);
  }
  // relative property: <R_s q, R_t k> = <R_{s+c} q, R_{t+c} k>
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), (s, c) => {
      const q = randn(dh, s + 7), k = randn(dh, c + 11);
      const dot = (a: number[], b: number[]) => a.reduce((acc, v, i) => acc + v * b[i]!, 0);
      const rows = Array.from({ length: T }, (_, t) => t % 2 ? Array.from(k) : Array.from(q));
      const [r] = interpret([rope(x, 50)], { x: nx.array(rows.flat(), [1, 1, T, dh]) });
      const row = (t: number) => Array.from(r!.data.subarray(t * dh, t * dh + dh));
      // positions 0 (q), 1 (k) vs 2 (q), 3 (k): same offset 1
      assertClose([dot(row(0), row(1))], [dot(row(2), row(3))], { atol: 1e-12 });
      return true;
    }),
    fcParams(5),
  );
});

Deno.test("causal models ignore future tokens; bidirectional ones do not", () => {
  for (const causal of [true, false]) {
    const cfg = { ...BASE, causal, positions: "rope" as const };
    const m = buildModel(cfg, "pre-ln");
    const p = randomParams(m, 5);
    const a = idsArray(cfg.batch, cfg.seqLen, cfg.vocabSize, 1);
    const rows = a.rows.map((r) => [...r.slice(0, -1), (r.at(-1)! + 1) % cfg.vocabSize]);
    const [la] = interpret([m.logits], { ...p, ids: a.arr });
    const [lb] = interpret([m.logits], { ...p, ids: nx.array(rows.flat(), [2, 5], "i32") });
    const V = cfg.vocabSize, T = cfg.seqLen;
    // position 0 of sequence 0
    const first = (d: Float64Array) => Array.from(d.subarray(0, V));
    if (causal) assertClose(first(lb!.data), first(la!.data), { atol: 0, rtol: 0 });
    else assert.ok(first(la!.data).some((v, i) => v !== lb!.data[i]));
    void T;
  }
});

Deno.test("tokenCrossEntropy() equals −mean log softmax at the targets", () => {
  const logits = nx.input("l", [2, 3, 5]);
  const tg = nx.input("t", [2, 3], "i32");
  const lv = randn(30, 9, 2);
  const tv = [0, 4, 2, 1, 3, 3];
  const [loss] = interpret([tokenCrossEntropy(logits, tg)], {
    l: nx.array(lv, [2, 3, 5]),
    t: nx.array(tv, [2, 3], "i32"),
  });
  let ref = 0;
  for (let r = 0; r < 6; r++) {
    const row = Array.from(lv.subarray(r * 5, r * 5 + 5));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    ref += lse - row[tv[r]!]!;
  }
  assertClose(loss!.data, [ref / 6], { atol: 1e-12 });
  assert.throws(() => tokenCrossEntropy(logits, nx.input("t2", [2, 4], "i32")), /shape without/);
  assert.throws(() => tokenCrossEntropy(logits, nx.input("t3", [2, 3])), /i32 or u32/);
});

Deno.test("buildModel() heads: classification and per-token regression", () => {
  const cls = buildModel({ ...BASE, head: { kind: "classify", classes: 3 } }, "pre-ln");
  assert.deepEqual(cls.logits.shape, [2, 3]);
  assert.deepEqual(cls.targets.shape, [2]);
  const reg = buildModel({ ...BASE, head: { kind: "regress", outputs: 2 } }, "post-ln");
  assert.deepEqual(reg.logits.shape, [2, 5, 2]);
  assert.equal(reg.targets.dtype, "f32");
  const p = initParams(reg, 3);
  const ids = idsArray(2, 5, 13, 2).arr;
  const tv = nx.array(randn(20, 4), [2, 5, 2]);
  const [pred, loss] = interpret([reg.logits, reg.loss], { ...p, ids, targets: tv });
  let mse = 0;
  for (let i = 0; i < 20; i++) mse += (pred!.data[i]! - tv.data[i]!) ** 2;
  assertClose(loss!.data, [mse / 20], { atol: 1e-12 });
  const pc = initParams(cls, 3);
  const [lc] = interpret([cls.loss], { ...pc, ids, targets: nx.array([0, 2], [2], "i32") });
  assert.ok(Number.isFinite(lc!.data[0]!));
  // tied embeddings: no unembed parameter
  const tied = buildModel({ ...BASE, tieEmbeddings: true }, "pre-ln");
  assert.ok(!tied.params.some((q) => q.name.startsWith("unembed")));
});

Deno.test("buildModel() names parameters per spec §16, stored [in, out]", () => {
  const m = buildModel({ ...BASE, nLayers: 1, mlp: "swiglu" }, "pre-ln");
  const shapes = Object.fromEntries(m.params.map((p) => [p.name, p.shape.join("x")]));
  assert.deepEqual(shapes, {
    "blocks.0.attn.k.bias": "8",
    "blocks.0.attn.k.weight": "8x8",
    "blocks.0.attn.o.bias": "8",
    "blocks.0.attn.o.weight": "8x8",
    "blocks.0.attn.q.bias": "8",
    "blocks.0.attn.q.weight": "8x8",
    "blocks.0.attn.v.bias": "8",
    "blocks.0.attn.v.weight": "8x8",
    "blocks.0.ln_1.bias": "8",
    "blocks.0.ln_1.weight": "8",
    "blocks.0.ln_2.bias": "8",
    "blocks.0.ln_2.weight": "8",
    "blocks.0.mlp.fc1.bias": "12",
    "blocks.0.mlp.fc1.weight": "8x12",
    "blocks.0.mlp.fc2.bias": "8",
    "blocks.0.mlp.fc2.weight": "12x8",
    "blocks.0.mlp.gate.bias": "12",
    "blocks.0.mlp.gate.weight": "8x12",
    "ln_f.bias": "8",
    "ln_f.weight": "8",
    "pos_emb.weight": "6x8",
    "tok_emb.weight": "13x8",
    "unembed.weight": "8x13",
  });
  // the graph's param leaves are exactly the specs
  const leaves = nx.leavesOf([m.loss]).params.map((e) => e.arg.name);
  assert.deepEqual(leaves, m.params.map((p) => p.name));
  // GQA: k and v project to nKvHeads·d_h
  const g = buildModel({ ...BASE, nHeads: 4, nKvHeads: 1 }, "pre-ln");
  assert.deepEqual(g.params.find((p) => p.name === "blocks.0.attn.k.weight")!.shape, [8, 2]);
});

Deno.test("every registered placement builds, verifies and gives a finite loss", () => {
  const cfg = { ...BASE, positions: "rope" as const, mlp: "swiglu" as const, nKvHeads: 1 };
  const ids = idsArray(2, 5, 13, 4).arr;
  const targets = idsArray(2, 5, 13, 5).arr;
  for (const name of Object.keys(PLACEMENTS)) {
    const m = buildModel(cfg, name, { rewrite: { verify: { forbid: ["residual"] } } });
    assert.equal(m.placement.name, name);
    const [loss] = interpret([m.loss], { ...initParams(m, 1), ids, targets });
    // near ln V at init (σ = 0.02)
    assert.ok(Math.abs(loss!.data[0]! - Math.log(13)) < 0.1, `${name}: ${loss!.data[0]}`);
  }
});

Deno.test("buildModel() rejects bad configs and unknown placements with clear errors", () => {
  assert.throws(() => buildModel({ ...BASE, nHeads: 3 }, "pre-ln"), /not divisible by nHeads 3/);
  assert.throws(() => buildModel({ ...BASE, nKvHeads: 3 }, "pre-ln"), /nKvHeads 3/);
  assert.throws(() => buildModel({ ...BASE, seqLen: 9 }, "pre-ln"), /exceeds maxSeqLen 6/);
  assert.throws(() => buildModel({ ...BASE, dModel: 0 }, "pre-ln"), /dModel must be a positive/);
  assert.throws(
    () => buildModel({ ...BASE, nHeads: 8, positions: "rope" }, "pre-ln"),
    /RoPE needs an even head width/,
  );
  assert.throws(() => placementByName("pre-foo"), /Cannot find placement "pre-foo": known/);
  assert.throws(() => placementByName("deepnorm", { norm: "crms" }), /allows layer, rms/);
});
