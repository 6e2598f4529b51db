/**
 * The normix compiler: lowers expression graphs to fused WGSL compute
 * kernels with a static memory plan, compiled once and run many times on
 * `navigator.gpu`.
 *
 * ```ts
 * import * as nx from "../lib/ir/mod.ts";
 * import { compile, explain } from "./mod.ts";
 * const x = nx.input("x", [2, 8]);
 * const w = nx.param("w", [8, 4]);
 * const y = nx.gelu(nx.matmul(nx.layerNorm(x), w));
 * const prog = await compile([y]).catch(() => compile([y], { backend: "interpreter" }));
 * prog.setParams({ w: nx.array(new Float32Array(32).fill(0.1), [8, 4]) });
 * const [out] = await prog.run({ x: nx.array(new Float32Array(16).fill(1), [2, 8]) });
 * console.log(out!.shape, explain(prog).split("\n")[0]);
 * prog[Symbol.dispose]();
 * ```
 *
 * - `fusion: false` compiles one kernel per primitive op (the baseline the
 *   benchmarks compare against).
 * - `debug: true` checks every kernel's outputs for NaN/Inf (bit tests on
 *   the GPU) and names the first kernel and op that produced one.
 * - `backend: "interpreter"` runs the same program on the float64
 *   interpreter; it is never chosen silently.
 * - `updates` maps param names to new values written back after each run,
 *   so training state stays on the GPU. Every new value is computed from the
 *   old params; outputs are read before params are overwritten.
 * - Kernels that differ only in the buffers they bind (the same sublayer in
 *   every layer) print the same WGSL up to comments and share one pipeline,
 *   also across programs on one runtime (compile several variants on the same
 *   runtime to reuse their shaders).
 * - `warmup` (default true) dispatches every distinct pipeline once inside
 *   `compile`, so drivers that compile lazily (llvmpipe) do it there:
 *   `compileMs` is the real cost and the first `run` is as fast as the rest.
 *
 * A program owns a static set of buffers (temporaries share buffers by
 * liveness); nothing inside it needs disposing but the program itself
 * (`using prog = await compile(...)` or `prog[Symbol.dispose]()`).
 * `run(inputs, { read })` writes inputs, dispatches every kernel in one
 * submit and reads back only the outputs selected by `read` (indices, or one
 * boolean per output), returning them in the order selected. GPU validation
 * and compile errors, device loss and uncaptured errors are thrown with the
 * kernel's name (and WGSL line), never swallowed.
 *
 * @module
 */

import type { Expr } from "../lib/ir/expr.ts";
import { splitLongReductions } from "../lib/compile/split_reduce.ts";
import { plan as planKernels } from "../lib/compile/plan.ts";
import { planBuffers } from "../lib/compile/buffers.ts";
import {
  GpuProgram,
  InterpreterProgram,
  type KernelInfo,
  type Program,
  type RunOptions,
} from "./program.ts";
import {
  createRuntime,
  getRuntime,
  type Runtime,
  type RuntimeLimits,
  type RuntimeOptions,
} from "./runtime.ts";
import { type EmitDevice, emitKernel } from "./wgsl.ts";

export { createRuntime, getRuntime };
export type { KernelInfo, Program, RunOptions, Runtime, RuntimeLimits, RuntimeOptions };

/** Options for {@link compile}. */
export interface CompileOptions {
  /** fuse kernels (default true); false gives one kernel per primitive op */
  fusion?: boolean;
  /** check every kernel's outputs for NaN/Inf and name the first producer (default false) */
  debug?: boolean;
  /** "webgpu" (default) or "interpreter"; there is no silent fallback */
  backend?: "webgpu" | "interpreter";
  /** param name → new value, written into the param after every run */
  updates?: Readonly<Record<string, Expr>>;
  /** the device to use (default: the shared {@link getRuntime}) */
  runtime?: Runtime;
  /**
   * Dispatch every kernel once during compile (on zero-filled buffers, no
   * updates) so drivers that compile shaders lazily (llvmpipe) do it now and
   * the first real run is as fast as the rest; the time is in `compileMs`.
   * Default true.
   */
  warmup?: boolean;
}

const CHECK_WGSL = `// debug: flags the first element whose bits are NaN or ±Inf (f32, or f16 pairs)
struct Params { n: u32, slot: u32, half: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> flags: array<atomic<u32>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = g.x + g.y * nw.x * 64u;
  if (i >= p.n) { return; }
  let bits = x[i];
  if (p.half == 0u) {
    if ((bits & 0x7f800000u) == 0x7f800000u) { atomicMin(&flags[p.slot], i); }
  } else {
    // two f16 values per word
    if ((bits & 0x7c00u) == 0x7c00u) { atomicMin(&flags[p.slot], 2u * i); }
    if ((bits & 0x7c000000u) == 0x7c000000u) { atomicMin(&flags[p.slot], 2u * i + 1u); }
  }
}
`;

/**
 * Compiles expressions into a program: plans fused kernels, emits WGSL,
 * builds every pipeline (in parallel, cached by WGSL hash), and allocates
 * one static set of buffers.
 *
 * @param outputs the expressions the program returns
 * @param opts fusion, debug, backend, updates, runtime
 * @returns the program (dispose it with `using` or `[Symbol.dispose]()`)
 * @throws {Error} when there is no GPU adapter (the message says how to get
 *   one) or a kernel fails to compile (kernel name and WGSL line)
 * @throws {TypeError} when `updates` names an unknown param or mismatches its shape
 */
export async function compile(
  outputs: readonly Expr[],
  opts: CompileOptions = {},
): Promise<Program> {
  if (!Array.isArray(outputs) || outputs.length === 0) {
    throw new TypeError("Cannot compile: pass a non-empty array of output expressions");
  }
  for (const o of outputs) {
    if (!o || typeof o !== "object" || typeof (o as Expr).id !== "number") {
      throw new TypeError(`Cannot compile: output ${String(o)} is not an expression`);
    }
  }
  const backend = opts.backend ?? "webgpu";
  if (backend === "interpreter") return new InterpreterProgram(outputs, opts.updates ?? {});
  if (backend !== "webgpu") {
    throw new RangeError(`Cannot compile for backend "${backend}": use "webgpu" or "interpreter"`);
  }
  for (const o of [...outputs, ...Object.values(opts.updates ?? {})]) {
    for (const n of [o]) {
      if (n.op === "dot" && !(n.dtype === "f32" || n.dtype === "f16")) {
        throw new TypeError(`Cannot compile an integer matmul on WebGPU; cast its operands to f32`);
      }
    }
  }
  const rt = opts.runtime ?? await getRuntime();
  rt.check("compile");
  const t0 = performance.now();
  // Long reductions are staged first (llvmpipe caps a shader loop at 65535 iterations).
  const updateNames = Object.keys(opts.updates ?? {});
  const split = splitLongReductions([
    ...outputs,
    ...updateNames.map((n) => opts.updates![n]!),
  ]);
  const plan = planKernels(split.slice(0, outputs.length), {
    fusion: opts.fusion ?? true,
    maxBindings: rt.limits.maxStorageBuffers,
    updates: Object.fromEntries(updateNames.map((n, i) => [n, split[outputs.length + i]!])),
  });
  const dev: EmitDevice = {
    maxComputeInvocationsPerWorkgroup: rt.limits.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: rt.limits.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: rt.limits.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupsPerDimension: rt.limits.maxComputeWorkgroupsPerDimension,
    description: rt.description,
    isFallbackAdapter: rt.isFallbackAdapter,
    f16Storage: rt.f16Storage,
  };
  const emitted = plan.kernels.map((k) => emitKernel(k, dev));
  const elBytes = (id: number) => (plan.values[id]!.dtype === "f16" && rt.f16Storage ? 2 : 4);
  const buffers = planBuffers(plan, elBytes, !opts.debug);
  for (const [i, b] of buffers.slotBytes.entries()) {
    if (b > rt.limits.maxStorageBufferBindingSize) {
      const v = plan.values.find((x) => buffers.slotOf[x.id] === i)!;
      throw new RangeError(
        `Cannot compile: ${v.dtype}[${v.node.shape.join(",")}] needs ${b} bytes, more than the ` +
          `device's maxStorageBufferBindingSize (${rt.limits.maxStorageBufferBindingSize}); ` +
          `split the tensor (e.g. a smaller batch)`,
      );
    }
  }
  const [pipelines, debugPipe] = await Promise.all([
    Promise.all(plan.kernels.map((k, i) => rt.pipeline(emitted[i]!.code, k.name))),
    opts.debug ? rt.pipeline(CHECK_WGSL, "debug_check") : Promise.resolve(undefined),
  ]);
  const compileMs = performance.now() - t0;
  rt.device.pushErrorScope("validation");
  const prog = new GpuProgram({
    runtime: rt,
    plan,
    buffers,
    emitted,
    pipelines,
    outputs,
    debug: debugPipe ? { pipeline: debugPipe, code: CHECK_WGSL } : undefined,
    compileMs,
  });
  const err = await rt.device.popErrorScope();
  if (err) {
    prog[Symbol.dispose]();
    throw new Error(
      `Cannot compile: creating the program's buffers and bind groups failed: ${err.message}`,
    );
  }
  if (opts.warmup ?? true) {
    try {
      await prog.warmup();
    } catch (e) {
      prog[Symbol.dispose]();
      throw e;
    }
    prog.compileMs = performance.now() - t0;
  }
  return prog;
}

/** Options for {@link explain}. */
export interface ExplainOptions {
  /** include each kernel's WGSL */
  wgsl?: boolean;
}

/**
 * Describes a program: each kernel with the ops fused into it, why its
 * boundary exists, its buffers and its dispatch size.
 *
 * @param prog a compiled program
 * @param opts `wgsl: true` appends each kernel's WGSL
 * @returns readable text
 */
export function explain(prog: Program, opts: ExplainOptions = {}): string {
  if (prog.backend === "interpreter") {
    return `program on the float64 interpreter: ${prog.outputs.length} output(s), no kernels`;
  }
  const L: string[] = [];
  L.push(
    `program: ${prog.kernels.length} kernel(s), ${prog.dispatchCount} dispatch(es) per run, ` +
      `${prog.bytes} bytes of buffers (${prog.unsharedBytes} without reuse), ` +
      `compiled in ${prog.compileMs.toFixed(0)} ms`,
  );
  for (const k of prog.kernels) {
    L.push("");
    L.push(
      `${k.name} [${k.kind}] dispatch ${k.dispatch.join("×")} × wg ${
        k.workgroupSize.join("×")
      } — ${k.description}`,
    );
    L.push(`  ops: ${k.ops.join(", ")}`);
    for (const w of k.why) L.push(`  why: ${w}`);
    for (const b of k.buffers) {
      L.push(
        `  ${
          b.access === "read" ? "reads " : "writes"
        } ${b.name}: ${b.dtype}×${b.elements} (slot ${b.slot})`,
      );
    }
    if (opts.wgsl) {
      L.push("  wgsl:");
      for (const line of k.wgsl.split("\n")) L.push(`    ${line}`);
    }
  }
  return L.join("\n");
}
