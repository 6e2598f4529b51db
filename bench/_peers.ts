/**
 * Benchmark-only helpers: loading the peer libraries (TensorFlow.js WebGPU, jax-js WebGPU) and
 * a few shared utilities. Never imported by library code; peers are loaded with full `npm:`
 * specifiers so the library keeps zero dependencies.
 *
 * A peer that fails to load or falls back to a non-WebGPU backend is reported (with the exact
 * error) and its benchmarks are skipped rather than silently run on the CPU.
 *
 * @module
 */

/** Deterministic pseudo-random data (mulberry32, uniform in [-1, 1)). */
export function randomData(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** A loaded peer library, or why it could not be used. */
export type Peer<T> = { ok: true; lib: T; backend: string } | { ok: false; error: string };

/** The parts of TensorFlow.js the benchmarks use. */
// deno-lint-ignore no-explicit-any
export type Tf = any;
/** The parts of jax-js the benchmarks use. */
// deno-lint-ignore no-explicit-any
export type Jax = any;

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

let tfPeer: Promise<Peer<Tf>> | undefined;

/**
 * Loads TensorFlow.js with its WebGPU backend (`tfjs` brings the gradients, the backend
 * package registers "webgpu").
 *
 * @returns the library with its active backend name, or the error
 */
export function loadTf(): Promise<Peer<Tf>> {
  tfPeer ??= (async (): Promise<Peer<Tf>> => {
    try {
      const tf = await import("npm:@tensorflow/tfjs@4.22.0");
      await import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");
      const ok = await tf.setBackend("webgpu");
      await tf.ready();
      const backend = tf.getBackend();
      if (!ok || backend !== "webgpu") {
        return { ok: false, error: `tf.setBackend("webgpu") gave backend "${backend}"` };
      }
      // the webgpu backend keeps its GPUDevice as `device` (not in tfjs-core's types)
      const be = tf.backend() as unknown as { device?: GPUDevice };
      const info = be.device?.adapterInfo;
      return { ok: true, lib: tf, backend: `${backend} (${info?.description ?? "adapter ?"})` };
    } catch (e) {
      return { ok: false, error: describe(e) };
    }
  })();
  return tfPeer;
}

let jaxPeer: Promise<Peer<Jax>> | undefined;

/**
 * Loads jax-js and makes WebGPU its default device.
 *
 * @returns the library with its default device, or the error
 */
export function loadJax(): Promise<Peer<Jax>> {
  jaxPeer ??= (async (): Promise<Peer<Jax>> => {
    try {
      const jax = await import("npm:@jax-js/jax@0.1.25");
      const devices: string[] = await jax.init("webgpu");
      if (!devices.includes("webgpu")) {
        return { ok: false, error: `jax.init("webgpu") found only [${devices.join(", ")}]` };
      }
      jax.defaultDevice("webgpu");
      const info = (jax.getWebGPUDevice() as GPUDevice | undefined)?.adapterInfo;
      return {
        ok: true,
        lib: jax,
        backend: `${jax.defaultDevice()} (${info?.description ?? "adapter ?"})`,
      };
    } catch (e) {
      return { ok: false, error: describe(e) };
    }
  })();
  return jaxPeer;
}

/**
 * The 1/5/15-minute load averages (other processes share the CPU that llvmpipe runs on).
 *
 * @returns e.g. "load 2.10 3.40 3.60 on 2 CPUs", or "load unknown" without --allow-sys=loadavg
 */
export function loadAverage(): string {
  try {
    const [a, b, c] = Deno.loadavg().map((v) => v.toFixed(2));
    return `load ${a} ${b} ${c} on ${navigator.hardwareConcurrency} CPUs`;
  } catch {
    return `load unknown (run with --allow-sys=loadavg); ${navigator.hardwareConcurrency} CPUs`;
  }
}

/**
 * Prints which backend each participant uses (and why a peer is skipped) once per bench file.
 *
 * @param file the bench file name
 * @param rows participant name → backend or error
 */
export function reportBackends(file: string, rows: Record<string, string>): void {
  const lines = Object.entries(rows).map(([k, v]) => `  ${k}: ${v}`);
  console.error(`[${file}] ${loadAverage()}; backends:\n${lines.join("\n")}`);
}
