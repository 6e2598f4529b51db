/**
 * The Pre-LN block shared by `block_bench.ts` (forward) and `block_grad_bench.ts`
 * (forward + backward): batch 4, seq 128, d_model 256, 4 heads, FFN 1024, GELU (tanh), causal
 * attention, written once per participant (normix builders, TensorFlow.js, jax-js) from the
 * same parameters, plus the dispatch counter and difference helpers the benches share.
 *
 * @module
 */
import * as nx from "../lib/ir/mod.ts";
import { type Jax, randomData, type Tf } from "./_peers.ts";

/** Block sizes. */
export const B = 4, T = 128, D = 256, H = 4, DH: number = D / H, F = 1024, EPS = 1e-5;

/** Parameters shared by every participant: name → [shape, data]. */
export const PARAMS: Readonly<Record<string, [number[], Float32Array]>> = (() => {
  const out: Record<string, [number[], Float32Array]> = {};
  let seed = 10;
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = randomData(n, seed++);
    for (let i = 0; i < n; i++) d[i] = offset + scale * d[i]!;
    out[name] = [shape, d];
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
  return out;
})();

/** The block input `[B, T, D]`. */
export const X: Float32Array = randomData(B * T * D, 99);

/** The fixed weights `[B, T, D]` of the scalar loss `sum(block(x) ⊙ C)` of the gradient bench. */
export const C: Float32Array = randomData(B * T * D, 123);

/**
 * The block with the lib/ir builders.
 *
 * @param x the block input `[B, T, D]`
 * @returns the block output `[B, T, D]`
 */
export function normixBlock(x: nx.Expr<"f32">): nx.Expr<"f32"> {
  const p = (name: string) => nx.param(name, PARAMS[name]![0]);
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

/**
 * The block in TensorFlow.js (call inside `tf.tidy` or a gradient function).
 *
 * @param tf the library
 * @param x the input tensor `[B, T, D]`
 * @param P parameters by name (tensors or variables)
 * @param mask the additive causal mask `[T, T]` (0 or −1e9)
 * @returns the output tensor `[B, T, D]`
 */
export function tfBlock(tf: Tf, x: Tf, P: Record<string, Tf>, mask: Tf): Tf {
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
}

/**
 * The causal mask for {@link tfBlock}: 0 on and below the diagonal, −1e9 above.
 *
 * @param tf the library
 * @returns a `[T, T]` tensor
 */
export function tfCausalMask(tf: Tf): Tf {
  return tf.tidy(() => tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)).mul(-1e9));
}

/**
 * The block in jax-js (ownership: every argument is consumed, `.ref` keeps a value for
 * another use).
 *
 * @param jax the library
 * @param x the input `[B, T, D]` (consumed)
 * @param P parameters by name (each consumed once)
 * @returns the output `[B, T, D]`
 */
export function jaxBlock(jax: Jax, x: Jax, P: Record<string, Jax>): Jax {
  const np = jax.numpy, nn = jax.nn;
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
}

/**
 * Counts compute dispatches issued while `f` runs (every library shares the prototype).
 *
 * @param f the work to count
 * @returns the number of `dispatchWorkgroups` calls
 */
export async function countDispatches(f: () => Promise<unknown>): Promise<number> {
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

/**
 * The largest elementwise |a − b| (Infinity when the lengths differ or a value is NaN).
 *
 * @param a values
 * @param b reference values
 * @returns max |a − b|
 */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length && m !== Infinity; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

/**
 * The largest |value|.
 *
 * @param a values
 * @returns max |a|
 */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
