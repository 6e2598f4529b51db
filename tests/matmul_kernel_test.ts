/**
 * Tests of the matmul template (kernels/matmul.ts) on WebGPU against a float64 reference.
 *
 * The test prelude checks every hook call: loads out of range and stores other than exactly
 * once per output raise flags that the tests read back, so edge handling is verified directly
 * rather than through robust-access luck.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type MatmulDeviceInfo, matmulKernel, matmulStyle } from "../kernels/matmul.ts";
import fc from "fast-check";
import { assertClose, fcParams, hasGpu, randn } from "./_util.ts";

const GPU = await hasGpu();

interface Case {
  batch: number;
  m: number;
  n: number;
  k: number;
  aVec4?: boolean;
  bVec4?: boolean;
  /** the optional loaders along the other axis (mm_a4i, mm_b4k) */
  aVec4I?: boolean;
  bVec4K?: boolean;
  /** A stored as [batch, k, m] (as for xᵀ·dy) */
  aT?: boolean;
  /** B stored as [batch, n, k] (as for q·kᵀ) */
  bT?: boolean;
  /** fuse `acc * 2 + bias[j]` into the store */
  epilogue?: boolean;
}

let devicePromise: Promise<{ device: GPUDevice; info: MatmulDeviceInfo }> | undefined;
function gpu(): Promise<{ device: GPUDevice; info: MatmulDeviceInfo }> {
  devicePromise ??= (async () => {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error("no WebGPU adapter");
    const device = await adapter.requestDevice();
    const l = device.limits;
    return {
      device,
      info: {
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        description: adapter.info.description,
      },
    };
  })();
  return devicePromise;
}

function prelude(c: Case): string {
  const { m, n, k } = c;
  const aIdx = c.aT
    ? (b: string, i: string, kk: string) => `((${b}) * ${m * k}u + (${kk}) * ${m}u + (${i}))`
    : (b: string, i: string, kk: string) => `((${b}) * ${m * k}u + (${i}) * ${k}u + (${kk}))`;
  const bIdx = c.bT
    ? (b: string, kk: string, j: string) => `((${b}) * ${n * k}u + (${j}) * ${k}u + (${kk}))`
    : (b: string, kk: string, j: string) => `((${b}) * ${k * n}u + (${kk}) * ${n}u + (${j}))`;
  // Hooks record misuse in a private flag (cheap in the hot loop); mm_store publishes it.
  // Branch-free (`|` on bools does not short-circuit): branches in every load slow llvmpipe's
  // shader compiler down by an order of magnitude.
  // the documented alignment: vec4 loads start at multiples of 4 when that dimension is one
  const alignedI = m % 4 === 0 ? "(i % 4u != 0u)" : "false";
  const alignedJ = n % 4 === 0 ? "(j % 4u != 0u)" : "false";
  const bad = (cond: string, code: number) =>
    `mm_bad |= select(0u, ${code}u, ${cond.replaceAll("||", "|")});`;
  return `
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read_write> Flags: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> Writes: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> Bias: array<f32>;
var<private> mm_bad: u32;
fn mm_a(b: u32, i: u32, kk: u32) -> f32 {
  ${bad(`(b >= ${c.batch}u) || (i >= ${m}u) || (kk >= ${k}u)`, 1)}
  return A[${aIdx("b", "i", "kk")}];
}
fn mm_b(b: u32, kk: u32, j: u32) -> f32 {
  ${bad(`(b >= ${c.batch}u) || (kk >= ${k}u) || (j >= ${n}u)`, 2)}
  return B[${bIdx("b", "kk", "j")}];
}
fn mm_a4(b: u32, i: u32, kk: u32) -> vec4<f32> {
  ${bad(`(b >= ${c.batch}u) || (i >= ${m}u) || (kk + 3u >= ${k}u) || (kk % 4u != 0u)`, 4)}
  return vec4<f32>(A[${aIdx("b", "i", "kk")}], A[${aIdx("b", "i", "kk + 1u")}],
    A[${aIdx("b", "i", "kk + 2u")}], A[${aIdx("b", "i", "kk + 3u")}]);
}
fn mm_b4(b: u32, kk: u32, j: u32) -> vec4<f32> {
  ${bad(`(b >= ${c.batch}u) || (kk >= ${k}u) || (j + 3u >= ${n}u) || ${alignedJ}`, 8)}
  return vec4<f32>(B[${bIdx("b", "kk", "j")}], B[${bIdx("b", "kk", "j + 1u")}],
    B[${bIdx("b", "kk", "j + 2u")}], B[${bIdx("b", "kk", "j + 3u")}]);
}
fn mm_a4i(b: u32, i: u32, kk: u32) -> vec4<f32> {
  ${bad(`(b >= ${c.batch}u) || (i + 3u >= ${m}u) || (kk >= ${k}u) || ${alignedI}`, 32)}
  return vec4<f32>(A[${aIdx("b", "i", "kk")}], A[${aIdx("b", "i + 1u", "kk")}],
    A[${aIdx("b", "i + 2u", "kk")}], A[${aIdx("b", "i + 3u", "kk")}]);
}
fn mm_b4k(b: u32, kk: u32, j: u32) -> vec4<f32> {
  ${bad(`(b >= ${c.batch}u) || (kk + 3u >= ${k}u) || (j >= ${n}u) || (kk % 4u != 0u)`, 64)}
  return vec4<f32>(B[${bIdx("b", "kk", "j")}], B[${bIdx("b", "kk + 1u", "j")}],
    B[${bIdx("b", "kk + 2u", "j")}], B[${bIdx("b", "kk + 3u", "j")}]);
}
fn mm_store(b: u32, i: u32, j: u32, acc: f32) {
  ${bad(`(b >= ${c.batch}u) || (i >= ${m}u) || (j >= ${n}u)`, 16)}
  atomicOr(&Flags[0], mm_bad);
  let o = min((b * ${m}u + i) * ${n}u + j, ${c.batch * m * n - 1}u);
  atomicAdd(&Writes[o], 1u);
  C[o] = ${c.epilogue ? "acc * 2.0 + Bias[j]" : "acc"};
}`;
}

/** Runs one case on the GPU; returns the output, the flags and the per-output write counts. */
async function runCase(
  c: Case,
  a: Float32Array,
  b: Float32Array,
  bias: Float32Array,
  dev: Partial<MatmulDeviceInfo>,
): Promise<{ out: Float32Array; flags: number; writes: Uint32Array; description: string }> {
  const { device, info } = await gpu();
  const kernel = matmulKernel(
    {
      batch: c.batch,
      m: c.m,
      n: c.n,
      k: c.k,
      prelude: prelude(c),
      // a transposed operand is not contiguous along k (A) or j (B): like the compiler, offer
      // the loader along the other axis instead
      aVec4: (c.aVec4 ?? true) && !c.aT,
      bVec4: (c.bVec4 ?? true) && !c.bT,
      aVec4I: c.aVec4I ?? !!c.aT,
      bVec4K: c.bVec4K ?? !!c.bT,
    },
    { ...info, ...dev },
  );
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code: kernel.code });
  const messages = (await module.getCompilationInfo()).messages.filter((x) => x.type === "error");
  if (messages.length > 0) {
    const lines = kernel.code.split("\n");
    throw new Error(
      `WGSL error in ${kernel.description}: ` +
        messages.map((x) => `line ${x.lineNum}: ${x.message} | ${lines[x.lineNum - 1]}`).join("; "),
    );
  }
  // An explicit layout: "auto" would drop Bias when the epilogue does not use it.
  const kinds: GPUBufferBindingType[] = [
    "read-only-storage",
    "read-only-storage",
    "storage",
    "storage",
    "storage",
    "read-only-storage",
  ];
  const bindLayout = device.createBindGroupLayout({
    entries: kinds.map((type, binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type },
    })),
  });
  const pipeline = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [bindLayout] }),
    compute: { module, entryPoint: "main" },
  });
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const mkBuf = (data: Float32Array | Uint32Array) => {
    const buf = device.createBuffer({ size: Math.max(16, data.byteLength), usage });
    device.queue.writeBuffer(buf, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    return buf;
  };
  const outLen = c.batch * c.m * c.n;
  const bufs = [
    mkBuf(a),
    mkBuf(b),
    mkBuf(new Float32Array(outLen).fill(Number.NaN)),
    mkBuf(new Uint32Array(4)),
    mkBuf(new Uint32Array(outLen)),
    mkBuf(bias),
  ];
  const bind = device.createBindGroup({
    layout: bindLayout,
    entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(...kernel.dispatch);
  pass.end();
  const sizes = [outLen * 4, 16, outLen * 4];
  const reads = sizes.map((size) =>
    device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
  );
  enc.copyBufferToBuffer(bufs[2]!, 0, reads[0]!, 0, sizes[0]!);
  enc.copyBufferToBuffer(bufs[3]!, 0, reads[1]!, 0, sizes[1]!);
  enc.copyBufferToBuffer(bufs[4]!, 0, reads[2]!, 0, sizes[2]!);
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  if (err) throw new Error(`WebGPU validation error in ${kernel.description}: ${err.message}`);
  await Promise.all(reads.map((r) => r.mapAsync(GPUMapMode.READ)));
  const out = new Float32Array(reads[0]!.getMappedRange().slice(0));
  const flags = new Uint32Array(reads[1]!.getMappedRange().slice(0))[0]!;
  const writes = new Uint32Array(reads[2]!.getMappedRange().slice(0));
  for (const x of [...bufs, ...reads]) x.destroy();
  return { out, flags, writes, description: kernel.description };
}

/** Runs a case and compares with a float64 reference (tolerance grows with k). */
async function check(c: Case, dev: Partial<MatmulDeviceInfo>): Promise<string> {
  const { batch, m, n, k } = c;
  const seed = batch * 1000003 + m * 10007 + n * 101 + k;
  const a = randn(batch * m * k, seed), b = randn(batch * k * n, seed + 1);
  const bias = Float32Array.from(randn(n, seed + 2));
  const a32 = Float32Array.from(a), b32 = Float32Array.from(b);
  const ref = new Float64Array(batch * m * n);
  let scale = 0;
  for (let bi = 0; bi < batch; bi++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0, abs = 0;
        for (let kk = 0; kk < k; kk++) {
          const bv = c.bT ? b32[(bi * n + j) * k + kk]! : b32[(bi * k + kk) * n + j]!;
          const av = c.aT ? a32[(bi * k + kk) * m + i]! : a32[(bi * m + i) * k + kk]!;
          const p = av * bv;
          s += p;
          abs += Math.abs(p);
        }
        scale = Math.max(scale, abs);
        ref[(bi * m + i) * n + j] = c.epilogue ? s * 2 + bias[j]! : s;
      }
    }
  }
  const t0 = performance.now();
  const { out, flags, writes, description } = await runCase(c, a32, b32, bias, dev);
  const what = `${description} (${JSON.stringify(c)}, style ${dev.style ?? "auto"})`;
  assert.equal(flags, 0, `${what}: a hook was called out of range (flag bits ${flags})`);
  if (Deno.env.get("MM_TIMES")) console.log(what, (performance.now() - t0).toFixed(0), "ms");
  const wrong = writes.findIndex((w) => w !== 1);
  assert.equal(wrong, -1, `${what}: output ${wrong} stored ${writes[wrong]} times, not once`);
  // float32 accumulation: |error| ≲ k·2^-24·Σ|a·b| (×2 for the epilogue), with slack.
  assertClose(out, ref, { atol: 4 * (k + 2) * 2 ** -24 * scale * 2, rtol: 0 }, what);
  return description;
}

const AWKWARD: Case[] = [
  { batch: 1, m: 1, n: 1, k: 1 },
  { batch: 1, m: 3, n: 5, k: 7 },
  { batch: 1, m: 17, n: 33, k: 65 },
  { batch: 3, m: 17, n: 33, k: 65 },
  { batch: 3, m: 5, n: 2, k: 6, bT: true },
  { batch: 2, m: 21, n: 18, k: 11, aT: true },
  { batch: 1, m: 4, n: 3, k: 4, aT: true, bT: true },
  { batch: 2, m: 23, n: 9, k: 13, aT: true, bT: true, aVec4I: false, bVec4K: false },
  { batch: 2, m: 40, n: 36, k: 12, aVec4: false, bVec4: false },
  { batch: 2, m: 20, n: 36, k: 12, aT: true },
  { batch: 2, m: 19, n: 70, k: 33, bT: true, epilogue: true },
  { batch: 1, m: 70, n: 1, k: 9 },
  { batch: 1, m: 2, n: 70, k: 9 },
  { batch: 2, m: 128, n: 96, k: 64, epilogue: true },
];

// The gpu style compiles several times slower on llvmpipe (workgroup memory and barriers), and
// llvmpipe never selects it, so it gets a representative subset within the time budget.
const GPU_SUBSET: Case[] = [0, 3, 4, 5, 8, 9].map((i) => AWKWARD[i]!);
const SUITES = [
  { style: "cpu", shapes: AWKWARD, ks: [1, 2, 3, 4, 5, 6, 7, 8, 9] },
  { style: "gpu", shapes: GPU_SUBSET, ks: [1, 3, 4, 9] },
] as const;

for (const { style, shapes, ks } of SUITES) {
  Deno.test({
    name: `matmulKernel() ${style} style matches float64 on awkward shapes`,
    ignore: !GPU,
    async fn() {
      for (const c of shapes) await check(c, { style });
    },
  });

  Deno.test({
    name: `matmulKernel() ${style} style handles k = ${ks.join(", ")} (tails of the vec4 loop)`,
    ignore: !GPU,
    async fn() {
      for (const k of ks) {
        await check({ batch: 2, m: 6 + k, n: 9, k, aT: k % 3 === 2, bT: k % 3 === 1 }, { style });
      }
    },
  });

  Deno.test({
    name: `matmulKernel() ${style} style folds the dispatch within the per-dimension limit`,
    ignore: !GPU,
    async fn() {
      const description = await check({ batch: 5, m: 33, n: 17, k: 5 }, {
        style,
        maxComputeWorkgroupsPerDimension: 3,
      });
      assert.match(description, new RegExp(`^matmul ${style} `));
    },
  });
}

Deno.test({
  name: "matmulKernel() in the adapter's own style matches float64 on random shapes and loaders",
  ignore: !GPU,
  async fn() {
    const arb = fc.record({
      batch: fc.integer({ min: 1, max: 3 }),
      m: fc.integer({ min: 1, max: 40 }),
      n: fc.integer({ min: 1, max: 40 }),
      k: fc.integer({ min: 1, max: 40 }),
      aVec4: fc.boolean(),
      bVec4: fc.boolean(),
      aVec4I: fc.boolean(),
      bVec4K: fc.boolean(),
      aT: fc.boolean(),
      bT: fc.boolean(),
      epilogue: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(arb, async (c) => void await check(c, {})), fcParams(4));
  },
});

Deno.test("matmulKernel() picks the style from the adapter description or an override", () => {
  const base: MatmulDeviceInfo = {
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupSizeY: 256,
    maxComputeWorkgroupsPerDimension: 65535,
  };
  assert.equal(matmulStyle({ ...base, description: "llvmpipe (LLVM 15.0.6, 256 bits)" }), "cpu");
  assert.equal(matmulStyle({ ...base, description: "SwiftShader Device (Subzero)" }), "cpu");
  assert.equal(matmulStyle({ ...base, description: "lavapipe" }), "cpu");
  assert.equal(matmulStyle({ ...base, isFallbackAdapter: true }), "cpu");
  assert.equal(matmulStyle({ ...base, description: "NVIDIA GeForce RTX 3080" }), "gpu");
  assert.equal(matmulStyle({ ...base, description: "llvmpipe", style: "gpu" }), "gpu");
  const spec = { batch: 1, m: 1024, n: 1024, k: 1024, prelude: "", aVec4: true, bVec4: true };
  assert.match(matmulKernel(spec, { ...base, style: "cpu" }).description, /cpu 16x16/);
  assert.match(matmulKernel(spec, { ...base, style: "gpu" }).description, /gpu 64x64/);
  // small m or n get thin tiles rather than a wasted 16×16 one
  const thin = matmulKernel({ ...spec, m: 2 }, { ...base, style: "cpu" });
  assert.match(thin.description, /cpu 2x16 /);
  const narrow = matmulKernel({ ...spec, n: 4 }, { ...base, style: "cpu" });
  assert.match(narrow.description, /cpu 16x4 /);
});

Deno.test("matmulKernel() rejects bad sizes and impossible dispatches with clear errors", () => {
  const dev: MatmulDeviceInfo = {
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupSizeY: 256,
    maxComputeWorkgroupsPerDimension: 65535,
  };
  const spec = { batch: 1, m: 4, n: 4, k: 4, prelude: "", aVec4: false, bVec4: false };
  assert.throws(() => matmulKernel({ ...spec, k: 0 }, dev), /Cannot build matmul kernel: k must/);
  assert.throws(() => matmulKernel({ ...spec, m: 2.5 }, dev), RangeError);
  assert.throws(
    () => matmulKernel({ ...spec, batch: 100 }, { ...dev, maxComputeWorkgroupsPerDimension: 2 }),
    /maxComputeWorkgroupsPerDimension/,
  );
});
