/**
 * The WebGPU runtime: adapter and device acquisition with the limits
 * programs need, a pipeline cache keyed by the WGSL's hash (compiles in
 * flight are shared), error surfacing with kernel names and WGSL lines, and
 * device-loss tracking.
 *
 * @module
 */

/** Options for {@link createRuntime}. */
export interface RuntimeOptions {
  /** the WebGPU entry point (default `navigator.gpu`); tests inject fakes here */
  gpu?: GPU;
  /** adapter preference */
  powerPreference?: GPUPowerPreference;
  /**
   * Plan kernels for at most this many storage buffers per kernel (default:
   * the device's limit). Lower values force kernel splits (for tests).
   */
  maxStorageBuffers?: number;
  /** request this storage-buffer limit from the device instead of the adapter's maximum */
  deviceStorageBuffers?: number;
  /** store f16 values as f16 when the adapter has shader-f16 (default true) */
  useF16?: boolean;
}

/** Limits the compiler plans against. */
export interface RuntimeLimits {
  /** storage buffers one kernel may bind */
  readonly maxStorageBuffers: number;
  /** largest storage binding in bytes */
  readonly maxStorageBufferBindingSize: number;
  /** largest buffer in bytes */
  readonly maxBufferSize: number;
  /** workgroups per dispatch dimension */
  readonly maxComputeWorkgroupsPerDimension: number;
  /** invocations per workgroup */
  readonly maxComputeInvocationsPerWorkgroup: number;
  /** workgroup size x */
  readonly maxComputeWorkgroupSizeX: number;
  /** workgroup size y */
  readonly maxComputeWorkgroupSizeY: number;
}

/** A GPU device with its pipeline cache. Share one across programs. */
export interface Runtime {
  /** the adapter's description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" */
  readonly description: string;
  /** whether the adapter is a software (fallback) adapter */
  readonly isFallbackAdapter: boolean;
  /** the device */
  readonly device: GPUDevice;
  /** limits the planner uses */
  readonly limits: RuntimeLimits;
  /** f16 values are stored as f16 (shader-f16 present and enabled) */
  readonly f16Storage: boolean;
  /** why the device was lost, once it has been */
  readonly lost: string | undefined;
  /** compiled pipelines so far (cache size) */
  readonly pipelineCount: number;
  /**
   * A compute pipeline for WGSL code (cached by hash; concurrent requests for
   * the same code share one compile).
   *
   * @param code WGSL with entry point `main`
   * @param label the kernel's name, used in errors
   * @returns the pipeline
   */
  pipeline(code: string, label: string): Promise<GPUComputePipeline>;
  /**
   * Throws when the device was lost or an uncaptured error happened.
   *
   * @param what the action, for the message
   */
  check(what: string): void;
  /** Destroys the device. */
  destroy(): void;
  /** Destroys the device (for `using`). */
  [Symbol.dispose](): void;
}

/** Software-driver hint shown when no adapter exists. */
const NO_ADAPTER_HELP = "WebGPU found no GPU adapter. On Linux without a GPU install Mesa's " +
  "software drivers (apt-get install mesa-vulkan-drivers, which provides lavapipe; or " +
  "libgl1-mesa-dri for llvmpipe over GL); check that no environment variable hides them " +
  '(DENO_WEBGPU_BACKEND). To run without a GPU, compile with { backend: "interpreter" } ' +
  "(the float64 reference interpreter).";

/**
 * Hashes WGSL text (FNV-1a, 2×32 bits) for the pipeline cache.
 *
 * @param s text
 * @returns 16 hex digits
 */
export function hashText(s: string): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193 ^ s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
  }
  return h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0");
}

/**
 * Formats shader compilation messages with the offending WGSL lines.
 *
 * @param label the kernel's name
 * @param code its WGSL
 * @param msgs compiler messages
 * @returns a readable report
 */
export function formatCompileErrors(
  label: string,
  code: string,
  msgs: readonly { message: string; lineNum: number; linePos: number; type: string }[],
): string {
  const lines = code.split("\n");
  const parts = msgs.map((m) => {
    const src = m.lineNum > 0 ? lines[m.lineNum - 1] ?? "" : "";
    return `  line ${m.lineNum}:${m.linePos}: ${m.message.trim()}\n    ${src.trim()}`;
  });
  return `Cannot compile kernel ${label}: the WGSL has ${msgs.length} error(s)\n${
    parts.join("\n")
  }`;
}

class GpuRuntime implements Runtime {
  readonly description: string;
  readonly isFallbackAdapter: boolean;
  readonly device: GPUDevice;
  readonly limits: RuntimeLimits;
  readonly f16Storage: boolean;
  #lost: string | undefined;
  #errors: string[] = [];
  #cache = new Map<string, Promise<GPUComputePipeline>>();

  constructor(adapter: GPUAdapter, device: GPUDevice, limits: RuntimeLimits, f16: boolean) {
    this.description = adapter.info?.description ?? "";
    this.isFallbackAdapter = !!(adapter.info as { isFallbackAdapter?: boolean } | undefined)
      ?.isFallbackAdapter;
    this.device = device;
    this.limits = limits;
    this.f16Storage = f16;
    device.lost.then((info) => {
      this.#lost = `${info.reason}: ${info.message || "no message"}`;
    });
    device.addEventListener?.("uncapturederror", (ev: Event) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.#errors.push(err?.message ?? String(err));
    });
  }

  get lost(): string | undefined {
    return this.#lost;
  }

  get pipelineCount(): number {
    return this.#cache.size;
  }

  check(what: string): void {
    if (this.#lost !== undefined) {
      throw new Error(
        `Cannot ${what}: the GPU device was lost (${this.#lost}); create a new runtime ` +
          `with createRuntime() and compile the program again`,
      );
    }
    if (this.#errors.length) {
      const e = this.#errors.splice(0);
      throw new Error(`Cannot ${what}: the GPU reported an error: ${e.join("; ")}`);
    }
  }

  pipeline(code: string, label: string): Promise<GPUComputePipeline> {
    // comments (kernel names, node labels) do not change the shader: kernels that
    // differ only in them share one compile; lines are kept so errors point into `code`
    const bare = stripComments(code);
    const key = hashText(bare);
    let p = this.#cache.get(key);
    if (!p) {
      p = this.#create(bare, label, code);
      this.#cache.set(key, p);
      p.catch(() => this.#cache.delete(key));
    }
    return p;
  }

  async #create(bare: string, label: string, code: string): Promise<GPUComputePipeline> {
    const dev = this.device;
    dev.pushErrorScope("validation");
    const module = dev.createShaderModule({ code: bare, label });
    const info = await module.getCompilationInfo();
    const scopeErr = await dev.popErrorScope();
    const errs = info.messages.filter((m) => m.type === "error");
    if (errs.length) throw new Error(formatCompileErrors(label, code, errs));
    if (scopeErr) {
      throw new Error(formatCompileErrors(label, code, [parseNaga(scopeErr.message)]));
    }
    dev.pushErrorScope("validation");
    let pipe: GPUComputePipeline;
    try {
      pipe = await dev.createComputePipelineAsync({
        label,
        layout: "auto",
        compute: { module, entryPoint: "main" },
      });
    } catch (e) {
      await dev.popErrorScope();
      const msg = (e as Error).message ?? String(e);
      throw new Error(`Cannot create pipeline for kernel ${label}: ${msg}`);
    }
    const err = await dev.popErrorScope();
    if (err) {
      const parsed = parseNaga(err.message);
      if (parsed.lineNum > 0) throw new Error(formatCompileErrors(label, code, [parsed]));
      throw new Error(`Cannot create pipeline for kernel ${label}: ${err.message}`);
    }
    return pipe;
  }

  destroy(): void {
    this.device.destroy();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * WGSL without its `//` comments, line for line (the emitter writes no block
 * comments and WGSL has no string literals).
 *
 * @param code WGSL
 * @returns the same lines with comments removed and trailing spaces trimmed
 */
export function stripComments(code: string): string {
  return code.replace(/[ \t]*\/\/[^\n]*/g, "");
}

// Naga reports "┌─ wgsl:12:5" style positions in validation messages.
function parseNaga(
  message: string,
): { message: string; lineNum: number; linePos: number; type: string } {
  const m = /wgsl:(\d+):(\d+)/.exec(message);
  return {
    message,
    lineNum: m ? Number(m[1]) : 0,
    linePos: m ? Number(m[2]) : 0,
    type: "error",
  };
}

/**
 * Acquires an adapter and a device with the limits programs need (storage
 * buffers, binding sizes, workgroup counts up to the adapter's maxima) and
 * `shader-f16` when available.
 *
 * @param opts entry point, limits and preferences
 * @returns the runtime
 * @throws {Error} when WebGPU or an adapter is missing, with how to get one
 *
 * @example
 * ```ts
 * import { createRuntime } from "./runtime.ts";
 * const rt = await createRuntime().catch(() => undefined);
 * rt?.destroy();
 * ```
 */
export async function createRuntime(opts: RuntimeOptions = {}): Promise<Runtime> {
  const gpu = opts.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) {
    throw new Error(
      "Cannot create a WebGPU runtime: this JavaScript runtime has no WebGPU " +
        "(navigator.gpu is undefined); use Deno >= 2 or a browser with WebGPU, or compile with " +
        '{ backend: "interpreter" }',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
  if (!adapter) throw new Error(`Cannot create a WebGPU runtime: ${NO_ADAPTER_HELP}`);
  const al = adapter.limits;
  const storage = Math.min(
    al.maxStorageBuffersPerShaderStage,
    opts.deviceStorageBuffers ?? al.maxStorageBuffersPerShaderStage,
  );
  const requiredLimits: Record<string, number> = {
    maxStorageBuffersPerShaderStage: storage,
    maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
    maxBufferSize: al.maxBufferSize,
    maxComputeWorkgroupsPerDimension: al.maxComputeWorkgroupsPerDimension,
    maxComputeInvocationsPerWorkgroup: al.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: al.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: al.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupSizeZ: al.maxComputeWorkgroupSizeZ,
    maxComputeWorkgroupStorageSize: al.maxComputeWorkgroupStorageSize,
  };
  const f16 = (opts.useF16 ?? true) && adapter.features.has("shader-f16");
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: f16 ? ["shader-f16"] : [],
  });
  const dl = device.limits;
  const limits: RuntimeLimits = {
    maxStorageBuffers: Math.min(
      dl.maxStorageBuffersPerShaderStage,
      opts.maxStorageBuffers ?? dl.maxStorageBuffersPerShaderStage,
    ),
    maxStorageBufferBindingSize: dl.maxStorageBufferBindingSize,
    maxBufferSize: dl.maxBufferSize,
    maxComputeWorkgroupsPerDimension: dl.maxComputeWorkgroupsPerDimension,
    maxComputeInvocationsPerWorkgroup: dl.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: dl.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: dl.maxComputeWorkgroupSizeY,
  };
  return new GpuRuntime(adapter, device, limits, f16);
}

let shared: Promise<Runtime> | undefined;

/**
 * The process-wide default runtime (created on first use; recreated if its
 * device was lost).
 *
 * @returns the shared runtime
 */
export async function getRuntime(): Promise<Runtime> {
  if (shared) {
    const rt = await shared.catch(() => undefined);
    if (rt && rt.lost === undefined) return rt;
  }
  shared = createRuntime();
  return await shared;
}
