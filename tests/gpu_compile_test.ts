/**
 * GPU behaviour of compiled programs: binding-limit splits, NaN debug mode,
 * the no-adapter error, shader compile errors, device loss, param updates,
 * partial readback and the explicit interpreter backend.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import { compile, createRuntime, explain, type Runtime } from "../kernels/mod.ts";
import { assertClose, hasGpu, randn } from "./_util.ts";
import { preLnBlock, preLnData } from "./golden/preln.ts";

const gpu = await hasGpu();
const opts = { ignore: !gpu, sanitizeResources: false, sanitizeOps: false };
let shared: Runtime | undefined;
const rt = async () => (shared ??= await createRuntime());

const arr = (n: number, seed: number, shape: number[]) =>
  nx.array(Float32Array.from(randn(n, seed)), shape);

Deno.test("createRuntime() without an adapter says what is missing and how to get it", async () => {
  const fake = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
  await assert.rejects(
    () => createRuntime({ gpu: fake }),
    (e: Error) => {
      assert.match(e.message, /no GPU adapter/);
      assert.match(e.message, /apt-get install mesa-vulkan-drivers/);
      assert.match(e.message, /backend: "interpreter"/);
      return true;
    },
  );
});

Deno.test({
  name: "a kernel that would bind 11 buffers is split to fit a device limited to 8",
  ...opts,
  fn: async () => {
    const dev8 = await createRuntime({ deviceStorageBuffers: 8 });
    try {
      assert.equal(dev8.limits.maxStorageBuffers, 8);
      const xs = Array.from({ length: 10 }, (_, i) => nx.input(`x${i}`, [3, 4]));
      let y: nx.Expr<"f32"> = xs[0]!;
      for (const x of xs.slice(1)) y = nx.add(nx.mul(y, 0.5), nx.tanh(x));
      const prog = await compile([y], { runtime: dev8 });
      assert.ok(prog.kernels.length >= 2, explain(prog));
      for (const k of prog.kernels) assert.ok(k.buffers.length <= 8, `${k.name} binds too many`);
      assert.ok(prog.kernels.some((k) => k.why.some((w) => w.includes("split:"))));
      const inputs = Object.fromEntries(xs.map((_, i) => [`x${i}`, arr(12, i + 1, [3, 4])]));
      const [got] = await prog.run(inputs);
      assertClose(got!.data, interpret([y], inputs)[0]!.data, { atol: 1e-5 });
      // the same graph with a forced limit of 4 splits further and stays correct
      const small = await createRuntime({ maxStorageBuffers: 4 });
      try {
        const p4 = await compile([y], { runtime: small });
        for (const k of p4.kernels) assert.ok(k.buffers.length <= 4, `${k.name} binds too many`);
        assert.ok(p4.kernels.length > prog.kernels.length);
        const [g4] = await p4.run(inputs);
        assertClose(g4!.data, got!.data, { atol: 1e-6 });
      } finally {
        small.destroy();
      }
    } finally {
      dev8.destroy();
    }
  },
});

Deno.test({
  name: "debug mode names the first kernel and op that produced a NaN",
  ...opts,
  fn: async () => {
    const x = nx.input("x", [2, 3]);
    const w = nx.param("w", [3, 3]);
    const h = nx.matmul(nx.tanh(x), w);
    const bad = nx.log(nx.sub(h, 0.5)); // negative arguments give NaN
    const y = nx.sum(nx.mul(bad, 2), -1);
    const xs = nx.array([0.1, 0.2, 0.3, -1, 2, 0.5], [2, 3]);
    const ws = nx.array([1, 0, 0, 0, 1, 0, 0, 0, 1], [3, 3]);
    // without debug the NaN is returned silently (as the math says)
    const plain = await compile([y], { runtime: await rt() });
    plain.setParams({ w: ws });
    const [v] = await plain.run({ x: xs });
    assert.ok(Array.from(v!.data).some(Number.isNaN));
    const dbg = await compile([y], { runtime: await rt(), debug: true });
    dbg.setParams({ w: ws });
    await assert.rejects(() => dbg.run({ x: xs }), (e: Error) => {
      assert.match(e.message, /NaN/);
      assert.match(e.message, /kernel k\d+_/);
      assert.match(e.message, /first non-finite op: %\d+ log/);
      return true;
    });
    // finite inputs pass the checks
    const [ok] = await dbg.run({ x: nx.array([3, 3, 3, 3, 3, 3], [2, 3]) });
    assert.ok(Array.from(ok!.data).every(Number.isFinite));
  },
});

Deno.test({
  name: "a WGSL compile error names the kernel and the offending line",
  ...opts,
  fn: async () => {
    const r = await rt();
    const code = "@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = 1u;\n}\n";
    await assert.rejects(() => r.pipeline(code, "k9_broken"), (e: Error) => {
      assert.match(e.message, /kernel k9_broken/);
      assert.match(e.message, /line 3/);
      assert.match(e.message, /let x: f32 = 1u;/);
      return true;
    });
  },
});

Deno.test({
  name: "a lost device is reported on the next run",
  ...opts,
  fn: async () => {
    const own = await createRuntime();
    const x = nx.input("x", [4]);
    const prog = await compile([nx.exp(x)], { runtime: own });
    own.destroy();
    await new Promise((r) => setTimeout(r, 10));
    assert.throws(() => prog.run({ x: nx.array([1, 2, 3, 4], [4]) }), /device was lost/);
  },
});

Deno.test({
  name: "updates write new param values on the GPU, matching the interpreter backend",
  ...opts,
  fn: async () => {
    const x = nx.input("x", [4, 3]);
    const w = nx.param("w", [3, 2]);
    const m = nx.param("m", [3, 2]);
    const y = nx.matmul(x, w);
    const loss = nx.sum(nx.mul(y, y));
    // a fake "gradient": xᵀ·y, momentum m ← 0.9m + g, w ← w − 0.1m
    const g = nx.matmul(nx.transpose(x), y);
    const mNew = nx.add(nx.mul(m, 0.9), g);
    const updates = { m: mNew, w: nx.sub(w, nx.mul(mNew, 0.1)) };
    const params = { w: arr(6, 3, [3, 2]), m: nx.array(new Float32Array(6), [3, 2]) };
    const xs = arr(12, 4, [4, 3]);
    const gpuProg = await compile([loss, y], { runtime: await rt(), updates });
    const cpuProg = await compile([loss, y], { backend: "interpreter", updates });
    assert.equal(cpuProg.backend, "interpreter");
    gpuProg.setParams(params);
    cpuProg.setParams(params);
    for (let step = 0; step < 3; step++) {
      const [lg] = await gpuProg.run({ x: xs }, { read: [0] });
      const [lc] = await cpuProg.run({ x: xs }, { read: [true, false] });
      assert.equal(lg!.shape.length, 0);
      assertClose(lg!.data, lc!.data, { rtol: 1e-4 }, `loss at step ${step}`);
    }
    const pg = await gpuProg.getParams();
    const pc = await cpuProg.getParams();
    assertClose(pg.w!.data, pc.w!.data, { atol: 1e-4, rtol: 1e-4 }, "w");
    assertClose(pg.m!.data, pc.m!.data, { atol: 1e-4, rtol: 1e-4 }, "m");
    assert.deepEqual(await gpuProg.run({ x: xs }, { read: [] }), []);
    gpuProg[Symbol.dispose]();
    assert.throws(() => gpuProg.run({ x: xs }), /disposed/);
  },
});

Deno.test({
  name: "run() rejects missing params and mis-shaped inputs with clear errors",
  ...opts,
  fn: async () => {
    const x = nx.input("x", [2, 2]);
    const prog = await compile([nx.matmul(x, nx.param("w", [2, 2]))], { runtime: await rt() });
    assert.throws(() => prog.run({ x: nx.array([1, 2, 3, 4], [2, 2]) }), /param "w".*setParams/);
    prog.setParams({ w: nx.array([1, 0, 0, 1], [2, 2]) });
    assert.throws(
      () => prog.run({ x: nx.array([1, 2, 3], [3]) }),
      /expected f32\[2,2\], got f32\[3\]/,
    );
    assert.throws(() => prog.run({}), /input "x".*not given/);
    const [y] = await prog.run({ x: nx.array([1, 2, 3, 4], [2, 2]) });
    assert.deepEqual(Array.from(y!.data), [1, 2, 3, 4]);
  },
});

Deno.test({
  name: "a fused Pre-LN block matches the interpreter, unfused too, with fewer dispatches",
  ...opts,
  fn: async () => {
    const dims = { b: 2, t: 6, d: 16, h: 2, f: 32 };
    const out = preLnBlock(dims);
    const { params, x } = preLnData(dims);
    const ref = interpret([out], { ...params, x })[0]!;
    const fused = await compile([out], { runtime: await rt() });
    const unfused = await compile([out], { runtime: await rt(), fusion: false });
    assert.ok(fused.dispatchCount * 5 < unfused.dispatchCount);
    for (const p of [fused, unfused]) {
      p.setParams(params);
      const [y] = await p.run({ x });
      assertClose(y!.data, ref.data, { atol: 2e-5, rtol: 1e-4 });
      p[Symbol.dispose]();
    }
  },
});

Deno.test({
  name: "backward-shaped graphs compile: transposed dots, batch-axis sums, expands",
  ...opts,
  fn: async () => {
    const x = nx.input("x", [2, 5, 4]);
    const dy = nx.input("dy", [2, 5, 3]);
    const w = nx.param("w", [4, 3]);
    // dW = Σ_b xᵀ dy, db = Σ_{b,t} dy, dx = dy Wᵀ
    const dW = nx.sum(nx.matmul(nx.transpose(x), dy), 0);
    const db = nx.sum(dy, [0, 1]);
    const dx = nx.matmul(dy, nx.transpose(w));
    const sm = nx.softmax(nx.matmul(x, nx.transpose(x)), -1);
    const outs = [dW, db, dx, sm];
    const bind = { x: arr(40, 5, [2, 5, 4]), dy: arr(30, 6, [2, 5, 3]), w: arr(12, 7, [4, 3]) };
    const prog = await compile(outs, { runtime: await rt() });
    prog.setParams({ w: bind.w });
    const got = await prog.run({ x: bind.x, dy: bind.dy });
    const want = interpret(outs, bind);
    got.forEach((g, i) =>
      assertClose(g.data, want[i]!.data, { atol: 1e-4, rtol: 1e-4 }, `out ${i}`)
    );
  },
});

Deno.test({
  name: "f16 and integer values round-trip (f16 stored as f16 only with shader-f16)",
  ...opts,
  fn: async () => {
    const r = await rt();
    const h = nx.input("h", [5], "f16");
    const i = nx.input("i", [5], "i32");
    const y = nx.add(nx.exp(nx.cast(h, "f32")), nx.cast(i, "f32"));
    const z = nx.cast(nx.mul(h, 2), "f16");
    const b = nx.less(nx.cast(i, "f32"), y);
    const bind = {
      h: nx.array([0.5, -1, 2, 0.25, 0], [5], "f16"),
      i: nx.array(Int32Array.from([1, -2, 3, 4, -5]), [5], "i32"),
    };
    const prog = await compile([y, z, b, nx.mul(i, 3)], { runtime: r });
    const got = await prog.run(bind);
    const want = interpret([y, z, b, nx.mul(i, 3)], bind);
    const tol = { atol: r.f16Storage ? 1e-2 : 1e-5, rtol: r.f16Storage ? 1e-2 : 1e-5 };
    assertClose(got[0]!.data, want[0]!.data, tol);
    assertClose(got[1]!.data, want[1]!.data, tol);
    assert.deepEqual(Array.from(got[2]!.data), Array.from(want[2]!.data));
    assert.deepEqual(Array.from(got[3]!.data), [3, -6, 9, 12, -15]);
  },
});

Deno.test({
  name: "updates see old values (snapshots, outputs aliasing params), and empty tensors work",
  ...opts,
  fn: async () => {
    const x = nx.input("x", [3]);
    const p = nx.param("p", [3]);
    const outs = [x, nx.full([2], 7), p, nx.add(x, p)];
    // q only receives a snapshot of p; p doubles
    const prog = await compile(outs, { runtime: await rt(), updates: { q: p, p: nx.mul(p, 2) } });
    assert.ok(prog.params.some((q) => q.name === "q"));
    prog.setParams({ p: nx.array([1, 2, 3], [3]), q: nx.array([0, 0, 0], [3]) });
    const got = await prog.run({ x: nx.array([5, 6, 7], [3]) });
    assert.deepEqual(got.map((o) => Array.from(o.data)), [[5, 6, 7], [7, 7], [1, 2, 3], [
      6,
      8,
      10,
    ]]);
    const ps = await prog.getParams();
    assert.deepEqual(Array.from(ps.p!.data), [2, 4, 6]);
    assert.deepEqual(Array.from(ps.q!.data), [1, 2, 3]);
    const e = nx.input("e", [0, 3]);
    const pe = await compile([nx.exp(e), nx.sum(e, 0)], { runtime: await rt() });
    const [a, b] = await pe.run({ e: nx.array(new Float32Array(0), [0, 3]) });
    assert.deepEqual(a!.shape, [0, 3]);
    assert.deepEqual(Array.from(b!.data), [0, 0, 0]);
  },
});

Deno.test({
  name: "the pipeline cache shares compiles in flight and across programs",
  ...opts,
  fn: async () => {
    const own = await createRuntime();
    try {
      const x = nx.input("x", [7, 5]);
      const y = nx.softmax(nx.mul(x, nx.param("s", [5])), -1);
      const [a, b] = await Promise.all([
        compile([y], { runtime: own }),
        compile([y], { runtime: own }),
      ]);
      assert.equal(own.pipelineCount, a.kernels.length);
      await compile([y], { runtime: own });
      assert.equal(own.pipelineCount, b.kernels.length);
    } finally {
      own.destroy();
    }
  },
});

Deno.test({
  name: "kernels that differ only in their buffers and comments share one pipeline",
  ...opts,
  fn: async () => {
    const own = await createRuntime();
    try {
      // two identical layers with their own params: same WGSL but for names
      let h: nx.Expr<"f32"> = nx.input("x", [4, 8]);
      for (let l = 0; l < 2; l++) {
        const w = nx.param(`l${l}.w`, [8, 8]);
        h = nx.add(h, nx.gelu(nx.matmul(nx.layerNorm(h), w)));
      }
      const prog = await compile([h], { runtime: own });
      const distinct = new Set(prog.kernels.map((k) => k.wgsl.replace(/\/\/[^\n]*/g, "")));
      assert.ok(distinct.size < prog.kernels.length, explain(prog));
      assert.equal(own.pipelineCount, distinct.size);
      const params = { "l0.w": arr(64, 1, [8, 8]), "l1.w": arr(64, 2, [8, 8]) };
      prog.setParams(params);
      const x = arr(32, 3, [4, 8]);
      const [got] = await prog.run({ x });
      assertClose(got!.data, interpret([h], { ...params, x })[0]!.data, { atol: 1e-5, rtol: 1e-4 });
    } finally {
      own.destroy();
    }
  },
});

Deno.test({
  name: "zzz shared runtime teardown",
  ...opts,
  fn: () => {
    shared?.destroy();
  },
});
