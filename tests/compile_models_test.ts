/**
 * Whole models through the compiler: the forward loss and logits of every
 * registered normalisation placement compile (fused) and match the float64
 * interpreter. All placements share one program (params renamed per
 * placement), so the test pays for one compile and one submit.
 *
 * @module
 */
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import { buildModel, initParams, PLACEMENTS } from "../lib/nn/mod.ts";
import { compile, createRuntime } from "../kernels/mod.ts";
import { assertClose, hasGpu, randn } from "./_util.ts";

const gpu = await hasGpu();
const CFG = {
  vocabSize: 16,
  dModel: 16,
  nLayers: 2,
  nHeads: 2,
  batch: 2,
  seqLen: 8,
  positions: "learned",
} as const;

/** The model's loss and logits with params renamed `<prefix><name>`, and their values. */
function renamed(placement: string, seed: number) {
  const model = buildModel(CFG, placement);
  const init = initParams(model, seed);
  const subs = new Map<nx.Expr, nx.Expr>();
  const params: Record<string, nx.NDArray> = {};
  const { params: leaves } = nx.leavesOf([model.loss, model.logits]);
  leaves.forEach((p, i) => {
    const name = `${placement}/${p.arg.name}`;
    subs.set(p, nx.param(name, p.shape));
    // weights far larger than the init's σ = 0.02, so every layer shapes the loss
    // (FakeLN's σ̄ must stay positive: it keeps its init)
    const n = p.shape.reduce((a, b) => a * b, 1);
    params[name] = p.arg.name.endsWith(".sigma")
      ? init[p.arg.name]!
      : nx.array(Float32Array.from(randn(n, seed * 1000 + i), (v) => 0.4 * v), p.shape);
  });
  const [loss, logits] = nx.substitute([model.loss, model.logits], subs);
  return { outputs: [loss!, logits!], params };
}

Deno.test({
  name: "compile() runs the forward loss of every registered placement like the interpreter",
  ignore: !gpu,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const names = Object.keys(PLACEMENTS);
    const built = names.map((p, i) => renamed(p, i + 1));
    const params = Object.assign({}, ...built.map((b) => b.params));
    const ids = nx.array(
      Int32Array.from({ length: CFG.batch * CFG.seqLen }, (_, i) => (i * 7 + 3) % CFG.vocabSize),
      [CFG.batch, CFG.seqLen],
      "i32",
    );
    const targets = nx.array(
      Int32Array.from({ length: CFG.batch * CFG.seqLen }, (_, i) => (i * 5 + 1) % CFG.vocabSize),
      [CFG.batch, CFG.seqLen],
      "i32",
    );
    const rt = await createRuntime();
    try {
      const prog = await compile(built.flatMap((b) => b.outputs), { runtime: rt });
      prog.setParams(params);
      const got = await prog.run({ ids, targets });
      built.forEach((b, i) => {
        const want = interpret(b.outputs, { ...b.params, ids, targets });
        const tol = { atol: 2e-4, rtol: 2e-4 };
        assertClose(got[2 * i]!.data, want[0]!.data, tol, `${names[i]} loss`);
        assertClose(got[2 * i + 1]!.data, want[1]!.data, tol, `${names[i]} logits`);
      });
      prog[Symbol.dispose]();
    } finally {
      rt.destroy();
    }
  },
});
