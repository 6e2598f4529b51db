/**
 * Golden tests of the fusion plan (kernels, the ops in each, why each
 * boundary exists, buffers, dispatch sizes) and of the emitted WGSL for a
 * Pre-LN transformer block. Pure: planning and emission need no GPU.
 *
 * Refresh after an intended change with:
 *
 * ```sh
 * UPDATE_GOLDEN=1 deno test --allow-read --allow-write --allow-env tests/compile_golden_test.ts
 * ```
 *
 * Matmul kernels are recorded up to the template (their prelude: bindings and
 * the prologue/epilogue hooks), since kernels/matmul.ts has its own owner.
 *
 * @module
 */
import assert from "node:assert/strict";
import { decompose, type Expr, OP_KIND, toposort } from "../lib/ir/mod.ts";
import { plan } from "../lib/compile/plan.ts";
import type { Stmt } from "../lib/compile/kir.ts";
import { planBuffers } from "../lib/compile/buffers.ts";
import { type EmitDevice, emitKernel } from "../kernels/wgsl.ts";
import * as nx from "../lib/ir/mod.ts";
import { preLnBlock } from "./golden/preln.ts";

const DEV: EmitDevice = {
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupsPerDimension: 65535,
  description: "llvmpipe (golden)",
  isFallbackAdapter: true,
  f16Storage: false,
};
const DIMS = { b: 2, t: 6, d: 16, h: 2, f: 32 };
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";
const dir = new URL("./golden/", import.meta.url);

async function golden(file: string, text: string): Promise<void> {
  const url = new URL(file, dir);
  if (UPDATE) {
    await Deno.writeTextFile(url, text);
    return;
  }
  let want: string;
  try {
    want = await Deno.readTextFile(url);
  } catch {
    throw new Error(`golden file ${file} is missing; create it with UPDATE_GOLDEN=1`);
  }
  if (want !== text) {
    const a = want.split("\n"), b = text.split("\n");
    const i = a.findIndex((l, j) => l !== b[j]);
    throw new Error(
      `${file} differs at line ${i + 1}:\n  golden: ${a[i]}\n  now:    ${b[i]}\n` +
        `refresh with UPDATE_GOLDEN=1 if the change is intended`,
    );
  }
}

function planText(outputs: readonly Expr[], fusion: boolean): { text: string; wgsl: string } {
  const p = plan(outputs, { fusion, maxBindings: 16 });
  const bufs = planBuffers(p, () => 4);
  const L: string[] = [];
  const W: string[] = [];
  L.push(
    `${p.kernels.length} kernels; ${bufs.slotBytes.length} buffer slots, ` +
      `${bufs.slotBytes.reduce((a, b) => a + b, 0)} bytes (${bufs.unsharedBytes} without reuse)`,
  );
  for (const k of p.kernels) {
    const e = emitKernel(k, DEV);
    L.push("");
    L.push(`${k.name} dispatch ${e.dispatch.join("x")} wg ${e.workgroupSize.join("x")}`);
    L.push(`  ops: ${k.ops.join(", ")}`);
    for (const w of k.why) L.push(`  why: ${w}`);
    for (const b of k.bindings) {
      L.push(
        `  ${b.access} ${b.name} ${b.dtype}x${p.values[b.buffer]!.numel} slot ${
          bufs.slotOf[b.buffer]
        }`,
      );
    }
    const code = k.ir.kind === "matmul" ? e.code.split("\n@compute")[0]! : e.code;
    W.push(`// ===== ${k.name} =====`, code.trimEnd(), "");
  }
  return { text: L.join("\n") + "\n", wgsl: W.join("\n") };
}

Deno.test("plan() of a Pre-LN block matches the golden plan and WGSL", async () => {
  const { text, wgsl } = planText([preLnBlock(DIMS)], true);
  await golden("preln_plan.txt", text);
  await golden("preln_wgsl.txt", wgsl);
});

Deno.test("plan() fuses a Pre-LN block into 2 row kernels, 4 matmul kernels and 1 attention", () => {
  const p = plan([preLnBlock(DIMS)], { fusion: true, maxBindings: 16 });
  const kinds = p.kernels.map((k) => k.ir.kind);
  assert.equal(kinds.filter((k) => k === "attention").length, 1);
  assert.equal(kinds.filter((k) => k === "matmul").length, 4);
  // q, k and v share their operand: one kernel computes all three
  const qkv = p.kernels.find((k) => k.why.some((w) => w.startsWith("horizontal fusion: 3")));
  assert.ok(qkv && qkv.outputs.length === 3);
  assert.equal(kinds.filter((k) => k === "loop").length, 2);
  // no value of the T×T score size reaches memory
  const scores = DIMS.b * DIMS.h * DIMS.t * DIMS.t;
  assert.ok(p.values.every((v) => v.role !== "temp" || v.numel !== scores));
  // every boundary says why
  for (const k of p.kernels) assert.ok(k.why.length >= 2, k.name);
  // with 8 storage buffers the fused q/k/v kernel (10 buffers) runs as three kernels
  const p8 = plan([preLnBlock(DIMS)], { fusion: true, maxBindings: 8 });
  assert.equal(p8.kernels.filter((k) => k.ir.kind === "matmul").length, 6);
  for (const k of p8.kernels) assert.ok(k.bindings.length <= 8, k.name);
});

Deno.test("plan({ fusion: false }) makes one kernel per primitive op", () => {
  const out = preLnBlock(DIMS);
  const p = plan([out], { fusion: false, maxBindings: 16 });
  const prims = toposort(decompose([out])).filter((e) =>
    OP_KIND[e.op] !== "leaf" && e.op !== "reshape"
  );
  assert.equal(p.kernels.length, prims.length);
  for (const k of p.kernels) assert.equal(k.outputs.length, 1);
});

Deno.test("plan() output is deterministic across repeated planning", () => {
  const a = planText([preLnBlock(DIMS)], true);
  const b = planText([preLnBlock(DIMS)], true);
  assert.equal(a.text, b.text);
  assert.equal(a.wgsl, b.wgsl);
});

Deno.test("plan() writes a residual sum and the LayerNorm of it from one row kernel", () => {
  const x = nx.input("x", [4, 8]), z = nx.input("z", [4, 8]);
  const h = nx.add(x, nx.tanh(z));
  const y = nx.add(nx.mul(nx.layerNorm(h), nx.param("g", [8])), nx.param("b", [8]));
  const p = plan([y, h], { fusion: true, maxBindings: 8 });
  assert.equal(p.kernels.length, 1);
  const k = p.kernels[0]!;
  assert.equal(k.outputs.length, 2);
  assert.ok(k.ir.kind === "loop" && k.ir.rowLength === 8 && k.ir.count === 4);
});

Deno.test("emitted WGSL writes -Infinity as a run-time bit cast, never a constant", () => {
  const x = nx.input("x", [3, 5]);
  const p = plan([nx.max(x, -1), nx.where(nx.less(x, 0), x, -Infinity)], {
    fusion: true,
    maxBindings: 8,
  });
  const code = p.kernels.map((k) => emitKernel(k, DEV).code).join("\n");
  assert.match(code, /var<private> nx_nonfinite: vec3<u32>/);
  assert.match(code, /bitcast<f32>\(nx_nonfinite\.y\)/);
  assert.doesNotMatch(code, /bitcast<f32>\(0x/);
  assert.doesNotMatch(code, /inf/i);
});

Deno.test("plan() never merges loops past llvmpipe's per-invocation loop cap", () => {
  // three independent 30000-element sums would be one kernel of 90000 loop iterations;
  // llvmpipe stops an invocation's loops after 65535 in total (sequential loops count too)
  const xs = [0, 1, 2].map((i) => nx.input(`x${i}`, [30000]));
  const p = plan(xs.map((x) => nx.sum(nx.mul(x, x))), { fusion: true, maxBindings: 16 });
  const iterations = (stmts: readonly Stmt[]): number =>
    stmts.reduce((n, s) => (s.s === "loop" ? n + s.n * (1 + iterations(s.body)) : n), 0);
  for (const k of p.kernels) {
    if (k.ir.kind === "loop") assert.ok(iterations(k.ir.body) <= 32768, k.name);
  }
  assert.equal(p.kernels.length, 3);
  // one scalar reading several long reductions (an update/weight ratio of a block) splits too
  const norm = nx.sqrt(xs.map((x) => nx.sum(nx.mul(x, x))).reduce((a, b) => nx.add(a, b)));
  const q = plan([norm], { fusion: true, maxBindings: 16 });
  for (const k of q.kernels) {
    if (k.ir.kind === "loop") assert.ok(iterations(k.ir.body) <= 32768, k.name);
  }
});
