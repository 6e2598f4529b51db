/**
 * End-to-end learning on WebGPU: a tiny Pre-LN transformer built by lib/nn (vocab 16, d 32,
 * 1 layer, 2 heads, B 16, T 16) trained with the compiled AdamW step (parameters and state on
 * the GPU) on the seeded order-2 Markov corpus of lib/data. Within a fixed number of steps its
 * held-out loss, evaluated by the float64 interpreter on the GPU-trained parameters, falls far
 * below the unigram entropy of the data, and below the entropy given only the previous token,
 * so the model uses its context (attention and positions), not just token frequencies.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";
import { compile } from "../kernels/mod.ts";
import { hasGpu } from "./_util.ts";

const gpu = await hasGpu();
const STEPS = 300;

Deno.test({
  name: "a tiny Pre-LN transformer trained on WebGPU learns the Markov corpus (far below unigram)",
  ignore: !gpu,
  async fn() {
    const V = 16;
    const chain = nx.markovChain({ vocab: V, order: 2, branching: 3, seed: 3 });
    const { train, val } = nx.splitTokens(nx.sampleMarkov(chain, 20_000, 1), 0.1);
    const unigram = nx.unigramEntropy(train, V);
    const previousOnly = nx.conditionalEntropy(train, V, 1);
    const cfg: nx.ModelConfig = {
      vocabSize: V,
      dModel: 32,
      nLayers: 1,
      nHeads: 2,
      batch: 16,
      seqLen: 16,
    };
    const model = nx.buildModel(cfg, "pre-ln");
    const step = nx.trainStepGraph(model.loss, undefined, nx.adamw({ lr: 1e-2 }), { clip: 1 });
    const spec = { batchSize: cfg.batch, seqLen: cfg.seqLen, seed: 2 };
    const batch = (t: number) => {
      const b = nx.trainBatch(train, spec, t);
      return { ids: b.inputs, targets: b.targets };
    };
    const init = nx.initParams(model, 0);
    using prog = await compile(step.outputList, { updates: step.updates });
    prog.setParams({ ...init, ...nx.initOptimizerState(step) });
    const log = await nx.trainLoop(prog, step, { steps: STEPS, batch, logEvery: 10 });

    // held-out loss of the GPU-trained parameters, on the float64 interpreter
    const trained = await prog.getParams(model.params.map((p) => p.name));
    const evalLoss = (params: Record<string, nx.NDArray>) => {
      const bs = nx.evalBatches(val, spec, 8);
      let s = 0;
      for (const b of bs) {
        s += nx.interpret([model.loss], { ...params, ids: b.inputs, targets: b.targets })[0]!
          .data[0]! / bs.length;
      }
      return s;
    };
    const before = evalLoss(init), after = evalLoss(trained);
    const lastTrain = log.slice(-3).reduce((a, l) => a + l.values.loss!, 0) / 3;
    const summary = `held-out loss ${before.toFixed(3)} → ${after.toFixed(3)}, last train losses ` +
      `${lastTrain.toFixed(3)}; unigram ${unigram.toFixed(3)}, given the previous token ` +
      `${previousOnly.toFixed(3)}, entropy rate ${nx.markovEntropyRate(chain).toFixed(3)}`;
    // the untrained model is at chance (ln V), so everything below is learned
    assert.ok(Math.abs(before - Math.log(V)) < 0.1, summary);
    assert.ok(after < unigram - 1, `not far below the unigram entropy: ${summary}`);
    assert.ok(lastTrain < unigram - 1, `training loss not far below unigram: ${summary}`);
    assert.ok(after < previousOnly - 0.2, `the model does not use its context: ${summary}`);
  },
});
