/**
 * Long reductions compile to short loops: llvmpipe silently stops a shader
 * loop after 65535 iterations, so a one-invocation 65536-element sum once
 * read 65535. The compiler now stages reductions longer than REDUCE_CHUNK.
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import { REDUCE_CHUNK, splitLongReductions } from "../lib/compile/split_reduce.ts";
import { plan } from "../lib/compile/plan.ts";
import { assertClose, hasGpu, randn } from "./_util.ts";

const gpu = await hasGpu();

Deno.test("splitLongReductions() stages sums and maxes exactly (interpreter)", () => {
  const x = nx.input("x", [3, 70001]);
  const xi = nx.input("xi", [9000], "i32");
  const outs = [nx.sum(x, -1), nx.max(x, -1), nx.sum(x), nx.max(x, 0), nx.max(xi), nx.sum(xi)];
  const split = splitLongReductions(outs);
  const vals = randn(3 * 70001, 5);
  const ints = new Int32Array(9000).map((_, i) => ((i * 7919) % 20011) - 30000);
  const b = { x: nx.array(vals, [3, 70001]), xi: nx.array(ints, [9000], "i32") };
  const want = nx.interpret(outs, b), got = nx.interpret(split, b);
  for (let i = 0; i < outs.length; i++) {
    assert.deepEqual(got[i]!.shape, want[i]!.shape);
    assertClose(got[i]!.data, want[i]!.data, { atol: 1e-9, rtol: 1e-12 }, `output ${i}`);
  }
  // every staged reduction is at most REDUCE_CHUNK long
  for (const e of nx.toposort(split)) {
    if (e.op === "sum" || e.op === "rmax") {
      const a = (e.arg as { axes: number[] }).axes;
      const len = a.reduce((n, ax) => n * e.src[0]!.shape[ax]!, 1);
      assert.ok(len <= REDUCE_CHUNK, `reduction of ${len} elements left unsplit`);
    }
  }
  // short reductions are left alone (same interned nodes)
  const short = nx.sum(nx.input("s", [100]));
  assert.equal(splitLongReductions([short])[0], short);
});

Deno.test({
  name: "compiled sums over 65536+ elements are exact on WebGPU (loop cap regression)",
  ignore: !gpu,
  fn: async () => {
    const n = 200_003;
    const x = nx.input("x", [n]);
    const rows = nx.input("r", [2, 70_000]);
    using prog = await nx.compile([nx.sum(x), nx.max(x), nx.sum(rows, -1), nx.sum(rows, 0)]);
    const ones = new Float32Array(n).fill(1);
    ones[123_456] = 7;
    const r = new Float32Array(140_000).fill(0.5);
    const [s, m, rs, cs] = await prog.run({ x: nx.array(ones, [n]), r: nx.array(r, [2, 70_000]) });
    assert.equal(s!.data[0], n + 6);
    assert.equal(m!.data[0], 7);
    assertClose(rs!.data, [35_000, 35_000], { atol: 0, rtol: 0 });
    assert.equal(cs!.data.length, 70_000);
    assert.ok(Array.from(cs!.data).every((v) => v === 1));
  },
});

Deno.test({
  name: "LayerNorm of a gathered embedding keeps one row per token (no 64x recompute, no loop cap)",
  ignore: !gpu,
  fn: async () => {
    // A gathered row index (tok_emb[ids[b, t]]) reads the batch axis through ids: the planner
    // once missed that, made "32 rows of 512" with per-element row statistics, and ran past
    // llvmpipe's loop cap (embedding LN values off by 0.1).
    const [B, T, D, V] = [8, 32, 64, 32];
    const ids = nx.input("ids", [B, T], "i32");
    const tok = nx.param("tok", [V, D]), pos = nx.param("pos", [T, D]);
    const x0 = nx.add(nx.gather(tok, ids), pos);
    const y = nx.add(nx.layerNorm(x0), x0);
    using prog = await nx.compile([y]);
    const text = nx.explain(prog);
    assert.match(text, /row kernel, 256 rows × 64/, text);
    const params = {
      tok: nx.array(randn(V * D, 7), [V, D]),
      pos: nx.array(randn(T * D, 8), [T, D]),
    };
    prog.setParams(params);
    const idv = nx.array(Int32Array.from({ length: B * T }, (_, i) => (i * 13) % V), [B, T], "i32");
    const [got] = await prog.run({ ids: idv });
    const [want] = nx.interpret([y], { ...params, ids: idv });
    assertClose(got!.data, want!.data, { atol: 1e-5, rtol: 1e-5 }, "LN(embedding) + embedding");
  },
});

Deno.test("plan() refuses a kernel past llvmpipe's loop cap loudly instead of running it wrong", () => {
  // a LayerNorm row of 70000 features loops 3 × 70000 times in one invocation
  const x = nx.input("x", [2, 70_000]);
  assert.throws(
    () => plan([nx.layerNorm(x)], { fusion: true, maxBindings: 8 }),
    (e: unknown) =>
      e instanceof RangeError && /loop iterations, past the 65535/.test(e.message) &&
      /norm/.test(e.message),
  );
  // without merging it is still refused (the retry does not hide it)
  assert.throws(
    () => plan([nx.layerNorm(x)], { fusion: true, maxBindings: 8, mergeLoops: false }),
    RangeError,
  );
});
