/**
 * Gradients of whole models: for every registered normalisation placement,
 * a tiny transformer's loss gradient with respect to all trainable
 * parameters passes the inner-product check against central differences.
 *
 * @module
 */
import * as nx from "../mod.ts";
import { checkVjp } from "../lib/autodiff/mod.ts";
import { buildModel, initParams, PLACEMENTS } from "../lib/nn/mod.ts";
import { rng } from "./_util.ts";

const CFG = {
  vocabSize: 5,
  dModel: 4,
  nLayers: 2,
  nHeads: 2,
  dFf: 6,
  batch: 1,
  seqLen: 3,
  // larger weights than the σ = 0.02 default, so every path carries signal
  init: { std: 0.5 },
};

for (const name of Object.keys(PLACEMENTS)) {
  Deno.test(`model gradient (${name}): vjp matches central differences`, () => {
    const model = buildModel(CFG, name);
    const params = initParams(model, 3);
    const r = rng(name.length);
    const ids = Array.from({ length: 3 }, () => Math.floor(r() * 5));
    const tg = Array.from({ length: 3 }, () => Math.floor(r() * 5));
    const b = {
      ...params,
      ids: nx.array(ids, [1, 3], "i32"),
      targets: nx.array(tg, [1, 3], "i32"),
    };
    const trainable = new Set(model.params.filter((p) => p.trainable).map((p) => p.name));
    const leaves = nx.leavesOf([model.loss]).params.filter((p) => trainable.has(p.arg.name));
    for (const seed of [1, 2]) {
      const c = checkVjp(model.loss, leaves, b, { seed });
      const tol = 1e-7 + 1e-6 * c.scale;
      if (!(Math.abs(c.analytic - c.numeric) <= tol)) {
        throw new Error(`${name}: vjp ${c.analytic} vs central difference ${c.numeric} (> ${tol})`);
      }
    }
  });
}
