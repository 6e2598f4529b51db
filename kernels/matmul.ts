/**
 * The matmul template: WGSL for a batched product C[b] = A[b] · B[b] with sizes baked in.
 *
 * The caller (the compiler, a test, a benchmark) supplies a prelude with its bindings and the hook
 * functions `mm_a`, `mm_b`, `mm_store` (plus `mm_a4`/`mm_b4` when vectorised loads are allowed),
 * so prologue loads and epilogues fuse into the product. This module only chooses a tiling and
 * writes the loop nest.
 *
 * Two styles:
 * - **cpu** (software adapters such as llvmpipe, lavapipe, SwiftShader): every invocation keeps a
 *   register tile of up to 16×16 outputs, reads A as vec4 along k and B as vec4 along n, and uses
 *   no workgroup memory. On a CPU rasteriser each storage load is costly (bounds checks, gathers
 *   across SIMD lanes), so FMAs per load decide speed: a 16×16 tile does 4·16·16 FMAs per 32
 *   vec4 loads.
 * - **gpu**: classic workgroup-memory tiling (64×64 block, 16×16 threads, 4×4 outputs each).
 *
 * Edges never need per-element load guards in the cpu style: the last tile along m (or n) is
 * shifted back so that it ends exactly at m (n), and it only stores the outputs the previous tile
 * did not, so every output is written exactly once and every load is in range.
 *
 * @example
 * ```ts
 * import { matmulKernel } from "./matmul.ts";
 * const prelude = `
 * @group(0) @binding(0) var<storage, read> A: array<f32>;
 * @group(0) @binding(1) var<storage, read> B: array<f32>;
 * @group(0) @binding(2) var<storage, read_write> C: array<f32>;
 * fn mm_a(b: u32, i: u32, kk: u32) -> f32 { return A[i * 3u + kk]; }
 * fn mm_b(b: u32, kk: u32, j: u32) -> f32 { return B[kk * 5u + j]; }
 * fn mm_store(b: u32, i: u32, j: u32, acc: f32) { C[i * 5u + j] = acc; }`;
 * const kernel = matmulKernel(
 *   { batch: 1, m: 2, n: 5, k: 3, prelude, aVec4: false, bVec4: false },
 *   { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256,
 *     maxComputeWorkgroupSizeY: 256, maxComputeWorkgroupsPerDimension: 65535 },
 * );
 * // kernel.code, kernel.workgroupSize, kernel.dispatch
 * ```
 *
 * @module
 */

/** What the caller knows about a (batched) C[b] = A[b] · B[b] product. Sizes are baked into WGSL. */
export interface MatmulSpec {
  /** number of independent products (≥ 1) */
  batch: number;
  /** rows of A and C (≥ 1) */
  m: number;
  /** columns of B and C (≥ 1) */
  n: number;
  /** the reduction length: columns of A, rows of B (≥ 1) */
  k: number;
  /**
   * Caller's WGSL placed before the template: its bindings (group 0), helper fns, and the hooks
   * `fn mm_a(b: u32, i: u32, kk: u32) -> f32` (A[b, i, kk]),
   * `fn mm_b(b: u32, kk: u32, j: u32) -> f32` (B[b, kk, j]),
   * `fn mm_store(b: u32, i: u32, j: u32, acc: f32)` (writes C[b, i, j]; the epilogue goes here),
   * and, when `aVec4`/`bVec4` is true,
   * `fn mm_a4(b: u32, i: u32, kk: u32) -> vec4<f32>` (A[b, i, kk..kk+3], only called with
   * kk + 3 < k) and `fn mm_b4(b: u32, kk: u32, j: u32) -> vec4<f32>` (B[b, kk, j..j+3], only
   * called with j + 3 < n).
   *
   * Alignment: every vec4 loader is called with its vector index a multiple of 4 whenever that
   * dimension is (kk for `mm_a4`/`mm_b4k` always; j for `mm_b4` when n % 4 == 0; i for `mm_a4i`
   * when m % 4 == 0), so a prelude may read `array<vec4<f32>>` bindings at `index / 4`.
   */
  prelude: string;
  /** whether the prelude defines `mm_a4` */
  aVec4: boolean;
  /** whether the prelude defines `mm_b4` */
  bVec4: boolean;
  /**
   * Optional: the prelude defines `fn mm_a4i(b: u32, i: u32, kk: u32) -> vec4<f32>`, giving
   * A[b, i..i+3, kk] (only called with i + 3 < m). Used when `aVec4` is false, e.g. for a
   * transposed A, which is contiguous along i.
   */
  aVec4I?: boolean;
  /**
   * Optional: the prelude defines `fn mm_b4k(b: u32, kk: u32, j: u32) -> vec4<f32>`, giving
   * B[b, kk..kk+3, j] (only called with kk + 3 < k). Used when `bVec4` is false, e.g. for a
   * transposed B (q·kᵀ, x·Wᵀ), which is contiguous along k.
   */
  bVec4K?: boolean;
}

/** Device facts the tile choice may use (pass `device.limits` and `adapter.info.description`). */
export interface MatmulDeviceInfo {
  /** `device.limits.maxComputeInvocationsPerWorkgroup` */
  maxComputeInvocationsPerWorkgroup: number;
  /** `device.limits.maxComputeWorkgroupSizeX` */
  maxComputeWorkgroupSizeX: number;
  /** `device.limits.maxComputeWorkgroupSizeY` */
  maxComputeWorkgroupSizeY: number;
  /** `device.limits.maxComputeWorkgroupsPerDimension` */
  maxComputeWorkgroupsPerDimension: number;
  /** e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"; CPU-like adapters favour big register tiles. */
  description?: string;
  /** `adapter.info.isFallbackAdapter`; true selects the cpu style like a software description */
  isFallbackAdapter?: boolean;
  /** force a style ("cpu": register-blocked, no workgroup memory; "gpu": shared-memory tiles) */
  style?: "cpu" | "gpu";
}

/** A ready-to-compile matmul kernel. */
export interface MatmulKernel {
  /** complete WGSL: prelude + template, entry point "main" */
  code: string;
  /** the `@workgroup_size` the template declares */
  workgroupSize: [number, number, number];
  /** workgroup counts for `dispatchWorkgroups` */
  dispatch: [number, number, number];
  /** e.g. "matmul cpu 16x16 register tile, vec4 A, wg 8" */
  description: string;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|softpipe|warp/i;

/**
 * The style {@link matmulKernel} uses on a device.
 *
 * @param dev the device facts
 * @returns "cpu" for software rasterisers (or when forced), else "gpu"
 */
export function matmulStyle(dev: MatmulDeviceInfo): "cpu" | "gpu" {
  if (dev.style !== undefined) return dev.style;
  if (dev.isFallbackAdapter) return "cpu";
  return SOFTWARE_ADAPTER.test(dev.description ?? "") ? "cpu" : "gpu";
}

/**
 * Writes the WGSL for a batched matmul with sizes baked in, choosing the tiling from the shape
 * and the device.
 *
 * @param spec the product's sizes, the caller's prelude and which vec4 loaders it defines
 * @param dev device limits and description (selects the cpu or gpu style)
 * @returns the WGSL (prelude + template, entry point `main`), workgroup size and dispatch
 * @throws {RangeError} when a size is not a positive integer or the dispatch cannot fit the limits
 * @throws {TypeError} when the prelude is not a string
 */
export function matmulKernel(spec: MatmulSpec, dev: MatmulDeviceInfo): MatmulKernel {
  checkSpec(spec, dev);
  return matmulStyle(dev) === "cpu" ? cpuKernel(spec, dev) : gpuKernel(spec, dev);
}

function checkSpec(spec: MatmulSpec, dev: MatmulDeviceInfo): void {
  for (const key of ["batch", "m", "n", "k"] as const) {
    const v = spec[key];
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `Cannot build matmul kernel: ${key} must be a positive integer, got ${v} ` +
          `(batch ${spec.batch}, m ${spec.m}, n ${spec.n}, k ${spec.k})`,
      );
    }
  }
  // Indices are u32 in WGSL: every flat index the hooks may form must fit.
  const big = spec.batch * Math.max(spec.m * spec.k, spec.k * spec.n, spec.m * spec.n);
  if (big >= 2 ** 32) {
    throw new RangeError(
      `Cannot build matmul kernel: batch ${spec.batch} × ${spec.m}×${spec.k}·${spec.k}×${spec.n} ` +
        `has more than 2^32 elements per operand; split the batch`,
    );
  }
  if (typeof spec.prelude !== "string") {
    throw new TypeError(`Cannot build matmul kernel: prelude must be a WGSL string`);
  }
  for (const key of ["maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX"] as const) {
    if (!(dev[key] >= 1)) {
      throw new RangeError(`Cannot build matmul kernel: device limit ${key} is ${dev[key]}`);
    }
  }
  if (!(dev.maxComputeWorkgroupsPerDimension >= 1)) {
    throw new RangeError(
      `Cannot build matmul kernel: device limit maxComputeWorkgroupsPerDimension is ` +
        `${dev.maxComputeWorkgroupsPerDimension}`,
    );
  }
}

/** Spreads `count` workgroups over x, y, z within the per-dimension limit. */
function fold(count: number, maxDim: number, what: string): [number, number, number] {
  const x = Math.min(count, maxDim);
  const rest = Math.ceil(count / x);
  const y = Math.min(rest, maxDim);
  const z = Math.ceil(rest / y);
  if (z > maxDim) {
    throw new RangeError(
      `Cannot build matmul kernel: ${what} needs ${count} workgroups, more than ` +
        `maxComputeWorkgroupsPerDimension³ (${maxDim}³)`,
    );
  }
  return [x, y, z];
}

const u = (v: number): string => `${v}u`;

function lines(len: number, f: (i: number) => string): string[] {
  return Array.from({ length: len }, (_, i) => f(i));
}

function vecType(w: number): string {
  return w === 1 ? "f32" : `vec${w}<f32>`;
}

// ---------------------------------------------------------------------------
// cpu style: register tiles, no workgroup memory

/** A register tile: tm rows × (groups × w) columns, w-wide column groups. */
interface CpuTile {
  tm: number;
  w: number;
  groups: number;
}

/**
 * Picks the register tile. Cost model per k step of a tile: tm·tn FMAs and tm + tn loads, with a
 * load counted as `LOAD_COST` FMAs; padded work (outputs computed twice by shifted edge tiles)
 * counts fully. Tiles may not exceed m (or n), so small dimensions get thin tiles.
 */
function chooseCpuTile(m: number, n: number, tmStep: number): CpuTile {
  const LOAD_COST = 8;
  let best: CpuTile = { tm: Math.min(tmStep, m), w: 1, groups: 1 };
  let bestCost = Infinity;
  const w = n >= 4 ? 4 : n;
  for (let tm = tmStep; tm <= Math.min(16, m); tm += tmStep) {
    for (let groups = 1; groups * w <= Math.min(16, n); groups++) {
      const tn = groups * w;
      const tiles = Math.ceil(m / tm) * Math.ceil(n / tn);
      const cost = tiles * (tm * tn + LOAD_COST * (tm + tn));
      // `<=`: on ties the later, larger tile wins (fewer invocations)
      if (cost <= bestCost) {
        bestCost = cost;
        best = { tm, w, groups };
      }
    }
  }
  return best;
}

const COMP = ["x", "y", "z", "w"];

function cpuKernel(spec: MatmulSpec, dev: MatmulDeviceInfo): MatmulKernel {
  const { batch, m, n, k } = spec;
  // How each operand is read (first choice first): A as vec4 along k (mm_a4) or along i
  // (mm_a4i, needs tm % 4 == 0), else scalars; B as vec4 along j (mm_b4) or along k (mm_b4k).
  const useA4 = spec.aVec4 && k >= 4;
  const useA4I = !useA4 && !!spec.aVec4I && m >= 4;
  const { tm, w, groups } = chooseCpuTile(m, n, useA4I ? 4 : 1);
  const tn = w * groups;
  const useB4 = spec.bVec4 && w === 4;
  const useB4K = !useB4 && !!spec.bVec4K && k >= 4;
  const tilesM = Math.ceil(m / tm), tilesN = Math.ceil(n / tn);
  const total = batch * tilesM * tilesN;
  // 8 lanes fill a 256-bit SIMD row of llvmpipe; more gives no speed and fewer workgroups.
  const wg = Math.max(
    1,
    Math.min(8, dev.maxComputeInvocationsPerWorkgroup, dev.maxComputeWorkgroupSizeX, total),
  );
  const dispatch = fold(Math.ceil(total / wg), dev.maxComputeWorkgroupsPerDimension, "matmul");
  const vt = vecType(w);
  // The main loop steps k by 4 when a loader reads 4 consecutive k; the tail goes one by one.
  const step = useA4 || useB4K ? 4 : 1;
  const kMain = k - (k % step);

  const L: string[] = [];
  const acc = (r: number, c: number) => `c${r}_${c}`;
  const kAt = (q: number) => (q === 0 ? "kk" : `kk + ${u(q)}`);
  /** Emits the loads of A for k steps 0..s-1; returns the expression of A[i0 + r, kk + q]. */
  const loadA = (s: number): (r: number, q: number) => string => {
    if (s === 4 && useA4) {
      for (let r = 0; r < tm; r++) L.push(`    let a${r} = mm_a4(bi, i0 + ${u(r)}, kk);`);
      return (r, q) => `a${r}.${COMP[q]}`;
    }
    if (useA4I) {
      for (let q = 0; q < s; q++) {
        for (let r4 = 0; r4 < tm / 4; r4++) {
          L.push(`    let a${r4}_${q} = mm_a4i(bi, i0 + ${u(4 * r4)}, ${kAt(q)});`);
        }
      }
      return (r, q) => `a${r >> 2}_${q}.${COMP[r & 3]}`;
    }
    for (let q = 0; q < s; q++) {
      for (let r = 0; r < tm; r++) {
        L.push(`    let a${r}_${q} = mm_a(bi, i0 + ${u(r)}, ${kAt(q)});`);
      }
    }
    return (r, q) => `a${r}_${q}`;
  };
  /** Emits the loads of B row kk + q (all rows up front for mm_b4k); returns B[.., group c]. */
  const loadB = (s: number, q: number): (c: number) => string => {
    if (s === 4 && useB4K) {
      if (q === 0) {
        for (let j = 0; j < tn; j++) L.push(`    let bk${j} = mm_b4k(bi, kk, j0 + ${u(j)});`);
      }
      return (c) => {
        const parts = lines(w, (e) => `bk${c * w + e}.${COMP[q]}`);
        return w === 1 ? parts[0]! : `${vt}(${parts.join(", ")})`;
      };
    }
    for (let c = 0; c < groups; c++) {
      const j = `j0 + ${u(c * w)}`;
      const name = `b${q}_${c}`;
      if (useB4) L.push(`    let ${name} = mm_b4(bi, ${kAt(q)}, ${j});`);
      else if (w === 1) L.push(`    let ${name} = mm_b(bi, ${kAt(q)}, ${j});`);
      else {
        const parts = lines(w, (e) => `mm_b(bi, ${kAt(q)}, ${j} + ${u(e)})`);
        L.push(`    let ${name} = ${vt}(${parts.join(", ")});`);
      }
    }
    return (c) => `b${q}_${c}`;
  };
  /** One k loop over [from, to) in steps of s. */
  const kLoop = (from: number, to: number, s: number) => {
    L.push(`  for (var kk = ${u(from)}; kk < ${u(to)}; kk += ${u(s)}) {`);
    const a = loadA(s);
    for (let q = 0; q < s; q++) {
      const b = loadB(s, q);
      for (let r = 0; r < tm; r++) {
        const av = w === 1 ? a(r, q) : `${vt}(${a(r, q)})`;
        for (let c = 0; c < groups; c++) {
          L.push(`    ${acc(r, c)} = fma(${av}, ${b(c)}, ${acc(r, c)});`);
        }
      }
    }
    L.push(`  }`);
  };
  L.push(`
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * ${u(dispatch[0])} + wid.z * ${u(dispatch[0] * dispatch[1])}) * ${
    u(wg)
  } + lid;
  if (t >= ${u(total)}) { return; }
  let tn = t % ${u(tilesN)};
  let tmb = t / ${u(tilesN)};
  let tm = tmb % ${u(tilesM)};
  let bi = tmb / ${u(tilesM)};
  // The last tile is shifted back to end at m (n); it stores only what no other tile stores.
  let iFirst = tm * ${u(tm)};
  let jFirst = tn * ${u(tn)};
  let i0 = min(iFirst, ${u(m - tm)});
  let j0 = min(jFirst, ${u(n - tn)});`);
  for (let r = 0; r < tm; r++) {
    for (let c = 0; c < groups; c++) L.push(`  var ${acc(r, c)} = ${vt}();`);
  }
  if (kMain > 0) kLoop(0, kMain, step);
  if (kMain < k) kLoop(kMain, k, 1);
  // Stores run in a loop over rows that shifts the accumulator rows up, so the store hook (which
  // may hold a long epilogue) is inlined tn times rather than tm·tn times: llvmpipe's compile
  // time grows with every inlined copy, and private arrays indexed in a loop compile even slower.
  L.push(`  for (var r = 0u; r < ${u(tm)}; r++) {
    let i = i0 + r;
    if (i >= iFirst) {`);
  for (let c = 0; c < groups; c++) {
    for (let q = 0; q < w; q++) {
      const j = `j0 + ${u(c * w + q)}`;
      const v = w === 1 ? acc(0, c) : `${acc(0, c)}.${COMP[q]}`;
      L.push(`      if (${j} >= jFirst) { mm_store(bi, i, ${j}, ${v}); }`);
    }
  }
  L.push(`    }`);
  for (let r = 0; r + 1 < tm; r++) {
    L.push(`    ${lines(groups, (c) => `${acc(r, c)} = ${acc(r + 1, c)};`).join(" ")}`);
  }
  L.push(`  }`);
  L.push(`}`);
  const loads = `${useA4 ? "vec4 A" : useA4I ? "vec4 A along i" : "scalar A"}, ` +
    `${useB4 ? "vec4 B" : useB4K ? "vec4 B along k" : "scalar B"}`;
  return {
    code: `${spec.prelude}\n${L.join("\n")}\n`,
    workgroupSize: [wg, 1, 1],
    dispatch,
    description: `matmul cpu ${tm}x${tn} register tile, ${loads}, wg ${wg}, ` +
      `${batch}x${m}x${n}x${k}`,
  };
}

// ---------------------------------------------------------------------------
// gpu style: workgroup-memory tiles

function gpuKernel(spec: MatmulSpec, dev: MatmulDeviceInfo): MatmulKernel {
  const { batch, m, n, k } = spec;
  // t × t threads, each a 4×4 block of outputs (contiguous rows and columns, so every operand
  // read from workgroup memory is one vec4); block bm × bn, k step bk.
  const maxInv = dev.maxComputeInvocationsPerWorkgroup;
  const maxX = dev.maxComputeWorkgroupSizeX, maxY = dev.maxComputeWorkgroupSizeY;
  let t = m <= 32 || n <= 32 ? 8 : 16;
  while (t > 1 && (t * t > maxInv || t > maxX || t > maxY)) t /= 2;
  const bk = 16, bm = t * 4, bn = t * 4;
  const threads = t * t;
  const tilesM = Math.ceil(m / bm), tilesN = Math.ceil(n / bn);
  const count = batch * tilesM * tilesN;
  const dispatch = fold(count, dev.maxComputeWorkgroupsPerDimension, "matmul");
  // A tile stored k-major ([q][row]), B tile [q][col], both as vec4 along rows/columns.
  const aVecs = (bm * bk) / 4, bVecs = (bk * bn) / 4;
  const useB4 = spec.bVec4 && n >= 4;
  const useA4I = !!spec.aVec4I && m >= 4;
  const loadA = lines(Math.ceil(aVecs / threads), (l) => {
    const e = `lid + ${u(l * threads)}`;
    const body = `let q = e / ${u(bm / 4)};
      let i = iBase + (e % ${u(bm / 4)}) * 4u;
      let kk = k0 + q;
      var v = vec4<f32>();
      if (kk < ${u(k)}) {
        ${useA4I ? `if (i + 3u < ${u(m)}) { v = mm_a4i(bi, i, kk); } else {\n` : ""}${
      lines(4, (c) => `        if (i + ${u(c)} < ${u(m)}) { v[${c}] = mm_a(bi, i + ${u(c)}, kk); }`)
        .join("\n")
    }${useA4I ? "\n        }" : ""}
      }
      mm_As[e] = v;`;
    return (l + 1) * threads > aVecs
      ? `    { let e = ${e}; if (e < ${u(aVecs)}) {\n      ${body}\n    } }`
      : `    { let e = ${e};\n      ${body}\n    }`;
  });
  const loadB = lines(Math.ceil(bVecs / threads), (l) => {
    const e = `lid + ${u(l * threads)}`;
    const scalar = lines(
      4,
      (c) => `if (j + ${u(c)} < ${u(n)}) { v[${c}] = mm_b(bi, kk, j + ${u(c)}); }`,
    )
      .join("\n          ");
    const body = `let kk = k0 + e / ${u(bn / 4)};
      let j = jBase + (e % ${u(bn / 4)}) * 4u;
      var v = vec4<f32>();
      if (kk < ${u(k)}) {
        ${
      useB4
        ? `if (j + 3u < ${u(n)}) { v = mm_b4(bi, kk, j); } else {\n          ${scalar}\n        }`
        : scalar
    }
      }
      mm_Bs[e] = v;`;
    return (l + 1) * threads > bVecs
      ? `    { let e = ${e}; if (e < ${u(bVecs)}) {\n      ${body}\n    } }`
      : `    { let e = ${e};\n      ${body}\n    }`;
  });
  const comp = ["x", "y", "z", "w"];
  const stores = lines(16, (e) => {
    const r = e >> 2, c = e & 3;
    return `  if (i0 + ${u(r)} < ${u(m)} && j0 + ${u(c)} < ${u(n)}) { ` +
      `mm_store(bi, i0 + ${u(r)}, j0 + ${u(c)}, acc${r}.${comp[c]}); }`;
  });
  const code = `
var<workgroup> mm_As: array<vec4<f32>, ${aVecs}>;
var<workgroup> mm_Bs: array<vec4<f32>, ${bVecs}>;

@compute @workgroup_size(${t}, ${t}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  // Workgroup-uniform exit, so the barriers below stay in uniform control flow.
  let g = wid.x + wid.y * ${u(dispatch[0])} + wid.z * ${u(dispatch[0] * dispatch[1])};
  if (g >= ${u(count)}) { return; }
  let tn = g % ${u(tilesN)};
  let tmb = g / ${u(tilesN)};
  let tm = tmb % ${u(tilesM)};
  let bi = tmb / ${u(tilesM)};
  let lid = lid3.y * ${u(t)} + lid3.x;
  let iBase = tm * ${u(bm)};
  let jBase = tn * ${u(bn)};
  let i0 = iBase + lid3.y * 4u;
  let j0 = jBase + lid3.x * 4u;
  var acc0 = vec4<f32>();
  var acc1 = vec4<f32>();
  var acc2 = vec4<f32>();
  var acc3 = vec4<f32>();
  for (var k0 = 0u; k0 < ${u(k)}; k0 += ${u(bk)}) {
${loadA.join("\n")}
${loadB.join("\n")}
    workgroupBarrier();
    for (var q = 0u; q < ${u(bk)}; q++) {
      let a = mm_As[q * ${u(bm / 4)} + lid3.y];
      let b = mm_Bs[q * ${u(bn / 4)} + lid3.x];
      acc0 = fma(vec4<f32>(a.x), b, acc0);
      acc1 = fma(vec4<f32>(a.y), b, acc1);
      acc2 = fma(vec4<f32>(a.z), b, acc2);
      acc3 = fma(vec4<f32>(a.w), b, acc3);
    }
    workgroupBarrier();
  }
${stores.join("\n")}
}`;
  return {
    code: `${spec.prelude}\n${code}\n`,
    workgroupSize: [t, t, 1],
    dispatch,
    description: `matmul gpu ${bm}x${bn} workgroup tile (k step ${bk}), 4x4 per thread, ` +
      `${useA4I ? "vec4 A along i, " : ""}${useB4 ? "vec4" : "scalar"} B, wg ${t}x${t}, ` +
      `${batch}x${m}x${n}x${k}`,
  };
}
