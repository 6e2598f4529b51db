/**
 * Whole models through the compiler: the forward loss and logits of every
 * registered normalisation placement, and whole AdamW train steps (forward,
 * backward, clipping, update; the graphs most planner merges fire on), compile
 * and match the float64 interpreter. Models share one program each (params
 * renamed per placement), so the tests pay for few compiles and submits.
 *
 * @module
 */
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import { buildModel, initParams, PLACEMENTS } from "../lib/nn/mod.ts";
import { adamw } from "../lib/optim/mod.ts";
import { initOptimizerState, runStepInterpreted, trainStepGraph } from "../lib/train/mod.ts";
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

Deno.test({
  name: "compiled AdamW train steps of three placements match runStepInterpreted over 2 steps",
  ignore: !gpu,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const names = ["pre-ln", "post-ln", "hybridnorm-star"];
    const cfg = { ...CFG, nLayers: 1 };
    const all: nx.Expr[] = [];
    const updates: Record<string, nx.Expr> = {};
    const start: Record<string, nx.NDArray> = {};
    const steps = names.map((pl, i) => {
      const model = buildModel(cfg, pl);
      const step = trainStepGraph(model.loss, undefined, adamw({ lr: 0.02 }), { clip: 0.5 });
      const values = { ...initParams(model, i + 1), ...initOptimizerState(step) };
      const upNames = Object.keys(step.updates).sort();
      const { params } = nx.leavesOf([...step.outputList, ...upNames.map((n) => step.updates[n]!)]);
      const subs = new Map<nx.Expr, nx.Expr>(
        params.map((p) => [p, nx.param(`${pl}/${p.arg.name}`, p.shape)]),
      );
      const roots = nx.substitute(
        [...step.outputList, ...upNames.map((n) => step.updates[n]!)],
        subs,
      );
      all.push(...roots.slice(0, step.outputList.length));
      upNames.forEach((n, j) => (updates[`${pl}/${n}`] = roots[step.outputList.length + j]!));
      for (const [n, v] of Object.entries(values)) start[`${pl}/${n}`] = v;
      return { step, values };
    });
    const batch = (t: number) => ({
      ids: nx.array(
        Int32Array.from({ length: 16 }, (_, i) => (i * 7 + 3 * t) % CFG.vocabSize),
        [2, 8],
        "i32",
      ),
      targets: nx.array(
        Int32Array.from({ length: 16 }, (_, i) => (i * 5 + t) % CFG.vocabSize),
        [2, 8],
        "i32",
      ),
      "opt.step": nx.array([t], []),
    });
    const rt = await createRuntime();
    try {
      const prog = await compile(all, { runtime: rt, updates });
      prog.setParams(start);
      for (let t = 1; t <= 2; t++) {
        const got = await prog.run(batch(t));
        let o = 0;
        for (const [i, s] of steps.entries()) {
          const { ids, targets } = batch(t);
          const r = runStepInterpreted(s.step, s.values, { ids, targets }, t);
          s.values = r.values;
          for (const n of s.step.outputNames) {
            const want = r.outputs[n]!.data;
            assertClose(got[o++]!.data, want, { atol: 1e-4, rtol: 1e-4 }, `${names[i]} ${n} @${t}`);
          }
        }
      }
      const onGpu = await prog.getParams();
      for (const [i, s] of steps.entries()) {
        for (const [n, v] of Object.entries(s.values)) {
          // the key bias cannot change attention (softmax is shift invariant): its gradient is
          // rounding noise, which AdamW normalises to steps of size lr in either precision
          if (n.includes("attn.k.bias")) continue;
          // AdamW divides by √v̂: relative gradient errors pass through, so compare per element
          const a = onGpu[`${names[i]}/${n}`]!.data, e = v.data;
          for (let j = 0; j < e.length; j++) {
            const tol = 2e-5 * Math.abs(e[j]!) + (n.startsWith("opt.v.") ? 1e-9 : 2e-5);
            if (!(Math.abs(a[j]! - e[j]!) <= tol)) {
              throw new Error(`${names[i]} ${n}[${j}]: got ${a[j]}, expected ${e[j]}`);
            }
          }
        }
      }
      prog[Symbol.dispose]();
    } finally {
      rt.destroy();
    }
  },
});
