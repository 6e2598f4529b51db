/**
 * The main job: Pre-LN, Post-LN, HybridNorm and HybridNorm* built from one
 * config by placement rewrites, each trained on the same data and seed with
 * the whole step (forward, backward, AdamW) compiled to fused WGSL, then
 * compared side by side.
 *
 * Run: `deno run examples/hybridnorm.ts` (no permissions needed)
 *
 * Flags: --steps N --width D --depth L --heads H --seq T --batch B --lr X
 * --seed S --variants a,b,c --corpus markov|<text file> (needs --allow-read)
 * --report out.html|out.svg (needs --allow-write) --eval-every N
 * --backend webgpu|interpreter --help
 *
 * The default corpus is a seeded order-2 Markov language whose entropy rate
 * is known exactly, so the table shows each variant's gap to the optimum.
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as nx from "../mod.ts";
import { compile, type Program } from "../kernels/mod.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    steps: { type: "string", default: "300" },
    width: { type: "string", default: "64" },
    depth: { type: "string", default: "4" },
    heads: { type: "string", default: "4" },
    seq: { type: "string", default: "32" },
    batch: { type: "string", default: "8" },
    lr: { type: "string", default: "3e-3" },
    seed: { type: "string", default: "0" },
    variants: { type: "string", default: "pre-ln,post-ln,hybridnorm,hybridnorm-star" },
    corpus: { type: "string", default: "markov" },
    report: { type: "string" },
    "eval-every": { type: "string", default: "100" },
    backend: { type: "string", default: "webgpu" },
    help: { type: "boolean", default: false },
  },
});

if (flags.help) {
  console.log(
    "usage: deno run [--allow-read] [--allow-write] examples/hybridnorm.ts [--steps 300] [--width 64]\n" +
      "  [--depth 4] [--heads 4] [--seq 32] [--batch 8] [--lr 3e-3] [--seed 0]\n" +
      "  [--variants pre-ln,post-ln,hybridnorm,hybridnorm-star] [--corpus markov|FILE]\n" +
      "  [--report out.html] [--eval-every 100] [--backend webgpu|interpreter]\n" +
      `variants: ${Object.keys(nx.PLACEMENTS).join(", ")}`,
  );
  Deno.exit(0);
}

function intFlag(name: string, min: number): number {
  const v = Number((flags as Record<string, unknown>)[name]);
  if (!Number.isInteger(v) || v < min) {
    console.error(
      `--${name} must be an integer >= ${min}, got "${(flags as Record<string, unknown>)[name]}"`,
    );
    Deno.exit(2);
  }
  return v;
}

const steps = intFlag("steps", 1), width = intFlag("width", 2), depth = intFlag("depth", 1);
const heads = intFlag("heads", 1), seqLen = intFlag("seq", 2), batch = intFlag("batch", 1);
const seed = intFlag("seed", 0), evalEvery = intFlag("eval-every", 1);
const lr = Number(flags.lr);
const variants = flags.variants.split(",").map((s) => s.trim()).filter(Boolean);
const backend = flags.backend as "webgpu" | "interpreter";
if (!(lr > 0)) throw new RangeError(`--lr must be a positive number, got "${flags.lr}"`);
if (backend !== "webgpu" && backend !== "interpreter") {
  throw new RangeError(`--backend must be webgpu or interpreter, got "${backend}"`);
}
for (const v of variants) nx.placementByName(v); // fail fast on unknown names

// ---- data -----------------------------------------------------------------
let tokens: Int32Array, vocab: number, optimum: number | undefined, corpusName: string;
let unigram: number;
if (flags.corpus === "markov") {
  const chain = nx.markovChain({ vocab: 32, order: 2, branching: 4, seed: 1 });
  tokens = nx.sampleMarkov(chain, 400_000, seed + 1);
  vocab = 32;
  optimum = nx.markovOptimalLoss(chain, seqLen);
  unigram = nx.markovUnigramEntropy(chain);
  corpusName = `Markov order 2, V=32, entropy rate ${nx.markovEntropyRate(chain).toFixed(3)} nats`;
} else {
  tokens = await nx.readByteCorpus(flags.corpus);
  vocab = nx.BYTE_VOCAB_SIZE;
  unigram = nx.unigramEntropy(tokens, vocab);
  corpusName = `${flags.corpus} (${tokens.length} bytes)`;
}
const { train, val } = nx.splitTokens(tokens, 0.1);
const spec = { batchSize: batch, seqLen, seed };
const valBatches = nx.evalBatches(val, spec, 8);

const cfg: nx.ModelConfig = {
  vocabSize: vocab,
  dModel: width,
  nLayers: depth,
  nHeads: heads,
  batch,
  seqLen,
};

const log = nx.createTrainingLog({
  title: `normix: ${variants.join(" vs ")} (d=${width}, L=${depth}, T=${seqLen}, B=${batch})`,
  optimum,
  meta: { corpus: corpusName, steps, lr, seed, backend },
});

console.log(`corpus: ${corpusName}; unigram entropy ${unigram.toFixed(3)} nats`);
console.log(
  `model: d=${width} L=${depth} H=${heads} T=${seqLen} B=${batch}, ${steps} steps, AdamW lr ${lr}, ` +
    `warm-up + cosine, clip 1.0, backend ${backend}`,
);

interface Row {
  variant: string;
  train: number;
  val: number;
  tokS: number;
  kernels: number;
  spread: number;
  params: number;
  compileS: number;
  status: string;
}
const rows: Row[] = [];

async function compileFor(
  outputs: readonly nx.Expr[],
  updates?: Record<string, nx.Expr>,
): Promise<Program> {
  try {
    return await compile(outputs, { updates, backend });
  } catch (e) {
    // No GPU here: say what is missing and how to run anyway, not a stack trace.
    if (e instanceof Error && e.message.startsWith("Cannot create a WebGPU runtime")) {
      console.error(e.message);
      console.error(
        "To run without a GPU (float64 interpreter, much slower), use a small model, e.g.:\n" +
          "  deno run examples/hybridnorm.ts --backend interpreter --width 16 --depth 1 --seq 8 --steps 50",
      );
      Deno.exit(1);
    }
    throw e;
  }
}

for (const variant of variants) {
  const model = nx.buildModel(cfg, variant);
  const params = nx.initParams(model, seed);
  const schedule = nx.warmupCosine({
    peak: lr,
    warmup: Math.min(30, Math.floor(steps / 10)),
    total: Math.max(steps, 2),
    min: lr / 10,
  });
  const step0 = nx.trainStepGraph(
    model.loss,
    undefined,
    nx.adamw({ lr: schedule, weightDecay: 0.01 }),
    { clip: 1 },
  );
  const trained = nx.leavesOf([model.loss]).params.filter((p) =>
    step0.trainable.includes(p.arg.name)
  );
  const ratios = nx.updateRatios(trained, step0.updates);
  const step: nx.TrainStep = {
    ...step0,
    outputs: { ...step0.outputs, ...ratios },
    outputNames: [...step0.outputNames, ...Object.keys(ratios)],
    outputList: [...step0.outputList, ...Object.values(ratios)],
  };
  const diag = { ...nx.activationRms(model), ...nx.attentionEntropy(model.logits) };
  const t0 = performance.now();
  const prog = await compileFor(step.outputList, { ...step.updates });
  const evalProg = await compileFor([model.loss, ...Object.values(diag)]);
  prog.setParams({ ...params, ...nx.initOptimizerState(step) });
  const compileS = (performance.now() - t0) / 1000;

  const modelNames = model.params.map((p) => p.name);
  const evaluate = async (t: number): Promise<number> => {
    evalProg.setParams(await prog.getParams(modelNames));
    let loss = 0;
    let d: number[] = [];
    for (const b of valBatches) {
      const outs = await evalProg.run({ ids: b.inputs, targets: b.targets });
      loss += Number(outs[0]!.data[0]) / valBatches.length;
      const vals = outs.slice(1).map((o) => Number(o.data[0]));
      d = d.length
        ? d.map((x, i) => x + vals[i]! / valBatches.length)
        : vals.map((x) => x / valBatches.length);
    }
    nx.recordVal(log, variant, t, loss);
    const names = Object.keys(diag);
    const pick = (prefix: string) => names.flatMap((n, i) => (n.startsWith(prefix) ? [d[i]!] : []));
    nx.recordLayers(log, variant, "actRms", t, pick("actRms."));
    nx.recordLayers(log, variant, "attnEntropy", t, pick("attnEntropy."));
    return loss;
  };

  let lastVal = NaN, lastLoss = NaN, status = "ok";
  const tokensPerStep = batch * seqLen;
  let tStart = 0, tLast = 0, stepsTimed = 0;
  const spreads: number[] = [];
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  try {
    await nx.trainLoop(prog, step, {
      steps,
      logEvery: 10,
      batch: (t) => {
        if (t === 2) tStart = performance.now(); // step 1 includes lazy shader compilation
        const b = nx.trainBatch(train, spec, t);
        return { ids: b.inputs, targets: b.targets };
      },
      onLog: async (t, v) => {
        tLast = performance.now();
        stepsTimed = t - 1;
        const tokS = stepsTimed > 0 && tStart
          ? (stepsTimed * tokensPerStep) / ((tLast - tStart) / 1000)
          : 0;
        lastLoss = v.loss!;
        nx.recordTrain(log, variant, { step: t, loss: v.loss!, tokensPerSec: tokS, lr: v.lr });
        const gn = Object.keys(v).filter((k) => /^gradNorm\.blocks\.\d+$/.test(k)).map((k) =>
          v[k]!
        );
        const ur = Object.keys(v).filter((k) => /^updateRatio\.blocks\.\d+$/.test(k)).map((k) =>
          v[k]!
        );
        nx.recordLayers(log, variant, "gradNorm", t, gn);
        if (ur.length) nx.recordLayers(log, variant, "updateRatio", t, ur);
        if (gn.length > 1) spreads.push(Math.max(...gn) / Math.max(Math.min(...gn), 1e-30));
        if (t % evalEvery === 0 || t === steps) lastVal = await evaluate(t);
        const line = nx.formatProgress({
          step: t,
          total: steps,
          loss: v.loss,
          valLoss: Number.isNaN(lastVal) ? undefined : lastVal,
          tokensPerSec: tokS,
          elapsedSec: (performance.now() - t0) / 1000,
          label: variant.padEnd(16),
        });
        if (tty) await Deno.stderr.write(enc.encode(`\r${line}`));
        else if (t % 100 === 0 || t === steps) console.error(line);
      },
    });
  } catch (e) {
    if (!(e instanceof RangeError) || !String(e.message).includes("loss is")) throw e;
    status = `diverged: ${e.message.split(";")[0]}`;
  }
  if (tty) await Deno.stderr.write(enc.encode("\n"));
  const tokS = stepsTimed > 0 ? (stepsTimed * tokensPerStep) / ((tLast - tStart) / 1000) : 0;
  const tail = spreads.slice(-5);
  rows.push({
    variant,
    train: lastLoss,
    val: lastVal,
    tokS,
    kernels: prog.dispatchCount,
    spread: tail.length ? tail.reduce((a, b) => a + b) / tail.length : NaN,
    params: model.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0),
    compileS,
    status,
  });
  prog[Symbol.dispose]();
  evalProg[Symbol.dispose]();
}

// ---- table ----------------------------------------------------------------
const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const header = [
  "variant",
  "params",
  "train loss",
  "val loss",
  optimum !== undefined ? "gap to optimum" : "vs unigram",
  "tok/s",
  "kernels/step",
  "grad-norm spread",
  "compile s",
  "status",
];
const table = rows.map((r) => [
  r.variant,
  String(r.params),
  f(r.train),
  f(r.val),
  optimum !== undefined ? f(r.val - optimum) : f(r.val - unigram),
  f(r.tokS, 0),
  backend === "interpreter" ? "-" : String(r.kernels),
  Number.isFinite(r.spread) ? f(r.spread, 2) : "-",
  f(r.compileS, 1),
  r.status,
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const line = (cells: string[]) =>
  "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
console.log();
console.log(line(header));
console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
for (const row of table) console.log(line(row));
if (optimum !== undefined) {
  console.log(
    `\noptimum (the best achievable mean loss over a window: the chain's entropy, with less context at the first two positions): ${
      optimum.toFixed(3)
    } nats; unigram ${unigram.toFixed(3)}`,
  );
}
console.log(
  "grad-norm spread = max/min of per-block gradient norms, mean of the last 5 logged steps",
);

if (flags.report) {
  await nx.saveReport(flags.report, log);
  console.log(`report written to ${flags.report}`);
}
