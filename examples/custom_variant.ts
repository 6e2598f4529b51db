/**
 * A placement none of the papers has, in a few lines: Peri-LN (a norm on
 * each sublayer's input and output) with LayerNorm Scaling's 1/√l on the
 * input norm, RMSNorm throughout. Built on the same neutral model as every
 * other placement, explained, and run on the float64 interpreter.
 *
 * Run: `deno run examples/custom_variant.ts`
 *
 * @module
 */
import { add, array, interpret, mul } from "../mod.ts";
import { buildModel, definePlacement, explainModel, initParams } from "../lib/nn/mod.ts";

// x⁺ = x + N_out(f(N_in(x)/√l)) for both sublayers, final norm ln_f
const periLns = definePlacement("peri-lns", { norm: { kind: "rms" } }, (k) => [
  k.sublayer((x, f, s) =>
    add(x, k.norm(f(mul(k.norm(x, s.inNorm), 1 / Math.sqrt(s.l))), s.outNorm))
  ),
  k.slot("final", (x) => k.norm(x, "ln_f")),
]);

const cfg = { vocabSize: 32, dModel: 16, nLayers: 3, nHeads: 2, batch: 1, seqLen: 6 } as const;
const model = buildModel({ ...cfg, positions: "rope", init: { std: 0.3 } }, periLns);
console.log(explainModel(model));
const ids = array([3, 1, 4, 1, 5, 9], [1, 6], "i32");
const [logits, loss] = interpret([model.logits, model.loss], {
  ...initParams(model, 0),
  ids,
  targets: array([1, 4, 1, 5, 9, 2], [1, 6], "i32"),
});
const row = Array.from(logits!.data.subarray(0, 6), (v) => v.toFixed(4)).join(" ");
console.log(`logits[0, 0, :6] = ${row}`);
console.log(`loss = ${loss!.data[0]!.toFixed(4)} (ln 32 = ${Math.log(32).toFixed(4)})`);
