/**
 * Forward of one Pre-LN transformer block (batch 4, seq 128, d_model 256, 4 heads, FFN 1024,
 * GELU (tanh), causal attention) on the same adapter in one run:
 * normix fused, normix `fusion: false` (one kernel per primitive op), TensorFlow.js WebGPU and
 * jax-js WebGPU (jit).
 *
 * All four compute the same function from the same parameters; at load time their outputs are
 * compared (max |difference| printed) and the dispatches of one forward are counted by wrapping
 * `GPUComputePassEncoder.prototype.dispatchWorkgroups`. Each measurement runs `reps` forwards
 * and reads the last output back.
 *
 * Run: `deno task bench`; `bench/table.ts` turns a JSON run into a ratio table.
 *
 * @module
 */
import * as nx from "../lib/ir/mod.ts";
import { compile, getRuntime, type Program } from "../kernels/mod.ts";
import { type Jax, loadJax, loadTf, randomData, reportBackends, type Tf } from "./_peers.ts";

const B = 4, T = 128, D = 256, H = 4, DH = D / H, F = 1024, EPS = 1e-5;
/** forwards per measurement */
const REPS = 2;

/** Parameters shared by every participant: name → [shape, data]. */
const PARAMS: Record<string, [number[], Float32Array]> = {};
{
  let seed = 10;
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = randomData(n, seed++);
    for (let i = 0; i < n; i++) d[i] = offset + scale * d[i]!;
    PARAMS[name] = [shape, d];
  };
  for (const ln of ["ln1", "ln2"]) {
    add(`${ln}.g`, [D], 0.1, 1);
    add(`${ln}.b`, [D], 0.1);
  }
  for (const w of ["wq", "wk", "wv", "wo"]) {
    add(`${w}.w`, [D, D], Math.sqrt(3 / D));
    add(`${w}.b`, [D], 0.02);
  }
  add("fc1.w", [D, F], Math.sqrt(3 / D));
  add("fc1.b", [F], 0.02);
  add("fc2.w", [F, D], Math.sqrt(3 / F));
  add("fc2.b", [D], 0.02);
}
const X = randomData(B * T * D, 99);

// ---------------------------------------------------------------------------
// normix: built with the lib/ir builders

function normixBlock(): nx.Expr<"f32"> {
  const p = (name: string) => nx.param(name, PARAMS[name]![0]);
  const x = nx.input("x", [B, T, D]);
  const ln = (v: nx.Expr<"f32">, name: string) =>
    nx.add(nx.mul(nx.layerNorm(v, { eps: EPS }), p(`${name}.g`)), p(`${name}.b`));
  const lin = (v: nx.Expr<"f32">, name: string) =>
    nx.add(nx.matmul(v, p(`${name}.w`)), p(`${name}.b`));
  const heads = (v: nx.Expr<"f32">) => nx.permute(nx.reshape(v, [B, T, H, DH]), [0, 2, 1, 3]);
  const h = ln(x, "ln1");
  const att = nx.attention(heads(lin(h, "wq")), heads(lin(h, "wk")), heads(lin(h, "wv")), {
    causal: true,
  });
  const merged = nx.reshape(nx.permute(att, [0, 2, 1, 3]), [B, T, D]);
  const x1 = nx.add(x, lin(merged, "wo"));
  const f = nx.gelu(lin(ln(x1, "ln2"), "fc1"));
  return nx.add(x1, lin(f, "fc2"));
}

// ---------------------------------------------------------------------------
// TensorFlow.js

function tfBlock(tf: Tf, x: Tf, P: Record<string, Tf>, mask: Tf): Tf {
  return tf.tidy(() => {
    const ln = (v: Tf, name: string) => {
      const { mean, variance } = tf.moments(v, -1, true);
      return v.sub(mean).mul(tf.rsqrt(variance.add(EPS))).mul(P[`${name}.g`]).add(P[`${name}.b`]);
    };
    const lin = (v: Tf, name: string) =>
      tf.matMul(v.reshape([-1, v.shape[v.shape.length - 1]]), P[`${name}.w`]).add(P[`${name}.b`]);
    const heads = (v: Tf) => v.reshape([B, T, H, DH]).transpose([0, 2, 1, 3]);
    const h = ln(x, "ln1");
    const q = heads(lin(h, "wq")), k = heads(lin(h, "wk")), v = heads(lin(h, "wv"));
    const s = tf.matMul(q, k, false, true).mul(1 / Math.sqrt(DH)).add(mask);
    const a = tf.matMul(tf.softmax(s, -1), v).transpose([0, 2, 1, 3]).reshape([B * T, D]);
    const x1 = x.reshape([B * T, D]).add(lin(a, "wo"));
    const u = lin(ln(x1, "ln2"), "fc1");
    const g = u.mul(0.5).mul(
      tf.tanh(u.add(u.mul(u).mul(u).mul(0.044715)).mul(Math.sqrt(2 / Math.PI))).add(1),
    );
    return x1.add(lin(g, "fc2")).reshape([B, T, D]);
  });
}

// ---------------------------------------------------------------------------
// jax-js (ownership: every argument is consumed, `.ref` keeps a value for another use)

function jaxBlock(jax: Jax): (x: Jax, P: Record<string, Jax>) => Jax {
  const np = jax.numpy, nn = jax.nn;
  return jax.jit((x: Jax, P: Record<string, Jax>) => {
    const ln = (v: Jax, name: string) =>
      nn.standardize(v, -1, { epsilon: EPS }).mul(P[`${name}.g`]).add(P[`${name}.b`]);
    const lin = (v: Jax, name: string) => np.matmul(v, P[`${name}.w`]).add(P[`${name}.b`]);
    const h = ln(x.ref, "ln1");
    const q = lin(h.ref, "wq").reshape([B, T, H, DH]);
    const k = lin(h.ref, "wk").reshape([B, T, H, DH]);
    const v = lin(h, "wv").reshape([B, T, H, DH]);
    const a = nn.dotProductAttention(q, k, v, { isCausal: true }).reshape([B, T, D]);
    const x1 = x.add(lin(a, "wo"));
    const f = nn.gelu(lin(ln(x1.ref, "ln2"), "fc1"));
    return x1.add(lin(f, "fc2"));
  });
}

// ---------------------------------------------------------------------------
// setup, cross-check and dispatch counts

/** Counts compute dispatches issued while `f` runs (all libraries share the prototype). */
async function countDispatches(f: () => Promise<unknown>): Promise<number> {
  const proto = GPUComputePassEncoder.prototype;
  const orig = proto.dispatchWorkgroups;
  let n = 0;
  proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...args) {
    n++;
    return orig.apply(this, args);
  };
  try {
    await f();
  } finally {
    proto.dispatchWorkgroups = orig;
  }
  return n;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const gpuOk = (await navigator.gpu?.requestAdapter()) != null;
const tfPeer = await loadTf();
const jaxPeer = await loadJax();

interface Participant {
  name: string;
  /** runs `reps` forwards and reads the last output back */
  run: (reps: number) => Promise<ArrayLike<number>>;
  dispatches: number;
}
const participants: Participant[] = [];
const errors: Record<string, string> = {};

if (gpuOk) {
  const rt = await getRuntime();
  const out = normixBlock();
  const params = Object.fromEntries(
    Object.entries(PARAMS).map(([k, [s, d]]) => [k, nx.array(d, s)]),
  );
  const xArr = nx.array(X, [B, T, D]);
  for (const [name, fusion] of [["normix fused", true], ["normix fusion:false", false]] as const) {
    try {
      const prog: Program = await compile([out], { fusion });
      prog.setParams(params);
      const run = async (reps: number) => {
        const runs: Promise<nx.NDArray[]>[] = [];
        for (let r = 0; r < reps; r++) {
          runs.push(prog.run({ x: xArr }, { read: r === reps - 1 ? [0] : [] }));
        }
        const res = await Promise.all(runs);
        return res[reps - 1]![0]!.data as ArrayLike<number>;
      };
      await run(1); // warm-up: llvmpipe compiles every pipeline at its first dispatch
      participants.push({ name, run, dispatches: prog.dispatchCount });
    } catch (e) {
      errors[name] = `FAILED: ${e instanceof Error ? e.message : e}`;
    }
  }
  errors["normix adapter"] = rt.description;
}

if (tfPeer.ok) {
  try {
    const tf = tfPeer.lib;
    const P = Object.fromEntries(
      Object.entries(PARAMS).map(([k, [s, d]]) => [k, tf.tensor(d, s)]),
    );
    const x = tf.tensor(X, [B, T, D]);
    const band = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
    const mask = tf.sub(1, band).mul(-1e9);
    const run = async (reps: number) => {
      const outs = [];
      for (let r = 0; r < reps; r++) outs.push(tfBlock(tf, x, P, mask));
      const data = await outs[reps - 1].data();
      for (const o of outs) o.dispose();
      return data as Float32Array;
    };
    await run(1);
    const dispatches = await countDispatches(() => run(1));
    participants.push({ name: "tfjs-webgpu", run, dispatches });
  } catch (e) {
    errors["tfjs-webgpu"] = `FAILED: ${e instanceof Error ? e.message : e}`;
  }
} else errors["tfjs-webgpu"] = `FAILED: ${tfPeer.error}`;

if (jaxPeer.ok) {
  try {
    const jax = jaxPeer.lib;
    const np = jax.numpy;
    const P = Object.fromEntries(
      Object.entries(PARAMS).map(([k, [s, d]]) => [k, np.array(d).reshape(s)]),
    );
    const x = np.array(X).reshape([B, T, D]);
    const block = jaxBlock(jax);
    // deno-lint-ignore no-explicit-any
    const refs = () => Object.fromEntries(Object.entries(P).map(([k, v]) => [k, (v as any).ref]));
    const run = async (reps: number) => {
      const outs = [];
      for (let r = 0; r < reps; r++) outs.push(block(x.ref, refs()));
      await jax.blockUntilReady(outs);
      const data = await outs[reps - 1].ref.data();
      for (const o of outs) o.dispose();
      return data as Float32Array;
    };
    await run(1);
    const dispatches = await countDispatches(() => run(1));
    participants.push({ name: "jax-js-webgpu", run, dispatches });
  } catch (e) {
    errors["jax-js-webgpu"] = `FAILED: ${e instanceof Error ? e.message : e}`;
  }
} else errors["jax-js-webgpu"] = `FAILED: ${jaxPeer.error}`;

// normix programs count their own dispatches; count them the same way as the peers, too
for (const p of participants.filter((p) => p.name.startsWith("normix"))) {
  const counted = await countDispatches(() => p.run(1));
  if (counted !== p.dispatches) {
    errors[`${p.name} dispatches`] = `program says ${p.dispatches}, counted ${counted}`;
  }
}

{
  const ref = participants[0] ? await participants[0].run(1) : undefined;
  const rows: Record<string, string> = { ...errors };
  for (const p of participants) {
    const out = await p.run(1);
    rows[p.name] = `${p.dispatches} dispatches/forward, max |out − ${participants[0]!.name}| = ${
      maxDiff(out, ref!).toExponential(2)
    }`;
  }
  if (tfPeer.ok) rows["tfjs backend"] = tfPeer.backend;
  if (jaxPeer.ok) rows["jax-js device"] = jaxPeer.backend;
  reportBackends("block_bench", rows);
}

for (const p of participants) {
  Deno.bench({
    name: `block fwd ${p.name} (x${REPS}, ${p.dispatches} dispatches)`,
    group: "pre-ln block forward",
    baseline: p.name === "normix fused",
    n: p.name.startsWith("normix") ? 8 : 4,
    warmup: 1,
    async fn() {
      await p.run(REPS);
    },
  });
}
