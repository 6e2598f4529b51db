/**
 * Checkpoint and resume: a tiny Pre-LN model (vocab 16, d 16, 2 layers, B 2, T 8) trained with
 * the compiled AdamW step for N steps straight ends with exactly the same bits as one trained
 * for k steps, saved with `saveCheckpoint` (parameters, AdamW moments, step), loaded with
 * `loadCheckpoint` into a freshly compiled program and continued to N. Checked on the float64
 * interpreter (always; saved as F64 so no value is rounded) and on WebGPU (f32, when there is
 * an adapter).
 *
 * A non-finite loss stops `trainLoop` with a message naming the step, and the checkpoint on disk
 * stays the last good one: the pattern below saves only after reading back a finite loss and
 * gradient norm, because `trainLoop` calls `onLog` for the bad step before it throws.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import { compile, type Program } from "../kernels/mod.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/io/fs.ts";
import type { SafetensorsDType } from "../lib/io/safetensors.ts";
import { hasGpu } from "./_util.ts";

const gpu = await hasGpu();
type Backend = "interpreter" | "webgpu";

const CFG: nx.ModelConfig = {
  vocabSize: 16,
  dModel: 16,
  nLayers: 2,
  nHeads: 2,
  batch: 2,
  seqLen: 8,
};
const N = 6, K = 3;

const model = nx.buildModel(CFG, "pre-ln");
const step = nx.trainStepGraph(
  model.loss,
  undefined,
  nx.adamw({ lr: nx.warmupCosine({ peak: 1e-2, warmup: 2, total: N }), weightDecay: 0.1 }),
  { clip: 1 },
);
const modelNames = model.params.map((p) => p.name);
const stateNames = step.slots.map((s) => s.name);
const tokens = nx.sampleMarkov(
  nx.markovChain({ vocab: 16, order: 2, branching: 3, seed: 3 }),
  2000,
  1,
);
const batch = (t: number) => {
  const b = nx.trainBatch(tokens, { batchSize: CFG.batch, seqLen: CFG.seqLen, seed: 5 }, t);
  return { ids: b.inputs, targets: b.targets };
};

/** Compiled programs per backend: the first compile on llvmpipe is the slow part. */
async function freshProgram(backend: Backend): Promise<Program> {
  return await compile(step.outputList, { updates: step.updates, backend });
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "normix_resume_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Saves parameters, optimizer state and step (F64 on the interpreter: nothing is rounded). */
async function checkpoint(path: string, prog: Program, t: number, backend: Backend) {
  const all = await prog.getParams();
  const params = Object.fromEntries(modelNames.map((n) => [n, all[n]!]));
  const extra = Object.fromEntries(stateNames.map((n) => [n, all[n]!]));
  const dtypes: Record<string, SafetensorsDType> = backend === "interpreter"
    ? Object.fromEntries([...modelNames, ...stateNames].map((n) => [n, "F64" as const]))
    : {};
  await saveCheckpoint(path, params, { config: CFG, variant: "pre-ln", step: t, extra, dtypes });
}

/** A fresh program holding a checkpoint's values; returns it and the step to continue from. */
async function resume(path: string, backend: Backend): Promise<{ prog: Program; start: number }> {
  const ck = await loadCheckpoint(path);
  assert.deepEqual(ck.config, CFG);
  assert.equal(ck.variant, "pre-ln");
  assert.deepEqual(Object.keys(ck.params).sort(), [...modelNames].sort());
  assert.deepEqual(Object.keys(ck.extra).sort(), [...stateNames].sort());
  const prog = await freshProgram(backend);
  prog.setParams({ ...ck.params, ...ck.extra });
  return { prog, start: ck.step! + 1 };
}

/** Bit patterns of every value (f64 on the interpreter, f32 on the GPU). */
function bits(a: nx.NDArray): string {
  const d = a.data as ArrayLike<number>;
  const v = d instanceof Float64Array ? new Float64Array(d) : Float32Array.from(d);
  return Array.from(new Uint32Array(v.buffer), (x) => x.toString(16)).join(",");
}

function assertBitIdentical(
  got: Record<string, nx.NDArray>,
  want: Record<string, nx.NDArray>,
  what: string,
): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: names`);
  for (const n of Object.keys(want)) {
    assert.equal(got[n]!.data.constructor, want[n]!.data.constructor, `${what}: ${n} storage`);
    if (bits(got[n]!) !== bits(want[n]!)) {
      const g = got[n]!.data, w = want[n]!.data;
      let i = 0;
      while (i < w.length && Object.is(g[i], w[i])) i++;
      assert.fail(`${what}: ${n}[${i}] is ${g[i]}, the uninterrupted run has ${w[i]}`);
    }
  }
}

function allFinite(values: Record<string, nx.NDArray>): boolean {
  return Object.values(values).every((a) =>
    Array.from(a.data as ArrayLike<number>).every(Number.isFinite)
  );
}

async function straightRun(backend: Backend, steps: number): Promise<Record<string, nx.NDArray>> {
  using prog = await freshProgram(backend);
  prog.setParams({ ...nx.initParams(model, 0), ...nx.initOptimizerState(step) });
  await nx.trainLoop(prog, step, { steps, batch, logEvery: steps });
  return await prog.getParams();
}

async function resumeIsBitExact(backend: Backend): Promise<void> {
  const straight = await straightRun(backend, N);
  await withDir(async (dir) => {
    const path = `${dir}/ckpt.safetensors`;
    {
      using first = await freshProgram(backend);
      first.setParams({ ...nx.initParams(model, 0), ...nx.initOptimizerState(step) });
      await nx.trainLoop(first, step, { steps: K, batch, logEvery: K });
      await checkpoint(path, first, K, backend);
    }
    const { prog, start } = await resume(path, backend);
    using second = prog;
    assert.equal(start, K + 1);
    await nx.trainLoop(second, step, { start, steps: N - start + 1, batch, logEvery: N });
    const resumed = await second.getParams();
    assertBitIdentical(resumed, straight, `${backend}: resumed at step ${K}`);
    // the comparison is sharp: resuming with fresh (zero) AdamW moments ends elsewhere
    using zeroMoments = await freshProgram(backend);
    const ck = await loadCheckpoint(path);
    zeroMoments.setParams({ ...ck.params, ...nx.initOptimizerState(step) });
    await nx.trainLoop(zeroMoments, step, { start, steps: N - start + 1, batch, logEvery: N });
    const wrong = await zeroMoments.getParams(modelNames);
    assert.ok(
      modelNames.some((n) => bits(wrong[n]!) !== bits(straight[n]!)),
      "dropping the optimizer state must change the result",
    );
  });
}

async function divergenceKeepsLastGoodCheckpoint(backend: Backend): Promise<void> {
  // the bad step is a checkpoint step: an unguarded save there would replace the good file
  const BAD = 6, EVERY = 2;
  await withDir(async (dir) => {
    const path = `${dir}/ckpt.safetensors`;
    using prog = await freshProgram(backend);
    prog.setParams({ ...nx.initParams(model, 0), ...nx.initOptimizerState(step) });
    const saved: number[] = [];
    const err = await nx.trainLoop(prog, step, {
      steps: BAD + 2,
      batch: (t) => {
        // a fault between steps: an Inf reaches the token embedding before step BAD
        if (t === BAD) {
          prog.setParams({
            "tok_emb.weight": nx.array(new Float32Array(16 * 16).fill(Infinity), [16, 16]),
          });
        }
        return batch(t);
      },
      onLog: async (t, v) => {
        // save only states reached through a finite loss and gradient norm; trainLoop calls
        // onLog for the bad step too (then throws), which must not overwrite the good file
        if (t % EVERY === 0 && Number.isFinite(v.loss) && Number.isFinite(v.gradNorm)) {
          await checkpoint(path, prog, t, backend);
          saved.push(t);
        }
      },
    }).then(() => undefined, (e) => e);
    assert.ok(err instanceof RangeError, `expected a RangeError, got ${err}`);
    assert.match(err.message, new RegExp(`loss is (NaN|-?Infinity) at step ${BAD}\\b`));
    assert.deepEqual(saved, [2, 4]);
    const ck = await loadCheckpoint(path);
    assert.equal(ck.step, 4);
    assert.ok(allFinite({ ...ck.params, ...ck.extra }), "the kept checkpoint is finite");
    // and it is exactly the state of an uninterrupted run after 4 steps
    const want = await straightRun(backend, 4);
    assertBitIdentical({ ...ck.params, ...ck.extra }, want, `${backend}: last good checkpoint`);
  });
}

Deno.test("training resumed from a checkpoint is bit-identical to an uninterrupted run (interpreter)", async () => {
  await resumeIsBitExact("interpreter");
});

Deno.test("a non-finite loss stops training at its step and keeps the last good checkpoint (interpreter)", async () => {
  await divergenceKeepsLastGoodCheckpoint("interpreter");
});

Deno.test({
  name: "training resumed from a checkpoint is bit-identical to an uninterrupted run (WebGPU)",
  ignore: !gpu,
  async fn() {
    await resumeIsBitExact("webgpu");
  },
});

Deno.test({
  name: "a non-finite loss stops training at its step and keeps the last good checkpoint (WebGPU)",
  ignore: !gpu,
  async fn() {
    await divergenceKeepsLastGoodCheckpoint("webgpu");
  },
});
