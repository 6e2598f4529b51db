/**
 * Forward + backward of the Pre-LN block of `block_bench.ts` (batch 4, seq 128, d_model 256,
 * 4 heads, FFN 1024, GELU (tanh), causal) on the same adapter in one run: the scalar loss
 * `sum(block(x) ⊙ c)` (c a fixed random tensor, so every output element gets its own
 * cotangent) and its gradients with respect to all 16 block parameters.
 *
 * - normix fused and normix `fusion: false`: `valueAndGrad` from lib/autodiff, compiled as one
 *   program whose outputs are the loss and the 16 gradients (one submit per run).
 * - TensorFlow.js WebGPU: `tf.variableGrads`.
 * - jax-js WebGPU: `valueAndGrad` under `jit`.
 *
 * At load time every participant's loss and gradients are compared with the float64
 * interpreter (lib/interpret.ts) on the same parameters, and the dispatches of one
 * forward+backward are counted by wrapping `GPUComputePassEncoder.prototype.dispatchWorkgroups`.
 * A measurement runs `REPS` forward+backward passes and waits for the GPU once.
 *
 * Run: `deno task bench`; `bench/table.ts` turns a JSON run into a ratio table.
 *
 * @module
 */
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import { valueAndGrad } from "../lib/autodiff/mod.ts";
import { compile, getRuntime } from "../kernels/mod.ts";
import { type Jax, loadJax, loadTf, reportBackends, type Tf } from "./_peers.ts";
import {
  B,
  C,
  countDispatches,
  D,
  jaxBlock,
  maxAbs,
  maxDiff,
  normixBlock,
  PARAMS,
  T,
  tfBlock,
  tfCausalMask,
  X,
} from "./_block.ts";

/** forward+backward passes per measurement */
const REPS = 2;
const NAMES = Object.keys(PARAMS).sort();

/** Loss and gradients (by parameter name) of one pass. */
interface Result {
  loss: number;
  grads: Record<string, ArrayLike<number>>;
}

interface Participant {
  name: string;
  /** runs `reps` passes, waits for the GPU; returns the last pass's results when `read` */
  run: (reps: number, read: boolean) => Promise<Result | undefined>;
  dispatches: number;
}

const gpuOk = (await navigator.gpu?.requestAdapter()) != null;
const tfPeer = await loadTf();
const jaxPeer = await loadJax();
const participants: Participant[] = [];
const rows: Record<string, string> = {};
const describe = (e: unknown) => `FAILED: ${e instanceof Error ? e.message : e}`;

// the normix graph, also the float64 reference
const xIn = nx.input("x", [B, T, D]), cIn = nx.input("c", [B, T, D]);
const { value, grads } = valueAndGrad(nx.sum(nx.mul(normixBlock(xIn), cIn)));
const outputs = [value, ...NAMES.map((n) => grads[n]!)];
const params = Object.fromEntries(NAMES.map((k) => [k, nx.array(PARAMS[k]![1], PARAMS[k]![0])]));
const inputs = { x: nx.array(X, [B, T, D]), c: nx.array(C, [B, T, D]) };

if (gpuOk) {
  const rt = await getRuntime();
  rows["normix adapter"] = rt.description;
  for (const [name, fusion] of [["normix fused", true], ["normix fusion:false", false]] as const) {
    try {
      const prog = await compile(outputs, { fusion });
      prog.setParams(params);
      const run = async (reps: number, read: boolean): Promise<Result | undefined> => {
        const runs: Promise<nx.NDArray[]>[] = [];
        for (let r = 0; r < reps; r++) {
          runs.push(prog.run(inputs, { read: r < reps - 1 ? [] : read ? undefined : [0] }));
        }
        const res = (await Promise.all(runs))[reps - 1]!;
        if (!read) return undefined;
        return {
          loss: Number(res[0]!.data[0]),
          grads: Object.fromEntries(
            NAMES.map((n, i) => [n, res[i + 1]!.data as ArrayLike<number>]),
          ),
        };
      };
      await run(1, false); // llvmpipe compiles lazily at the first dispatch
      participants.push({ name, run, dispatches: prog.dispatchCount });
    } catch (e) {
      rows[name] = describe(e);
    }
  }
}

if (tfPeer.ok) {
  try {
    const tf: Tf = tfPeer.lib;
    const vars = NAMES.map((k) => tf.variable(tf.tensor(PARAMS[k]![1], PARAMS[k]![0])));
    const P: Record<string, Tf> = Object.fromEntries(NAMES.map((k, i) => [k, vars[i]]));
    const x = tf.tensor(X, [B, T, D]), c = tf.tensor(C, [B, T, D]);
    const mask = tfCausalMask(tf);
    const device = (tf.backend() as { device?: GPUDevice }).device;
    const pass = () => tf.variableGrads(() => tf.sum(tfBlock(tf, x, P, mask).mul(c)), vars);
    const run = async (reps: number, read: boolean): Promise<Result | undefined> => {
      let last: { value: Tf; grads: Record<string, Tf> } | undefined;
      for (let r = 0; r < reps; r++) {
        if (last) tf.dispose([last.value, ...Object.values(last.grads)]);
        last = pass();
      }
      // reading a value flushes tfjs's command queue; then wait for every queued dispatch
      const loss = (await last!.value.data())[0] as number;
      await device?.queue.onSubmittedWorkDone();
      let out: Result | undefined;
      if (read) {
        const g: Record<string, ArrayLike<number>> = {};
        // variableGrads keys the gradients by variable name
        for (const [i, n] of NAMES.entries()) g[n] = await last!.grads[vars[i].name].data();
        out = { loss, grads: g };
      }
      tf.dispose([last!.value, ...Object.values(last!.grads)]);
      return out;
    };
    await run(1, false);
    const dispatches = await countDispatches(() => run(1, false));
    participants.push({ name: "tfjs-webgpu", run, dispatches });
  } catch (e) {
    rows["tfjs-webgpu"] = describe(e);
  }
} else rows["tfjs-webgpu"] = `FAILED: ${tfPeer.error}`;

if (jaxPeer.ok) {
  try {
    const jax: Jax = jaxPeer.lib;
    const np = jax.numpy;
    const P: Record<string, Jax> = Object.fromEntries(
      NAMES.map((k) => [k, np.array(PARAMS[k]![1]).reshape(PARAMS[k]![0])]),
    );
    const x = np.array(X).reshape([B, T, D]), c = np.array(C).reshape([B, T, D]);
    const f = jax.jit(
      jax.valueAndGrad((p: Record<string, Jax>, x: Jax, c: Jax) =>
        np.sum(jaxBlock(jax, x, p).mul(c))
      ),
    );
    const run = async (reps: number, read: boolean): Promise<Result | undefined> => {
      const outs: [Jax, Record<string, Jax>][] = [];
      for (let r = 0; r < reps; r++) outs.push(f(jax.tree.ref(P), x.ref, c.ref));
      await jax.blockUntilReady(outs);
      let res: Result | undefined;
      if (read) {
        const [loss, g] = outs[reps - 1]!;
        const gd: Record<string, ArrayLike<number>> = {};
        for (const n of NAMES) gd[n] = await g[n].ref.data();
        res = { loss: (await loss.ref.data())[0], grads: gd };
      }
      for (const o of outs) jax.tree.dispose(o);
      return res;
    };
    await run(1, false);
    const dispatches = await countDispatches(() => run(1, false));
    participants.push({ name: "jax-js-webgpu", run, dispatches });
  } catch (e) {
    rows["jax-js-webgpu"] = describe(e);
  }
} else rows["jax-js-webgpu"] = `FAILED: ${jaxPeer.error}`;

// normix programs count their own dispatches; count them the same way as the peers, too
for (const p of participants.filter((p) => p.name.startsWith("normix"))) {
  const counted = await countDispatches(() => p.run(1, false));
  if (counted !== p.dispatches) {
    rows[`${p.name} dispatches`] = `program says ${p.dispatches}, counted ${counted}`;
  }
}

if (participants.length > 0) {
  // the float64 oracle (a few seconds on the CPU)
  const ref = interpret(outputs, { ...params, ...inputs });
  const refLoss = ref[0]!.data[0]!;
  const refMax = Math.max(...NAMES.map((_, i) => maxAbs(ref[i + 1]!.data)));
  rows["float64 reference"] = `loss ${refLoss.toFixed(4)}, max |gradient| ${refMax.toFixed(2)}`;
  for (const p of participants) {
    const r = (await p.run(1, true))!;
    let worst = 0, where = "";
    for (const [i, n] of NAMES.entries()) {
      const d = maxDiff(r.grads[n]!, ref[i + 1]!.data);
      if (d >= worst) [worst, where] = [d, n];
    }
    rows[p.name] = `${p.dispatches} dispatches/pass; loss ${r.loss.toFixed(4)} ` +
      `(|Δ| ${Math.abs(r.loss - refLoss).toExponential(2)}); max |gradient − float64| ` +
      `${worst.toExponential(2)} (in ${where})`;
  }
  if (tfPeer.ok) rows["tfjs backend"] = tfPeer.backend;
  if (jaxPeer.ok) rows["jax-js device"] = jaxPeer.backend;
}
reportBackends("block_grad_bench", rows);

for (const p of participants) {
  Deno.bench({
    name: `block fwd+bwd ${p.name} (x${REPS}, ${p.dispatches} dispatches)`,
    group: "pre-ln block forward+backward",
    baseline: p.name === "normix fused",
    n: p.name.startsWith("normix") ? 6 : 3,
    warmup: 1,
    async fn() {
      await p.run(REPS, false);
    },
  });
}
