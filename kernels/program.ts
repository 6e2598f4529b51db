/**
 * Compiled programs: a static set of GPU buffers, pipelines and bind groups
 * built once, run many times with one submit per run.
 *
 * @module
 */

import type { NDArray } from "../lib/ir/array.ts";
import { type DType, isFloat } from "../lib/ir/dtype.ts";
import { type Expr, leavesOf, mkLeaf, substitute } from "../lib/ir/expr.ts";
import { fmtShape, numel, shapeEq } from "../lib/ir/shape.ts";
import { interpret } from "../lib/interpret.ts";
import type { BufferPlan } from "../lib/compile/buffers.ts";
import type { Plan, PlannedKernel } from "../lib/compile/plan.ts";
import type { Runtime } from "./runtime.ts";
import type { EmittedKernel } from "./wgsl.ts";

/** Options for {@link Program.run}. */
export interface RunOptions {
  /**
   * Which outputs to read back: indices, or one boolean per output. Default:
   * all. `run` returns the selected outputs, in the order selected.
   */
  read?: readonly boolean[] | readonly number[];
}

/** What explain and tests see of one kernel. */
export interface KernelInfo {
  /** unique name, e.g. `k3_matmul_42` (execution order first) */
  readonly name: string;
  /** "loop" (elementwise/row/reduce), "matmul" or "attention" */
  readonly kind: "loop" | "matmul" | "attention";
  /** the ops fused into it (`%id op`) */
  readonly ops: readonly string[];
  /** why it exists and why each output leaves it */
  readonly why: readonly string[];
  /** bindings: name, access, dtype, elements, slot */
  readonly buffers: readonly {
    name: string;
    access: "read" | "write";
    dtype: DType;
    elements: number;
    slot: number;
  }[];
  /** workgroup counts */
  readonly dispatch: readonly [number, number, number];
  /** workgroup size */
  readonly workgroupSize: readonly [number, number, number];
  /** template description */
  readonly description: string;
  /** the WGSL module */
  readonly wgsl: string;
}

/** A compiled program (see `compile` in mod.ts). */
export interface Program {
  /** "webgpu" or "interpreter" */
  readonly backend: "webgpu" | "interpreter";
  /** the output expressions, in order */
  readonly outputs: readonly Expr[];
  /** input names with shapes and dtypes */
  readonly inputs: readonly { name: string; shape: readonly number[]; dtype: DType }[];
  /** param names with shapes and dtypes */
  readonly params: readonly { name: string; shape: readonly number[]; dtype: DType }[];
  /** dispatches per run (debug checks excluded) */
  readonly dispatchCount: number;
  /** kernels, in execution order */
  readonly kernels: readonly KernelInfo[];
  /** bytes of GPU memory the program holds */
  readonly bytes: number;
  /** bytes it would hold without buffer reuse */
  readonly unsharedBytes: number;
  /** milliseconds spent compiling pipelines */
  readonly compileMs: number;
  /**
   * Uploads parameters; they stay on the device between runs. Names the
   * program does not use are ignored.
   *
   * @param params values by name
   */
  setParams(params: Readonly<Record<string, NDArray>>): void;
  /**
   * Reads parameters back (after updates).
   *
   * @param names which (default all)
   * @returns values by name
   */
  getParams(names?: readonly string[]): Promise<Record<string, NDArray>>;
  /**
   * Runs the program once: writes inputs, dispatches every kernel in one
   * submit, applies `updates`, and reads back the selected outputs.
   *
   * @param inputs values of the program's inputs
   * @param opts which outputs to read
   * @returns the selected outputs
   */
  run(inputs?: Readonly<Record<string, NDArray>>, opts?: RunOptions): Promise<NDArray[]>;
  /** Frees the program's GPU buffers. */
  [Symbol.dispose](): void;
}

/** Which outputs a run reads, as indices. */
export function readList(n: number, read: RunOptions["read"]): number[] {
  if (read === undefined) return [...Array(n).keys()];
  if (read.length && typeof read[0] === "boolean") {
    if (read.length !== n) {
      throw new RangeError(
        `Cannot run program: read has ${read.length} flags but the program has ${n} outputs`,
      );
    }
    return (read as readonly boolean[]).flatMap((b, i) => (b ? [i] : []));
  }
  for (const i of read as readonly number[]) {
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new RangeError(`Cannot run program: output index ${i} is outside [0, ${n})`);
    }
  }
  return [...(read as readonly number[])];
}

function checkArray(kind: string, name: string, e: Expr, a: NDArray | undefined): NDArray {
  if (!a) {
    throw new TypeError(
      `Cannot run program: ${kind} "${name}" (${e.dtype}${fmtShape(e.shape)}) is not ${
        kind === "param" ? "set; call setParams first" : "given"
      }`,
    );
  }
  if (!shapeEq(a.shape, e.shape) || a.dtype !== e.dtype) {
    throw new TypeError(
      `Cannot bind ${kind} "${name}": expected ${e.dtype}${fmtShape(e.shape)}, got ${a.dtype}${
        fmtShape(a.shape)
      }`,
    );
  }
  return a;
}

function toGpuData(a: NDArray, f16: boolean): ArrayBufferView {
  const d = a.data;
  switch (a.dtype) {
    case "f32":
      return d instanceof Float32Array ? d : Float32Array.from(d);
    case "f16":
      return f16 ? Float16Array.from(d) : Float32Array.from(d);
    case "i32":
      return d instanceof Int32Array ? d : Int32Array.from(d, (v) => v | 0);
    case "u32":
      return d instanceof Uint32Array ? d : Uint32Array.from(d, (v) => v >>> 0);
    case "bool":
      return Uint32Array.from(d, (v) => (v ? 1 : 0));
  }
}

function fromGpuData(
  dtype: DType,
  shape: readonly number[],
  buf: ArrayBuffer,
  f16: boolean,
): NDArray {
  const n = numel(shape);
  let data: NDArray["data"];
  switch (dtype) {
    case "f32":
      data = new Float32Array(buf, 0, n).slice();
      break;
    case "f16":
      data = f16
        ? Float32Array.from(new Float16Array(buf, 0, n))
        : new Float32Array(buf, 0, n).slice();
      break;
    case "i32":
      data = new Int32Array(buf, 0, n).slice();
      break;
    case "u32":
      data = new Uint32Array(buf, 0, n).slice();
      break;
    case "bool":
      data = Uint8Array.from(new Uint32Array(buf, 0, n));
      break;
  }
  return Object.freeze({ dtype, shape, data });
}

/** Everything a GPU program is built from. */
export interface GpuProgramParts {
  /** the runtime */
  runtime: Runtime;
  /** the plan */
  plan: Plan;
  /** the buffer plan */
  buffers: BufferPlan;
  /** emitted kernels, parallel to plan.kernels */
  emitted: readonly EmittedKernel[];
  /** pipelines, parallel to plan.kernels */
  pipelines: readonly GPUComputePipeline[];
  /** the user's outputs */
  outputs: readonly Expr[];
  /** debug mode: NaN/Inf check pipelines per kernel output */
  debug?: { pipeline: GPUComputePipeline; code: string };
  /** compile time */
  compileMs: number;
}

/** A WebGPU-backed program. */
export class GpuProgram implements Program {
  readonly backend = "webgpu" as const;
  readonly outputs: readonly Expr[];
  readonly inputs: readonly { name: string; shape: readonly number[]; dtype: DType }[];
  readonly params: readonly { name: string; shape: readonly number[]; dtype: DType }[];
  readonly kernels: readonly KernelInfo[];
  /** milliseconds spent compiling (pipelines and warm-up) */
  compileMs: number;
  readonly bytes: number;
  readonly unsharedBytes: number;
  #p: GpuProgramParts;
  #slots: GPUBuffer[];
  #bindGroups: GPUBindGroup[];
  #staging = new Map<number, GPUBuffer>();
  #paramSet = new Set<string>();
  #busy: Promise<unknown> = Promise.resolve();
  #disposed = false;
  #debugFlags?: GPUBuffer;
  #debugStage?: GPUBuffer;
  #debugGroups: { kernel: number; value: number; group: GPUBindGroup; n: number }[] = [];

  constructor(p: GpuProgramParts) {
    this.#p = p;
    this.outputs = p.outputs;
    this.compileMs = p.compileMs;
    const { device } = p.runtime;
    const vals = p.plan.values;
    this.inputs = vals.filter((v) => v.role === "input").map((v) => ({
      name: (v.node.arg as { name: string }).name,
      shape: v.node.shape,
      dtype: v.dtype,
    }));
    this.params = vals.filter((v) => v.role === "param").map((v) => ({
      name: (v.node.arg as { name: string }).name,
      shape: v.node.shape,
      dtype: v.dtype,
    }));
    this.#slots = p.buffers.slotBytes.map((bytes, i) =>
      device.createBuffer({
        label: `normix slot ${i}`,
        size: bytes,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      })
    );
    this.bytes = p.buffers.slotBytes.reduce((a, b) => a + b, 0);
    this.unsharedBytes = p.buffers.unsharedBytes;
    this.#bindGroups = p.plan.kernels.map((k, i) =>
      device.createBindGroup({
        label: k.name,
        layout: p.pipelines[i]!.getBindGroupLayout(0),
        entries: p.emitted[i]!.bindings.map((b, j) => ({
          binding: j,
          resource: { buffer: this.#slots[p.buffers.slotOf[b.buffer]!]! },
        })),
      })
    );
    this.kernels = p.plan.kernels.map((k, i) => infoOf(k, p.emitted[i]!, p.buffers, p.plan));
    if (p.debug) this.#setupDebug(p.debug.pipeline);
  }

  get dispatchCount(): number {
    return this.#p.plan.kernels.length;
  }

  #setupDebug(pipe: GPUComputePipeline): void {
    const { device } = this.#p.runtime;
    let slot = 0;
    this.#p.plan.kernels.forEach((k, ki) => {
      for (const v of k.outputs) {
        const val = this.#p.plan.values[v]!;
        if (!isFloat(val.dtype)) continue;
        const params = device.createBuffer({
          size: 16,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        });
        const half = val.dtype === "f16" && this.#p.runtime.f16Storage;
        const words = half ? Math.ceil(val.numel / 2) : val.numel;
        // (an odd f16 count leaves a zero half in the last word: never flagged)
        device.queue.writeBuffer(params, 0, new Uint32Array([words, slot, half ? 1 : 0, 0]));
        this.#debugGroups.push({
          kernel: ki,
          value: v,
          n: words,
          group: device.createBindGroup({
            layout: pipe.getBindGroupLayout(0),
            entries: [
              { binding: 0, resource: { buffer: this.#slots[this.#p.buffers.slotOf[v]!]! } },
              { binding: 1, resource: { buffer: params } },
              { binding: 2, resource: { buffer: this.#flags(device) } },
            ],
          }),
        });
        slot++;
      }
    });
  }

  // one u32 per checked kernel output, rounded up to 16 bytes
  #flagBytes(): number {
    let n = 0;
    for (const k of this.#p.plan.kernels) {
      for (const v of k.outputs) if (isFloat(this.#p.plan.values[v]!.dtype)) n++;
    }
    return Math.max(16, Math.ceil(n / 4) * 16);
  }

  #flags(device: GPUDevice): GPUBuffer {
    this.#debugFlags ??= device.createBuffer({
      size: this.#flagBytes(),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return this.#debugFlags;
  }

  /**
   * Dispatches every kernel once on the current buffer contents (zeros before
   * the first run), applying no updates and reading nothing back, so lazily
   * compiling drivers finish their work before the first real run.
   *
   * @returns when the GPU is done
   */
  async warmup(): Promise<void> {
    this.#alive("warm up program");
    const { device } = this.#p.runtime;
    device.pushErrorScope("validation");
    const enc = device.createCommandEncoder({ label: "normix warm-up" });
    const pass = enc.beginComputePass();
    // a driver compiles each pipeline once: one dispatch per distinct pipeline
    const seen = new Set<GPUComputePipeline>();
    this.#p.plan.kernels.forEach((_, i) => {
      if (seen.has(this.#p.pipelines[i]!)) return;
      seen.add(this.#p.pipelines[i]!);
      pass.setPipeline(this.#p.pipelines[i]!);
      pass.setBindGroup(0, this.#bindGroups[i]!);
      pass.dispatchWorkgroups(...this.#p.emitted[i]!.dispatch);
    });
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    const err = await device.popErrorScope();
    if (err) throw new Error(`Cannot warm up program: the GPU rejected it: ${err.message}`);
  }

  setParams(params: Readonly<Record<string, NDArray>>): void {
    this.#alive("set params");
    const { device } = this.#p.runtime;
    for (const v of this.#p.plan.values) {
      if (v.role !== "param") continue;
      const name = (v.node.arg as { name: string }).name;
      const a = params[name];
      if (!a) continue;
      checkArray("param", name, v.node, a);
      if (numel(v.node.shape) === 0) {
        this.#paramSet.add(name);
        continue;
      }
      device.queue.writeBuffer(
        this.#slots[this.#p.buffers.slotOf[v.id]!]!,
        0,
        toGpuData(a, this.#p.runtime.f16Storage) as BufferSource,
      );
      this.#paramSet.add(name);
    }
  }

  async getParams(names?: readonly string[]): Promise<Record<string, NDArray>> {
    this.#alive("read params");
    const want = this.#p.plan.values.filter((v) =>
      v.role === "param" && (!names || names.includes((v.node.arg as { name: string }).name))
    );
    if (names) {
      for (const n of names) {
        if (!want.some((v) => (v.node.arg as { name: string }).name === n)) {
          throw new TypeError(`Cannot read param "${n}": the program has no param of that name`);
        }
      }
    }
    const run = this.#busy.then(async () => {
      const arrays = await this.#readValues(want.map((v) => v.id));
      const out: Record<string, NDArray> = {};
      want.forEach((v, i) => (out[(v.node.arg as { name: string }).name] = arrays[i]!));
      return out;
    });
    this.#busy = run.catch(() => undefined);
    return await run;
  }

  async #readValues(ids: readonly number[]): Promise<NDArray[]> {
    const { device } = this.#p.runtime;
    const enc = device.createCommandEncoder();
    const stages = this.#encodeReads(ids, enc);
    device.queue.submit([enc.finish()]);
    return await this.#collect(ids, stages);
  }

  #encodeReads(ids: readonly number[], enc: GPUCommandEncoder): GPUBuffer[] {
    const { device } = this.#p.runtime;
    return ids.map((id) => {
      const bytes = this.#p.buffers.slotBytes[this.#p.buffers.slotOf[id]!]!;
      let s = this.#staging.get(id);
      if (!s) {
        s = device.createBuffer({
          size: bytes,
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        });
        this.#staging.set(id, s);
      }
      enc.copyBufferToBuffer(this.#slots[this.#p.buffers.slotOf[id]!]!, 0, s, 0, bytes);
      return s;
    });
  }

  async #collect(ids: readonly number[], stages: readonly GPUBuffer[]): Promise<NDArray[]> {
    // the same value read twice shares one staging buffer: map each once
    const uniq = [...new Set(stages)];
    await Promise.all(uniq.map((s) => s.mapAsync(GPUMapMode.READ)));
    const out = ids.map((id, i) => {
      const v = this.#p.plan.values[id]!;
      return fromGpuData(
        v.dtype,
        v.node.shape,
        stages[i]!.getMappedRange().slice(0),
        this.#p.runtime.f16Storage,
      );
    });
    for (const s of uniq) s.unmap();
    return out;
  }

  #alive(what: string): void {
    if (this.#disposed) throw new Error(`Cannot ${what}: the program was disposed`);
    this.#p.runtime.check(what);
  }

  run(inputs: Readonly<Record<string, NDArray>> = {}, opts: RunOptions = {}): Promise<NDArray[]> {
    this.#alive("run program");
    const which = readList(this.outputs.length, opts.read);
    // validate synchronously so bad input fails before anything is queued
    const vals = this.#p.plan.values;
    for (const v of vals) {
      if (v.role === "param") {
        const name = (v.node.arg as { name: string }).name;
        if (!this.#paramSet.has(name)) checkArray("param", name, v.node, undefined);
      }
    }
    const data = vals.filter((v) => v.role === "input").map((v) => {
      const name = (v.node.arg as { name: string }).name;
      return [
        v,
        toGpuData(checkArray("input", name, v.node, inputs[name]), this.#p.runtime.f16Storage),
      ] as const;
    });
    const run = this.#busy.then(() => this.#run(data, which));
    this.#busy = run.catch(() => undefined);
    return run;
  }

  async #run(
    data: readonly (readonly [{ id: number }, ArrayBufferView])[],
    which: readonly number[],
  ): Promise<NDArray[]> {
    const { device } = this.#p.runtime;
    const { plan, buffers } = this.#p;
    this.#alive("run program");
    for (const [v, d] of data) {
      // (zero-length writes are skipped: Deno's queue rejects them)
      if (d.byteLength) {
        device.queue.writeBuffer(this.#slots[buffers.slotOf[v.id]!]!, 0, d as BufferSource);
      }
    }
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    const enc = device.createCommandEncoder({ label: "normix run" });
    const debug = this.#p.debug;
    if (debug) {
      device.queue.writeBuffer(
        this.#flags(device),
        0,
        new Uint32Array(this.#flagBytes() / 4).fill(0xffffffff),
      );
    }
    const pass = enc.beginComputePass({ label: "normix program" });
    plan.kernels.forEach((_, i) => {
      const e = this.#p.emitted[i]!;
      pass.setPipeline(this.#p.pipelines[i]!);
      pass.setBindGroup(0, this.#bindGroups[i]!);
      pass.dispatchWorkgroups(...e.dispatch);
      if (debug) {
        for (const g of this.#debugGroups.filter((g) => g.kernel === i)) {
          pass.setPipeline(debug.pipeline);
          pass.setBindGroup(0, g.group);
          const wgs = Math.ceil(g.n / 64);
          const x = Math.min(wgs, 65535);
          pass.dispatchWorkgroups(x, Math.ceil(wgs / x));
        }
      }
    });
    pass.end();
    if (debug) {
      // check before updates are applied, so NaNs never reach the params
      this.#debugStage ??= device.createBuffer({
        size: this.#flagBytes(),
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      enc.copyBufferToBuffer(this.#flags(device), 0, this.#debugStage, 0, this.#flagBytes());
      device.queue.submit([enc.finish()]);
      await this.#popErrors();
      await this.#debugStage.mapAsync(GPUMapMode.READ);
      const flags = new Uint32Array(this.#debugStage.getMappedRange().slice(0));
      this.#debugStage.unmap();
      for (let s = 0; s < this.#debugGroups.length; s++) {
        if (flags[s] !== 0xffffffff) await this.#reportNonFinite(s, flags[s]!);
      }
      const enc2 = device.createCommandEncoder();
      device.pushErrorScope("out-of-memory");
      device.pushErrorScope("validation");
      const ids2 = which.map((i) => plan.outputs[i]!);
      // outputs are read before updates overwrite params they may alias
      const stages2 = this.#encodeReads(ids2, enc2);
      this.#updates(enc2);
      device.queue.submit([enc2.finish()]);
      await this.#popErrors();
      return await this.#collect(ids2, stages2);
    }
    if (which.length === 0) {
      this.#updates(enc);
      device.queue.submit([enc.finish()]);
      await this.#popErrors();
      return [];
    }
    const ids = which.map((i) => plan.outputs[i]!);
    // outputs are read before updates overwrite params they may alias
    const stages = this.#encodeReads(ids, enc);
    this.#updates(enc);
    device.queue.submit([enc.finish()]);
    await this.#popErrors();
    return await this.#collect(ids, stages);
  }

  #updates(enc: GPUCommandEncoder): void {
    const { plan, buffers } = this.#p;
    for (const u of plan.updates) {
      const from = buffers.slotOf[u.value]!, to = buffers.slotOf[u.param]!;
      if (from === to) continue;
      enc.copyBufferToBuffer(this.#slots[from]!, 0, this.#slots[to]!, 0, buffers.slotBytes[to]!);
    }
  }

  async #popErrors(): Promise<void> {
    const { device } = this.#p.runtime;
    const v = await device.popErrorScope();
    const o = await device.popErrorScope();
    const err = v ?? o;
    if (err) throw new Error(`Cannot run program: the GPU rejected it: ${err.message}`);
  }

  async #reportNonFinite(slot: number, index: number): Promise<never> {
    const g = this.#debugGroups[slot]!;
    const k = this.#p.plan.kernels[g.kernel]!;
    const v = this.#p.plan.values[g.value]!;
    const [bad] = await this.#readValues([g.value]);
    const x = bad!.data[index]!;
    const what = Number.isNaN(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf";
    const op = await this.#replay(k).catch(() => undefined);
    throw new Error(
      `Cannot run program: debug check found ${what} at element ${index} of ${describeValue(v)} ` +
        `written by kernel ${k.name}${op ? `; first non-finite op: ${op}` : ""}. ` +
        `The kernel computes ${k.ops.join(", ")}. Param updates were not applied.`,
    );
  }

  // Re-evaluates the kernel's ops one by one on the CPU (f32-rounded), from the
  // values it read, to name the first op that produced a non-finite value.
  async #replay(k: PlannedKernel): Promise<string | undefined> {
    const reads = k.bindings.filter((b) => b.access === "read").map((b) => b.buffer);
    const arrays = await this.#readValues(reads);
    const known = new Map<Expr, Float64Array>();
    reads.forEach((id, i) =>
      known.set(this.#p.plan.values[id]!.node, Float64Array.from(arrays[i]!.data))
    );
    for (const n of k.nodes) {
      if (known.has(n)) continue;
      const subs = new Map<Expr, Expr>();
      const bind: Record<string, NDArray> = {};
      n.src.forEach((s, i) => {
        const v = known.get(s);
        if (!v) return;
        const leaf = mkLeaf("input", s.dtype, s.shape, { name: `__src${i}` });
        subs.set(s, leaf);
        bind[`__src${i}`] = { dtype: s.dtype, shape: s.shape, data: v };
      });
      const [expr] = substitute([n], subs);
      let out: Float64Array;
      try {
        out = interpret([expr!], bind)[0]!.data;
      } catch {
        return undefined;
      }
      if (isFloat(n.dtype)) out = out.map(Math.fround);
      known.set(n, out);
      const srcFinite = n.src.every((s) => {
        const v = known.get(s);
        return !v || !isFloat(s.dtype) || v.every(Number.isFinite);
      });
      const bad = isFloat(n.dtype) ? out.findIndex((x) => !Number.isFinite(x)) : -1;
      if (bad >= 0 && srcFinite) {
        return `%${n.id} ${n.op} ${n.dtype}${fmtShape(n.shape)} (value ${
          out[bad]
        } at element ${bad})`;
      }
    }
    return undefined;
  }

  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const b of this.#slots) b.destroy();
    for (const b of this.#staging.values()) b.destroy();
    this.#debugFlags?.destroy();
    this.#debugStage?.destroy();
  }
}

function describeValue(v: { node: Expr; role: string }): string {
  const n = v.node;
  const a = n.arg as { name?: string } | null;
  return `${v.role} %${n.id} ${n.op}${a?.name ? ` "${a.name}"` : ""} ${n.dtype}${
    fmtShape(n.shape)
  }`;
}

function infoOf(k: PlannedKernel, e: EmittedKernel, buffers: BufferPlan, plan: Plan): KernelInfo {
  return {
    name: k.name,
    kind: k.ir.kind,
    ops: k.ops,
    why: k.why,
    buffers: e.bindings.map((b) => ({
      name: b.label,
      access: b.access,
      dtype: plan.values[b.buffer]!.dtype,
      elements: plan.values[b.buffer]!.numel,
      slot: buffers.slotOf[b.buffer]!,
    })),
    dispatch: e.dispatch,
    workgroupSize: e.workgroupSize,
    description: e.description,
    wgsl: e.code,
  };
}

/** A program that runs on the float64 interpreter (explicit fallback). */
export class InterpreterProgram implements Program {
  readonly backend = "interpreter" as const;
  readonly outputs: readonly Expr[];
  readonly inputs: readonly { name: string; shape: readonly number[]; dtype: DType }[];
  readonly params: readonly { name: string; shape: readonly number[]; dtype: DType }[];
  readonly dispatchCount = 0;
  readonly kernels: readonly KernelInfo[] = [];
  readonly bytes = 0;
  readonly unsharedBytes = 0;
  readonly compileMs = 0;
  #updates: [string, Expr][];
  #params = new Map<string, NDArray>();

  constructor(outputs: readonly Expr[], updates: Readonly<Record<string, Expr>>) {
    this.outputs = outputs;
    this.#updates = Object.entries(updates).sort(([a], [b]) => (a < b ? -1 : 1));
    const { inputs, params } = leavesOf([...outputs, ...this.#updates.map(([, e]) => e)]);
    this.inputs = inputs.map((e) => ({ name: e.arg.name, shape: e.shape, dtype: e.dtype }));
    this.params = params.map((e) => ({ name: e.arg.name, shape: e.shape, dtype: e.dtype }));
    for (const [name, e] of this.#updates) {
      const p = params.find((q) => q.arg.name === name);
      if (!p) {
        // a param that only receives an update
        (this.params as { name: string; shape: readonly number[]; dtype: DType }[]).push({
          name,
          shape: e.shape,
          dtype: e.dtype,
        });
      } else if (!shapeEq(p.shape, e.shape) || p.dtype !== e.dtype) {
        throw new TypeError(
          `Cannot compile update of param "${name}": it is ${p.dtype}${fmtShape(p.shape)} but ` +
            `the new value is ${e.dtype}${fmtShape(e.shape)}`,
        );
      }
    }
  }

  setParams(params: Readonly<Record<string, NDArray>>): void {
    for (const p of this.params) {
      const a = params[p.name];
      if (!a) continue;
      if (!shapeEq(a.shape, p.shape) || a.dtype !== p.dtype) {
        throw new TypeError(
          `Cannot bind param "${p.name}": expected ${p.dtype}${fmtShape(p.shape)}, got ${a.dtype}${
            fmtShape(a.shape)
          }`,
        );
      }
      this.#params.set(p.name, a);
    }
  }

  getParams(names?: readonly string[]): Promise<Record<string, NDArray>> {
    const out: Record<string, NDArray> = {};
    for (const p of this.params) {
      if (names && !names.includes(p.name)) continue;
      const a = this.#params.get(p.name);
      if (a) out[p.name] = a;
    }
    return Promise.resolve(out);
  }

  run(inputs: Readonly<Record<string, NDArray>> = {}, opts: RunOptions = {}): Promise<NDArray[]> {
    const which = readList(this.outputs.length, opts.read);
    const bind: Record<string, NDArray> = { ...inputs };
    for (const p of this.params) {
      const a = this.#params.get(p.name);
      if (!a) {
        throw new TypeError(
          `Cannot run program: param "${p.name}" (${p.dtype}${fmtShape(p.shape)}) is not set; ` +
            `call setParams first`,
        );
      }
      bind[p.name] = a;
    }
    const all = interpret([...this.outputs, ...this.#updates.map(([, e]) => e)], bind);
    this.#updates.forEach(([name], i) => this.#params.set(name, all[this.outputs.length + i]!));
    return Promise.resolve(which.map((i) => all[i]!));
  }

  [Symbol.dispose](): void {
    this.#params.clear();
  }
}
