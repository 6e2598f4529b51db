/**
 * One full training step of the main example's default model (`bench/_train.ts`: vocab 32,
 * d_model 64, 4 layers, 4 heads, FFN 256, B 8, T 32, learned positions, GELU, Pre-LN, AdamW
 * lr 3e-3, clip 1.0) on the same adapter in one run:
 *
 * - normix fused and `fusion: false`: `trainStepGraph(model.loss, undefined, adamw({ lr: 3e-3 }),
 *   { clip: 1 })` compiled with `updates`, so parameters and AdamW state stay on the GPU and
 *   a step is one submit;
 * - TensorFlow.js WebGPU (`tf.variableGrads`, AdamW with the same formulas);
 * - jax-js WebGPU (`valueAndGrad`, clipping and AdamW in one `jit`).
 *
 * At load time all participants start from the same parameters and train 3 steps on the same
 * batches; their losses and final parameters are compared with normix fused. A measurement runs
 * `REPS` steps and waits for the GPU once, reading the loss of the last step (like `trainLoop`
 * with `logEvery`). Tokens/s = B·T / time per step.
 *
 * Run: `deno task bench`; `bench/table.ts` turns a JSON run into a ratio table.
 *
 * @module
 */
import * as nx from "../mod.ts";
import { compile, getRuntime, type Program } from "../kernels/mod.ts";
import { loadJax, loadTf, reportBackends } from "./_peers.ts";
import { countDispatches, maxDiff } from "./_block.ts";
import { jaxTrainer, type PeerTrainer, tfTrainer, trainSetup } from "./_train.ts";

/** steps per measurement */
const REPS = 2;
/** steps of the cross-check */
const CHECK = 3;

interface Participant {
  name: string;
  /** runs steps from..from+reps−1, waits for the GPU, returns the last loss */
  run: (from: number, reps: number) => Promise<number>;
  /** current parameters by name */
  params: () => Promise<Record<string, ArrayLike<number>>>;
  dispatches: number;
}

const setup = trainSetup();
const gpuOk = (await navigator.gpu?.requestAdapter()) != null;
const tfPeer = await loadTf();
const jaxPeer = await loadJax();
const participants: Participant[] = [];
const rows: Record<string, string> = {};
const describe = (e: unknown) => `FAILED: ${e instanceof Error ? e.message : e}`;
const modelNames = setup.model.params.map((p) => p.name);
const lossIndex = setup.step.outputNames.indexOf("loss");

if (gpuOk) {
  const rt = await getRuntime();
  rows["normix adapter"] = rt.description;
  for (const [name, fusion] of [["normix fused", true], ["normix fusion:false", false]] as const) {
    try {
      const t0 = performance.now();
      const prog: Program = await compile(setup.step.outputList, {
        fusion,
        updates: setup.step.updates,
      });
      rows[`${name} compile`] = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
      prog.setParams({ ...setup.params, ...setup.state });
      const run = async (from: number, reps: number) => {
        const runs: Promise<nx.NDArray[]>[] = [];
        for (let t = from; t < from + reps; t++) {
          runs.push(prog.run({ ...setup.batch(t), [setup.step.stepInput]: nx.stepValue(t) }, {
            read: t === from + reps - 1 ? [lossIndex] : [],
          }));
        }
        return Number((await Promise.all(runs))[reps - 1]![0]!.data[0]);
      };
      participants.push({
        name,
        run,
        params: async () => {
          const p = await prog.getParams(modelNames);
          return Object.fromEntries(modelNames.map((n) => [n, p[n]!.data as ArrayLike<number>]));
        },
        dispatches: prog.dispatchCount,
      });
    } catch (e) {
      rows[name] = describe(e);
    }
  }
}

function peer(name: string, tr: PeerTrainer): Participant {
  return {
    name,
    async run(from, reps) {
      let loss: number | undefined;
      for (let t = from; t < from + reps; t++) {
        loss = await tr.step(t, t === from + reps - 1);
      }
      return loss!;
    },
    params: tr.params,
    dispatches: 0,
  };
}

if (tfPeer.ok) {
  try {
    participants.push(peer("tfjs-webgpu", tfTrainer(tfPeer.lib, setup)));
  } catch (e) {
    rows["tfjs-webgpu"] = describe(e);
  }
} else rows["tfjs-webgpu"] = `FAILED: ${tfPeer.error}`;

if (jaxPeer.ok) {
  try {
    participants.push(peer("jax-js-webgpu", jaxTrainer(jaxPeer.lib, setup)));
  } catch (e) {
    rows["jax-js-webgpu"] = describe(e);
  }
} else rows["jax-js-webgpu"] = `FAILED: ${jaxPeer.error}`;

// cross-check: CHECK steps from the same start on the same batches (this also warms up:
// llvmpipe compiles lazily at the first dispatch)
const losses = new Map<string, number[]>();
const finals = new Map<string, Record<string, ArrayLike<number>>>();
for (const p of [...participants]) {
  try {
    const l: number[] = [];
    for (let t = 1; t <= CHECK; t++) l.push(await p.run(t, 1));
    losses.set(p.name, l);
    finals.set(p.name, await p.params());
  } catch (e) {
    rows[p.name] = describe(e);
    participants.splice(participants.indexOf(p), 1);
  }
}
let nextStep = CHECK + 1;
for (const p of participants) {
  const n = await countDispatches(() => p.run(nextStep, 1));
  if (p.name.startsWith("normix") && n !== p.dispatches) {
    rows[`${p.name} dispatches`] = `program says ${p.dispatches}, counted ${n}`;
  }
  p.dispatches = n;
}
nextStep++;
const base = participants[0];
if (base) {
  const bl = losses.get(base.name)!, bp = finals.get(base.name)!;
  for (const p of participants) {
    let worst = 0, where = "";
    for (const n of modelNames) {
      const d = maxDiff(finals.get(p.name)![n]!, bp[n]!);
      if (d >= worst) [worst, where] = [d, n];
    }
    rows[p.name] = `${p.dispatches} dispatches/step; losses ${
      losses.get(p.name)!.map((l) => l.toFixed(5)).join(", ")
    }; after ${CHECK} steps max |param − ${base.name}| ${worst.toExponential(2)} (in ${where})` +
      (p === base
        ? ""
        : `; max |loss − ${base.name}| ${maxDiff(losses.get(p.name)!, bl).toExponential(2)}`);
  }
  if (tfPeer.ok) rows["tfjs backend"] = tfPeer.backend;
  if (jaxPeer.ok) rows["jax-js device"] = jaxPeer.backend;
}
rows["model"] = `${setup.model.params.length} tensors, ${
  setup.model.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0)
} parameters, ${setup.tokensPerStep} tokens/step`;
reportBackends("train_bench", rows);

for (const p of participants) {
  Deno.bench({
    name:
      `train step ${p.name} (x${REPS}, ${p.dispatches} dispatches, ${setup.tokensPerStep} tokens)`,
    group: "train step",
    baseline: p.name === "normix fused",
    n: p.name === "normix fused" ? 8 : 3,
    warmup: 1,
    async fn() {
      const from = nextStep;
      nextStep += REPS;
      await p.run(from, REPS);
    },
  });
}
