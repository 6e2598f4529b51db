/**
 * Every registered placement applied to one neutral model: its rules,
 * where each norm sits (read back from the placed graph), and its
 * parameter count and loss at init on the float64 interpreter.
 *
 * Run: `deno run examples/placements.ts [name ...]`
 *
 * @module
 */
import { array, interpret } from "../mod.ts";
import {
  buildModel,
  explainModel,
  initParams,
  type ModelConfig,
  placementByName,
  PLACEMENTS,
} from "../lib/nn/mod.ts";

const cfg: ModelConfig = {
  vocabSize: 32,
  dModel: 16,
  nLayers: 2,
  nHeads: 2,
  batch: 1,
  seqLen: 8,
  positions: "rope",
  mlp: "swiglu",
};
const ids = array([1, 2, 3, 4, 5, 6, 7, 8], [1, 8], "i32");
const targets = array([2, 3, 4, 5, 6, 7, 8, 9], [1, 8], "i32");

for (const name of Deno.args.length ? Deno.args : Object.keys(PLACEMENTS)) {
  const placement = placementByName(name);
  const model = buildModel(cfg, placement);
  const rules = placement.rules(model.config).rules.map((r) => r.name).join(", ");
  const params = initParams(model, 0);
  const n = Object.values(params).reduce((a, p) => a + p.data.length, 0);
  const [loss] = interpret([model.loss], { ...params, ids, targets });
  console.log(`== ${name}  (rules: ${rules})`);
  console.log(explainModel(model));
  console.log(`   ${n} parameters, loss at init ${loss!.data[0]!.toFixed(4)}\n`);
}
