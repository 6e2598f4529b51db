/**
 * Forward of one Pre-LN transformer block (batch 4, seq 128, d_model 256, 4 heads, FFN 1024,
 * GELU (tanh), causal attention) on the same adapter in one run:
 * normix fused, normix `fusion: false` (one kernel per primitive op), TensorFlow.js WebGPU and
 * jax-js WebGPU (jit).
 *
 * All four compute the same function from the same parameters; at load time their outputs are
 * compared (max |difference| printed) and the dispatches of one forward are counted by wrapping
 * `GPUComputePassEncoder.prototype.dispatchWorkgroups`. Each measurement runs `reps` forwards
 * and reads the last output back.
 *
 * Run: `deno task bench`; `bench/table.ts` turns a JSON run into a ratio table.
 *
 * @module
 */
import * as nx from "../lib/ir/mod.ts";
import { compile, getRuntime, type Program } from "../kernels/mod.ts";
import { type Jax, loadJax, loadTf, reportBackends } from "./_peers.ts";
import {
  B,
  countDispatches,
  D,
  jaxBlock,
  maxDiff,
  normixBlock,
  PARAMS,
  T,
  tfBlock,
  tfCausalMask,
  X,
} from "./_block.ts";

/** forwards per measurement */
const REPS = 2;

const gpuOk = (await navigator.gpu?.requestAdapter()) != null;
const tfPeer = await loadTf();
const jaxPeer = await loadJax();

interface Participant {
  name: string;
  /** runs `reps` forwards and reads the last output back */
  run: (reps: number) => Promise<ArrayLike<number>>;
  dispatches: number;
}
const participants: Participant[] = [];
const errors: Record<string, string> = {};

if (gpuOk) {
  const rt = await getRuntime();
  const out = normixBlock(nx.input("x", [B, T, D]));
  const params = Object.fromEntries(
    Object.entries(PARAMS).map(([k, [s, d]]) => [k, nx.array(d, s)]),
  );
  const xArr = nx.array(X, [B, T, D]);
  for (const [name, fusion] of [["normix fused", true], ["normix fusion:false", false]] as const) {
    try {
      const prog: Program = await compile([out], { fusion });
      prog.setParams(params);
      const run = async (reps: number) => {
        const runs: Promise<nx.NDArray[]>[] = [];
        for (let r = 0; r < reps; r++) {
          runs.push(prog.run({ x: xArr }, { read: r === reps - 1 ? [0] : [] }));
        }
        const res = await Promise.all(runs);
        return res[reps - 1]![0]!.data as ArrayLike<number>;
      };
      await run(1); // warm-up: llvmpipe compiles every pipeline at its first dispatch
      participants.push({ name, run, dispatches: prog.dispatchCount });
    } catch (e) {
      errors[name] = `FAILED: ${e instanceof Error ? e.message : e}`;
    }
  }
  errors["normix adapter"] = rt.description;
}

if (tfPeer.ok) {
  try {
    const tf = tfPeer.lib;
    const P = Object.fromEntries(
      Object.entries(PARAMS).map(([k, [s, d]]) => [k, tf.tensor(d, s)]),
    );
    const x = tf.tensor(X, [B, T, D]);
    const mask = tfCausalMask(tf);
    const run = async (reps: number) => {
      const outs = [];
      for (let r = 0; r < reps; r++) outs.push(tf.tidy(() => tfBlock(tf, x, P, mask)));
      const data = await outs[reps - 1].data();
      for (const o of outs) o.dispose();
      return data as Float32Array;
    };
    await run(1);
    const dispatches = await countDispatches(() => run(1));
    participants.push({ name: "tfjs-webgpu", run, dispatches });
  } catch (e) {
    errors["tfjs-webgpu"] = `FAILED: ${e instanceof Error ? e.message : e}`;
  }
} else errors["tfjs-webgpu"] = `FAILED: ${tfPeer.error}`;

if (jaxPeer.ok) {
  try {
    const jax = jaxPeer.lib;
    const np = jax.numpy;
    const P = Object.fromEntries(
      Object.entries(PARAMS).map(([k, [s, d]]) => [k, np.array(d).reshape(s)]),
    );
    const x = np.array(X).reshape([B, T, D]);
    const block = jax.jit((x: Jax, P: Record<string, Jax>) => jaxBlock(jax, x, P));
    // deno-lint-ignore no-explicit-any
    const refs = () => Object.fromEntries(Object.entries(P).map(([k, v]) => [k, (v as any).ref]));
    const run = async (reps: number) => {
      const outs = [];
      for (let r = 0; r < reps; r++) outs.push(block(x.ref, refs()));
      await jax.blockUntilReady(outs);
      const data = await outs[reps - 1].ref.data();
      for (const o of outs) o.dispose();
      return data as Float32Array;
    };
    await run(1);
    const dispatches = await countDispatches(() => run(1));
    participants.push({ name: "jax-js-webgpu", run, dispatches });
  } catch (e) {
    errors["jax-js-webgpu"] = `FAILED: ${e instanceof Error ? e.message : e}`;
  }
} else errors["jax-js-webgpu"] = `FAILED: ${jaxPeer.error}`;

// normix programs count their own dispatches; count them the same way as the peers, too
for (const p of participants.filter((p) => p.name.startsWith("normix"))) {
  const counted = await countDispatches(() => p.run(1));
  if (counted !== p.dispatches) {
    errors[`${p.name} dispatches`] = `program says ${p.dispatches}, counted ${counted}`;
  }
}

{
  const ref = participants[0] ? await participants[0].run(1) : undefined;
  const rows: Record<string, string> = { ...errors };
  for (const p of participants) {
    const out = await p.run(1);
    rows[p.name] = `${p.dispatches} dispatches/forward, max |out − ${participants[0]!.name}| = ${
      maxDiff(out, ref!).toExponential(2)
    }`;
  }
  if (tfPeer.ok) rows["tfjs backend"] = tfPeer.backend;
  if (jaxPeer.ok) rows["jax-js device"] = jaxPeer.backend;
  reportBackends("block_bench", rows);
}

for (const p of participants) {
  Deno.bench({
    name: `block fwd ${p.name} (x${REPS}, ${p.dispatches} dispatches)`,
    group: "pre-ln block forward",
    baseline: p.name === "normix fused",
    n: p.name.startsWith("normix") ? 8 : 4,
    warmup: 1,
    async fn() {
      await p.run(REPS);
    },
  });
}
