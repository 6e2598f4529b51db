/**
 * trainLoop over the interpreter backend: same values as stepping by hand,
 * logging only on logging steps, resuming, and stopping on a NaN loss.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import { sgd } from "../lib/optim/mod.ts";
import {
  initOptimizerState,
  interpretedStepProgram,
  runStepInterpreted,
  trainLoop,
  trainStepGraph,
} from "../lib/train/mod.ts";

function problem() {
  const x = nx.input("x", [4, 2]), w = nx.param("w", [2, 1]);
  const loss = nx.mean(nx.square(nx.sub(nx.matmul(x, w), 1)));
  const step = trainStepGraph(loss, undefined, sgd({ lr: 0.1, momentum: 0.5 }));
  const values = { w: nx.array([0.5, -0.5], [2, 1]), ...initOptimizerState(step) };
  const batch = (t: number) => ({
    x: nx.array([1, t, 2, 1, 0, 1, 1, 1].map((v) => v / t), [4, 2]),
  });
  return { step, values, batch };
}

Deno.test("trainLoop on the interpreter equals stepping by hand and logs every k steps", async () => {
  const { step, values, batch } = problem();
  const prog = interpretedStepProgram(step, values);
  const seen: number[] = [];
  const log = await trainLoop(prog, step, {
    steps: 7,
    batch,
    logEvery: 3,
    onLog: (t) => void seen.push(t),
  });
  assert.deepEqual(seen, [3, 6, 7]);
  assert.deepEqual(log.map((l) => l.step), [3, 6, 7]);
  assert.deepEqual(Object.keys(log[0]!.values), ["loss", "gradNorm", "lr", "gradNorm.other"]);
  let v: Record<string, nx.NDArray> = values;
  let loss7 = NaN;
  for (let t = 1; t <= 7; t++) {
    const r = runStepInterpreted(step, v, batch(t), t);
    v = r.values;
    loss7 = r.scalars.loss!;
  }
  assert.deepEqual([...prog.values().w!.data], [...v.w!.data]);
  assert.equal(log[2]!.values.loss, loss7);
  // resume: two more steps from step 8
  const more = await trainLoop(prog, step, { steps: 2, start: 8, batch, read: ["lr"] });
  assert.deepEqual(more.map((l) => [l.step, Object.keys(l.values)]), [[8, ["lr"]], [9, ["lr"]]]);
});

Deno.test("trainLoop stops with a clear error when the loss is not finite", async () => {
  const { step, values } = problem();
  const prog = interpretedStepProgram(step, values);
  await assert.rejects(
    () => trainLoop(prog, step, { steps: 3, batch: () => ({ x: nx.array(NaN, [4, 2]) }) }),
    /the loss is NaN at step 1/,
  );
  await assert.rejects(
    () => trainLoop(prog, step, { steps: 1, batch: () => ({}), read: ["nope"] }),
    /Cannot read output "nope"/,
  );
});
