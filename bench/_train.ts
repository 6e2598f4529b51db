/**
 * The training step of the main example (`examples/hybridnorm.ts` defaults), shared by
 * `train_bench.ts` and `kernel_profile.ts`: vocab 32, d_model 64, 4 layers, 4 heads, FFN 256,
 * batch 8, seq 32, learned positions, GELU (tanh), Pre-LN, AdamW (lr 3e-3, β 0.9/0.999,
 * ε 1e-8, weight decay 0.01 on matrices), global-norm clipping at 1.0, on the seeded order-2
 * Markov corpus. The same model and step are written in TensorFlow.js and jax-js so all three
 * train from the same parameters on the same batches.
 *
 * @module
 */
import * as nx from "../mod.ts";
import type { Jax, Tf } from "./_peers.ts";

/** The example's default model (Pre-LN). */
export const TRAIN_CFG: nx.ModelConfig = Object.freeze({
  vocabSize: 32,
  dModel: 64,
  nLayers: 4,
  nHeads: 4,
  dFf: 256,
  batch: 8,
  seqLen: 32,
});

/** AdamW settings of the step (`adamw({ lr: 3e-3 })` defaults spelled out for the peers). */
export const ADAMW = Object.freeze({
  lr: 3e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  clip: 1,
});

/** The normix side of the benchmark: model, step graph, initial values, batches. */
export interface TrainSetup {
  /** the built Pre-LN model */
  readonly model: nx.Model;
  /** `trainStepGraph(model.loss, undefined, adamw({ lr: 3e-3 }), { clip: 1 })` */
  readonly step: nx.TrainStep;
  /** initial parameters (`initParams(model, 0)`) */
  readonly params: Record<string, nx.NDArray>;
  /** initial optimizer state (zeros) */
  readonly state: Record<string, nx.NDArray>;
  /** the batch of step t (1-based): `ids`, `targets` `[B, T]` i32 */
  readonly batch: (t: number) => { ids: nx.NDArray<"i32">; targets: nx.NDArray<"i32"> };
  /** tokens per step (B·T) */
  readonly tokensPerStep: number;
}

/**
 * Builds the example's Pre-LN model, its train step and its data.
 *
 * @returns the setup
 */
export function trainSetup(): TrainSetup {
  const model = nx.buildModel(TRAIN_CFG, "pre-ln");
  const step = nx.trainStepGraph(model.loss, undefined, nx.adamw({ lr: ADAMW.lr }), {
    clip: ADAMW.clip,
  });
  const chain = nx.markovChain({ vocab: 32, order: 2, branching: 4, seed: 1 });
  const { train } = nx.splitTokens(nx.sampleMarkov(chain, 50_000, 1), 0.1);
  const spec = { batchSize: TRAIN_CFG.batch, seqLen: TRAIN_CFG.seqLen, seed: 0 };
  return {
    model,
    step,
    params: nx.initParams(model, 0),
    state: nx.initOptimizerState(step),
    batch: (t) => {
      const b = nx.trainBatch(train, spec, t);
      return { ids: b.inputs, targets: b.targets };
    },
    tokensPerStep: TRAIN_CFG.batch * TRAIN_CFG.seqLen,
  };
}

const L = TRAIN_CFG.nLayers, V = TRAIN_CFG.vocabSize, Dm = TRAIN_CFG.dModel;
const NH = TRAIN_CFG.nHeads, DHd = Dm / NH, Bt = TRAIN_CFG.batch, Tt = TRAIN_CFG.seqLen;
const LN_EPS = 1e-5;

/** Whether AdamW decays a parameter (normix's default: rank ≥ 2). */
function decays(shape: readonly number[]): boolean {
  return shape.length >= 2;
}

/** A peer's train step. */
export interface PeerTrainer {
  /**
   * Runs step `t` (1-based). With `read`, waits until the GPU has finished every queued step and
   * returns the loss; otherwise only queues the work (like normix's `run` with `read: []`).
   */
  step(t: number, read: boolean): Promise<number | undefined>;
  /** the current parameters, by normix name */
  params(): Promise<Record<string, Float32Array>>;
}

/**
 * The same model and step in TensorFlow.js: forward and `tf.variableGrads`, global-norm
 * clipping, and AdamW written out with the same formulas as normix (`tf.train.adam` has no
 * decoupled weight decay).
 *
 * @param tf the library (WebGPU backend)
 * @param setup the normix setup (initial values and batches)
 * @returns the trainer
 */
export function tfTrainer(tf: Tf, setup: TrainSetup): PeerTrainer {
  const names = Object.keys(setup.params).sort();
  const P: Record<string, Tf> = {}, M: Record<string, Tf> = {}, Vv: Record<string, Tf> = {};
  for (const n of names) {
    const a = setup.params[n]!;
    P[n] = tf.variable(tf.tensor(Float32Array.from(a.data as ArrayLike<number>), a.shape), true, n);
    M[n] = tf.variable(tf.zeros(a.shape), false);
    Vv[n] = tf.variable(tf.zeros(a.shape), false);
  }
  const mask = tf.tidy(() => tf.sub(1, tf.linalg.bandPart(tf.ones([Tt, Tt]), -1, 0)).mul(-1e9));
  const forward = (ids: Tf, targets: Tf): Tf => {
    const ln = (v: Tf, site: string) => {
      const { mean, variance } = tf.moments(v, -1, true);
      return v.sub(mean).mul(tf.rsqrt(variance.add(LN_EPS))).mul(P[`${site}.weight`]).add(
        P[`${site}.bias`],
      );
    };
    const lin = (v: Tf, p: string, bias = true) => {
      const y = tf.matMul(v, P[`${p}.weight`]);
      return bias ? y.add(P[`${p}.bias`]) : y;
    };
    const heads = (v: Tf) => v.reshape([Bt, Tt, NH, DHd]).transpose([0, 2, 1, 3]);
    let h = tf.gather(P["tok_emb.weight"], ids.reshape([-1])).add(
      P["pos_emb.weight"].tile([Bt, 1]),
    ); // [B·T, D]
    for (let i = 0; i < L; i++) {
      const p = `blocks.${i}`;
      const a = ln(h, `${p}.ln_1`);
      const q = heads(lin(a, `${p}.attn.q`)), k = heads(lin(a, `${p}.attn.k`));
      const v = heads(lin(a, `${p}.attn.v`));
      const s = tf.matMul(q, k, false, true).mul(1 / Math.sqrt(DHd)).add(mask);
      const o = tf.matMul(tf.softmax(s, -1), v).transpose([0, 2, 1, 3]).reshape([Bt * Tt, Dm]);
      h = h.add(lin(o, `${p}.attn.o`));
      const u = lin(ln(h, `${p}.ln_2`), `${p}.mlp.fc1`);
      const g = u.mul(0.5).mul(
        tf.tanh(u.add(u.mul(u).mul(u).mul(0.044715)).mul(Math.sqrt(2 / Math.PI))).add(1),
      );
      h = h.add(lin(g, `${p}.mlp.fc2`));
    }
    const logits = lin(ln(h, "ln_f"), "unembed", false);
    const lp = tf.logSoftmax(logits, -1);
    return tf.neg(tf.mean(tf.sum(lp.mul(tf.oneHot(targets.reshape([-1]), V)), -1)));
  };
  let lastLoss: Tf | undefined;
  return {
    async step(t, read) {
      const b = setup.batch(t);
      tf.tidy(() => {
        const ids = tf.tensor(b.ids.data, b.ids.shape, "int32");
        const targets = tf.tensor(b.targets.data, b.targets.shape, "int32");
        const { value, grads } = tf.variableGrads(
          () => forward(ids, targets),
          names.map((n) => P[n]),
        );
        // (tf.addN of 69 tensors gave a wrong sum on llvmpipe's 8-buffer limit: chain adds)
        const sq = names.map((n) => tf.sum(tf.square(grads[n]))).reduce((a: Tf, b: Tf) => a.add(b));
        const scale = tf.minimum(tf.div(ADAMW.clip, tf.sqrt(sq).add(1e-6)), 1);
        const { lr, beta1: b1, beta2: b2, eps, weightDecay: wd } = ADAMW;
        const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
        const alpha = lr * Math.sqrt(bc2) / bc1, epsHat = eps * Math.sqrt(bc2);
        for (const n of names) {
          const g = grads[n].mul(scale);
          const m = M[n].mul(b1).add(g.mul(1 - b1));
          const v = Vv[n].mul(b2).add(g.mul(g).mul(1 - b2));
          const keep = decays(P[n].shape) ? P[n].mul(1 - lr * wd) : P[n];
          P[n].assign(keep.sub(m.div(tf.sqrt(v).add(epsHat)).mul(alpha)));
          M[n].assign(m);
          Vv[n].assign(v);
        }
        lastLoss?.dispose();
        lastLoss = tf.keep(value);
      });
      if (!read) return undefined;
      // reading one value flushes tfjs's queue; waiting for the device covers all updates
      const loss = (await lastLoss!.data())[0];
      await (tf.backend() as { device?: GPUDevice }).device?.queue.onSubmittedWorkDone();
      return loss;
    },
    async params() {
      const out: Record<string, Float32Array> = {};
      for (const n of names) out[n] = (await P[n].data()) as Float32Array;
      return out;
    },
  };
}

/**
 * The same model and step in jax-js: `valueAndGrad` of the loss, clipping and AdamW in one
 * `jit`-compiled function of (params, m, v, step, ids, targets).
 *
 * @param jax the library (WebGPU device)
 * @param setup the normix setup (initial values and batches)
 * @returns the trainer
 */
export function jaxTrainer(jax: Jax, setup: TrainSetup): PeerTrainer {
  const np = jax.numpy, nn = jax.nn;
  const names = Object.keys(setup.params).sort();
  const shapes = Object.fromEntries(names.map((n) => [n, setup.params[n]!.shape]));
  let P: Record<string, Jax> = Object.fromEntries(names.map((n) => {
    const a = setup.params[n]!;
    return [n, np.array(Float32Array.from(a.data as ArrayLike<number>)).reshape(a.shape)];
  }));
  let M: Record<string, Jax> = Object.fromEntries(names.map((n) => [n, np.zeros(shapes[n])]));
  let Vs: Record<string, Jax> = Object.fromEntries(names.map((n) => [n, np.zeros(shapes[n])]));

  // ownership: every argument is consumed once; `.ref` keeps a value for another use
  const lossFn = (p: Record<string, Jax>, ids: Jax, targets: Jax): Jax => {
    const ln = (v: Jax, site: string) =>
      nn.standardize(v, -1, { epsilon: LN_EPS }).mul(p[`${site}.weight`]).add(p[`${site}.bias`]);
    const lin = (v: Jax, pre: string, bias = true) => {
      const y = np.matmul(v, p[`${pre}.weight`]);
      return bias ? y.add(p[`${pre}.bias`]) : y;
    };
    // the embedding as a one-hot product (a gather's gradient in jax-js is a scatter)
    let h = np.matmul(nn.oneHot(ids, V), p["tok_emb.weight"]).add(p["pos_emb.weight"]);
    for (let i = 0; i < L; i++) {
      const pre = `blocks.${i}`;
      const a = ln(h.ref, `${pre}.ln_1`);
      const q = lin(a.ref, `${pre}.attn.q`).reshape([Bt, Tt, NH, DHd]);
      const k = lin(a.ref, `${pre}.attn.k`).reshape([Bt, Tt, NH, DHd]);
      const v = lin(a, `${pre}.attn.v`).reshape([Bt, Tt, NH, DHd]);
      const o = nn.dotProductAttention(q, k, v, { isCausal: true }).reshape([Bt, Tt, Dm]);
      h = h.add(lin(o, `${pre}.attn.o`));
      const f = nn.gelu(lin(ln(h.ref, `${pre}.ln_2`), `${pre}.mlp.fc1`));
      h = h.add(lin(f, `${pre}.mlp.fc2`));
    }
    const lp = nn.logSoftmax(lin(ln(h, "ln_f"), "unembed", false), -1);
    return np.negative(np.mean(np.sum(lp.mul(nn.oneHot(targets, V)), -1)));
  };
  const vg = jax.valueAndGrad(lossFn);
  const update = jax.jit(
    (
      p: Record<string, Jax>,
      m: Record<string, Jax>,
      v: Record<string, Jax>,
      alpha: Jax, // lr·√(1−β₂ᵗ)/(1−β₁ᵗ) of this step
      epsHat: Jax, // ε·√(1−β₂ᵗ)
      ids: Jax,
      targets: Jax,
    ) => {
      const [loss, g] = vg(jax.tree.ref(p), ids, targets);
      let sq = np.sum(np.square(g[names[0]!].ref));
      for (const n of names.slice(1)) sq = sq.add(np.sum(np.square(g[n].ref)));
      const scale = np.minimum(np.divide(ADAMW.clip, np.sqrt(sq).add(1e-6)), 1);
      const { lr, beta1: b1, beta2: b2, weightDecay: wd } = ADAMW;
      const P2: Record<string, Jax> = {},
        M2: Record<string, Jax> = {},
        V2: Record<string, Jax> = {};
      for (const n of names) {
        const gn = g[n].mul(scale.ref);
        const mn = m[n].mul(b1).add(gn.ref.mul(1 - b1));
        const vn = v[n].mul(b2).add(gn.ref.mul(gn).mul(1 - b2));
        const keep = decays(shapes[n]!) ? p[n].mul(1 - lr * wd) : p[n];
        P2[n] = keep.sub(mn.ref.div(np.sqrt(vn.ref).add(epsHat.ref)).mul(alpha.ref));
        M2[n] = mn;
        V2[n] = vn;
      }
      scale.dispose();
      alpha.dispose();
      epsHat.dispose();
      return [loss, P2, M2, V2];
    },
  );
  return {
    async step(t, read) {
      const b = setup.batch(t);
      const ids = np.array(b.ids.data, { dtype: np.int32 }).reshape(b.ids.shape);
      const targets = np.array(b.targets.data, { dtype: np.int32 }).reshape(b.targets.shape);
      const { beta1: b1, beta2: b2, eps, lr } = ADAMW;
      const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
      const alpha = np.array(lr * Math.sqrt(bc2) / bc1);
      const epsHat = np.array(eps * Math.sqrt(bc2));
      const [loss, P2, M2, V2] = update(P, M, Vs, alpha, epsHat, ids, targets);
      P = P2;
      M = M2;
      Vs = V2;
      if (!read) {
        loss.dispose();
        return undefined;
      }
      await jax.blockUntilReady([loss, P, M, Vs]);
      return (await loss.data())[0];
    },
    async params() {
      const out: Record<string, Float32Array> = {};
      for (const n of names) out[n] = (await P[n].ref.data()) as Float32Array;
      return out;
    },
  };
}
