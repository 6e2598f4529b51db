/**
 * fp32 matmul C = A·B (N×N) at N = 256, 512, 1024: normix (through the compiler, one fused
 * matmul kernel) against TensorFlow.js WebGPU and jax-js WebGPU, side by side in one run.
 *
 * Every measurement runs `reps` products (the number is in the bench name as `(xR)`) and then
 * waits for the GPU (normix: `onSubmittedWorkDone`; tfjs: reads the last result back; jax-js:
 * `blockUntilReady` on all results), so the ~12 ms round trip does not dominate. Each
 * participant is warmed up at load time: the first dispatch compiles lazily.
 *
 * Run: `deno task bench` (or `deno bench --allow-read --allow-env --allow-net=127.0.0.1
 * bench/matmul_bench.ts`); `deno run --allow-read --allow-run bench/table.ts` turns a JSON run
 * into GFLOP/s ratios.
 *
 * @module
 */
import * as nx from "../lib/ir/mod.ts";
import { compile, explain, getRuntime, type Program } from "../kernels/mod.ts";
import { loadJax, loadTf, randomData, reportBackends } from "./_peers.ts";

const SIZES: readonly number[] = [256, 512, 1024];
/** products per measurement: enough that one measurement is ≥ ~100 ms of work */
const REPS: Readonly<Record<number, number>> = { 256: 24, 512: 6, 1024: 2 };

const gpuOk = (await navigator.gpu?.requestAdapter()) != null;
const tfPeer = await loadTf();
const jaxPeer = await loadJax();

const normix = new Map<number, Program>();
if (gpuOk) {
  const rt = await getRuntime();
  for (const n of SIZES) {
    const a = nx.param("a", [n, n]), b = nx.param("b", [n, n]);
    const prog = await compile([nx.matmul(a, b)]);
    prog.setParams({
      a: nx.array(randomData(n * n, 1), [n, n]),
      b: nx.array(randomData(n * n, 2), [n, n]),
    });
    await prog.run({}, { read: [0] }); // warm-up: llvmpipe compiles at the first dispatch
    normix.set(n, prog);
  }
  reportBackends("matmul_bench", {
    normix: `webgpu (${rt.description}); ` +
      explain(normix.get(1024)!).split("\n").find((l) => l.includes("matmul"))?.trim(),
    tfjs: tfPeer.ok ? tfPeer.backend : `FAILED: ${tfPeer.error}`,
    "jax-js": jaxPeer.ok ? jaxPeer.backend : `FAILED: ${jaxPeer.error}`,
  });
}

for (const n of SIZES) {
  const reps = REPS[n]!;
  const group = `matmul N=${n}`;
  // normix iterations are cheap, so it gets more samples; peers take ~1 s per iteration at 1024
  const fast = { n: 8, warmup: 1 };
  const slow = n >= 1024 ? { n: 4, warmup: 1 } : { n: 6, warmup: 1 };

  Deno.bench({
    name: `${group} normix (x${reps})`,
    group,
    baseline: true,
    ignore: !gpuOk,
    ...fast,
    async fn() {
      const prog = normix.get(n)!;
      const runs: Promise<unknown>[] = [];
      for (let r = 0; r < reps; r++) runs.push(prog.run({}, { read: [] }));
      await Promise.all(runs);
      await (await getRuntime()).device.queue.onSubmittedWorkDone();
    },
  });

  // deno-lint-ignore no-explicit-any
  let tfIn: any[] | undefined;
  Deno.bench({
    name: `${group} tfjs-webgpu (x${reps})`,
    group,
    ignore: !tfPeer.ok,
    ...slow,
    async fn() {
      if (!tfPeer.ok) return;
      const tf = tfPeer.lib;
      tfIn ??= [
        tf.tensor2d(randomData(n * n, 1), [n, n]),
        tf.tensor2d(randomData(n * n, 2), [n, n]),
      ];
      const outs = [];
      for (let r = 0; r < reps; r++) outs.push(tf.matMul(tfIn[0], tfIn[1]));
      await outs[reps - 1].data();
      for (const o of outs) o.dispose();
    },
  });

  // deno-lint-ignore no-explicit-any
  let jaxIn: any[] | undefined, jaxMm: any;
  Deno.bench({
    name: `${group} jax-js-webgpu (x${reps})`,
    group,
    ignore: !jaxPeer.ok,
    ...slow,
    async fn() {
      if (!jaxPeer.ok) return;
      const jax = jaxPeer.lib;
      const np = jax.numpy;
      jaxIn ??= [
        np.array(randomData(n * n, 1)).reshape([n, n]),
        np.array(randomData(n * n, 2)).reshape([n, n]),
      ];
      // deno-lint-ignore no-explicit-any
      jaxMm ??= jax.jit((x: any, y: any) => np.matmul(x, y));
      const outs = [];
      // jax-js takes ownership of arguments: `.ref` keeps the inputs alive
      for (let r = 0; r < reps; r++) outs.push(jaxMm(jaxIn[0].ref, jaxIn[1].ref));
      await jax.blockUntilReady(outs);
      for (const o of outs) o.dispose();
    },
  });
}
