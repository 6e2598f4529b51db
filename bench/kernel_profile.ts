/**
 * Per-kernel profile of a compiled program: each kernel of the program runs alone (same WGSL,
 * same dispatch size, its own buffers filled with 0.5 / zeros for integers) several times in one
 * submit, so the time of every kernel is visible without timestamp queries (llvmpipe has none).
 * The sum of the kernel times is close to, but not exactly, the program's time: caches are warmer
 * when a kernel repeats, and the program also copies its parameter updates.
 *
 * ```sh
 * deno run --allow-read --allow-env bench/kernel_profile.ts block-grad   # Pre-LN block fwd+bwd
 * deno run --allow-read --allow-env bench/kernel_profile.ts train-step   # the example's step
 * deno run --allow-read --allow-env bench/kernel_profile.ts block-fwd    # the block's forward
 * ```
 *
 * Add `--unfused` to profile the `fusion: false` program.
 *
 * @module
 */
import * as nx from "../lib/ir/mod.ts";
import { compile, getRuntime, type KernelInfo, type Program } from "../kernels/mod.ts";
import { valueAndGrad } from "../lib/autodiff/mod.ts";
import { B, D, normixBlock, T } from "./_block.ts";
import { trainSetup } from "./_train.ts";

/** One kernel's measured time. */
export interface KernelTime {
  /** the kernel */
  readonly kernel: KernelInfo;
  /** milliseconds per dispatch */
  readonly ms: number;
}

/**
 * Times every kernel of a program on its own.
 *
 * @param prog a WebGPU program
 * @param budgetMs aim for about this much GPU time per kernel measurement
 * @returns per-kernel times, in program order
 */
export async function profileKernels(prog: Program, budgetMs = 60): Promise<KernelTime[]> {
  const rt = await getRuntime();
  const { device } = rt;
  const buffers = new Map<string, GPUBuffer>();
  const bufferFor = (b: KernelInfo["buffers"][number]): GPUBuffer => {
    const key = `${b.name}:${b.slot}`;
    let buf = buffers.get(key);
    if (!buf) {
      const bytes = Math.max(16, Math.ceil((b.elements * 4) / 16) * 16);
      buf = device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.STORAGE,
        mappedAtCreation: true,
      });
      // floats 0.5 (finite through log/sqrt/exp); integers 0 (in range for gathers)
      if (b.dtype === "f32") new Float32Array(buf.getMappedRange()).fill(0.5);
      buf.unmap();
      buffers.set(key, buf);
    }
    return buf;
  };
  const roundTrip = async () => {
    const t0 = performance.now();
    device.queue.submit([device.createCommandEncoder().finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  let base = Infinity;
  for (let i = 0; i < 5; i++) base = Math.min(base, await roundTrip());
  const out: KernelTime[] = [];
  for (const k of prog.kernels) {
    const pipe = await rt.pipeline(k.wgsl, k.name);
    const group = device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: k.buffers.map((b, i) => ({ binding: i, resource: { buffer: bufferFor(b) } })),
    });
    const time = async (reps: number) => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe);
      pass.setBindGroup(0, group);
      for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(...k.dispatch);
      pass.end();
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      return Math.max(0, performance.now() - t0 - base);
    };
    await time(1); // first dispatch compiles lazily on llvmpipe
    const one = await time(1);
    const reps = Math.max(2, Math.min(50, Math.ceil(budgetMs / Math.max(one, 0.05))));
    let best = Infinity;
    for (let i = 0; i < 2; i++) best = Math.min(best, (await time(reps)) / reps);
    out.push({ kernel: k, ms: best });
  }
  for (const b of buffers.values()) b.destroy();
  return out;
}

/**
 * Renders a profile as a table, slowest first.
 *
 * @param times per-kernel times
 * @returns text
 */
export function renderProfile(times: readonly KernelTime[]): string {
  const total = times.reduce((a, t) => a + t.ms, 0);
  const rows = [...times].sort((a, b) => b.ms - a.ms);
  const L = [`sum of kernel times: ${total.toFixed(1)} ms over ${times.length} kernels`, ""];
  L.push("|      ms |     % | kernel | dispatch | what |");
  L.push("|--------:|------:|---|---|---|");
  for (const { kernel: k, ms } of rows) {
    L.push(
      `| ${ms.toFixed(2).padStart(7)} | ${
        (100 * ms / total).toFixed(1).padStart(5)
      } | ${k.name} | ${k.dispatch.join("×")} × ${k.workgroupSize.join("×")} | ${k.description} |`,
    );
  }
  return L.join("\n");
}

if (import.meta.main) {
  const which = Deno.args.find((a) => !a.startsWith("--")) ?? "block-grad";
  const fusion = !Deno.args.includes("--unfused");
  let outs: nx.Expr[];
  let updates: Record<string, nx.Expr> | undefined;
  if (which === "block-grad" || which === "block-fwd") {
    const x = nx.input("x", [B, T, D]);
    const y = normixBlock(x);
    if (which === "block-fwd") outs = [y];
    else {
      const { value, grads } = valueAndGrad(nx.sum(nx.mul(y, nx.input("c", [B, T, D]))));
      outs = [value, ...Object.keys(grads).sort().map((n) => grads[n]!)];
    }
  } else if (which === "train-step") {
    const s = trainSetup();
    outs = [...s.step.outputList];
    updates = { ...s.step.updates };
  } else {
    throw new RangeError(
      `Cannot profile "${which}": use block-grad, block-fwd or train-step`,
    );
  }
  const rt = await getRuntime();
  const prog = await compile(outs, { fusion, updates });
  console.log(
    `${which} (fusion ${fusion}) on ${rt.description}: ${prog.dispatchCount} dispatches, ` +
      `compiled in ${prog.compileMs.toFixed(0)} ms`,
  );
  // the whole program for comparison: inputs 0.5 / zeros like the per-kernel buffers
  const inputs = Object.fromEntries(prog.inputs.map((i) => {
    const n = i.shape.reduce((a, b) => a * b, 1);
    const data = i.dtype === "f32" ? new Float32Array(n).fill(0.5) : new Int32Array(n);
    return [i.name, { dtype: i.dtype, shape: i.shape, data } as nx.NDArray];
  }));
  prog.setParams(Object.fromEntries(prog.params.map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    return [
      p.name,
      { dtype: p.dtype, shape: p.shape, data: new Float32Array(n).fill(0.5) } as nx.NDArray,
    ];
  })));
  const runs: number[] = [];
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    await prog.run(inputs, { read: [0] });
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  console.log(`program run (one submit, reading output 0): median ${runs[1]!.toFixed(1)} ms`);
  console.log(renderProfile(await profileKernels(prog)));
  prog[Symbol.dispose]();
}
