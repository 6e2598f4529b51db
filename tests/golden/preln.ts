/**
 * The Pre-LN transformer block used by the compiler's golden and GPU tests:
 * LN → q, k, v matmuls → causal attention → W_O + residual → LN → fc1 + GELU
 * → fc2 + residual, built with the public lib/ir builders.
 *
 * @module
 */
import * as nx from "../../lib/ir/mod.ts";
import { randn } from "../_util.ts";

/** Sizes of the block. */
export interface BlockDims {
  /** batch */
  b: number;
  /** sequence length */
  t: number;
  /** model width */
  d: number;
  /** heads */
  h: number;
  /** FFN width */
  f: number;
}

function affineLn(x: nx.Expr<"f32">, name: string, d: number): nx.Expr<"f32"> {
  const g = nx.param(`${name}.weight`, [d]);
  const b = nx.param(`${name}.bias`, [d]);
  return nx.add(nx.mul(nx.layerNorm(x), g), b);
}

function linear(x: nx.Expr<"f32">, name: string, din: number, dout: number): nx.Expr<"f32"> {
  const w = nx.param(`${name}.weight`, [din, dout]);
  const b = nx.param(`${name}.bias`, [dout]);
  return nx.add(nx.matmul(x, w), b);
}

/**
 * Builds the block's output expression.
 *
 * @param dims sizes
 * @returns the output `[b, t, d]` (input "x")
 */
export function preLnBlock(dims: BlockDims): nx.Expr<"f32"> {
  const { b, t, d, h, f } = dims;
  const dh = d / h;
  const x = nx.input("x", [b, t, d]);
  const heads = (y: nx.Expr<"f32">) => nx.permute(nx.reshape(y, [b, t, h, dh]), [0, 2, 1, 3]);
  const a = affineLn(x, "ln1", d);
  const q = heads(linear(a, "attn.q", d, d));
  const k = heads(linear(a, "attn.k", d, d));
  const v = heads(linear(a, "attn.v", d, d));
  const att = nx.attention(q, k, v, { causal: true });
  const merged = nx.reshape(nx.permute(att, [0, 2, 1, 3]), [b, t, d]);
  const y = nx.add(x, linear(merged, "attn.o", d, d));
  const m = affineLn(y, "ln2", d);
  const hdn = nx.gelu(linear(m, "mlp.fc1", d, f));
  return nx.add(y, linear(hdn, "mlp.fc2", f, d));
}

/**
 * Deterministic parameters and input for {@link preLnBlock}.
 *
 * @param dims sizes
 * @param seed random seed
 * @returns params and the input
 */
export function preLnData(
  dims: BlockDims,
  seed = 1,
): { params: Record<string, nx.NDArray>; x: nx.NDArray } {
  const { b, t, d, f } = dims;
  const params: Record<string, nx.NDArray> = {};
  let s = seed;
  const mat = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((p, q) => p * q, 1);
    params[name] = nx.array(Float32Array.from(randn(n, s++, scale), (v) => v + offset), shape);
  };
  for (const ln of ["ln1", "ln2"]) {
    mat(`${ln}.weight`, [d], 0.1, 1);
    mat(`${ln}.bias`, [d], 0.1);
  }
  for (const p of ["attn.q", "attn.k", "attn.v", "attn.o"]) {
    mat(`${p}.weight`, [d, d], 1 / Math.sqrt(d));
    mat(`${p}.bias`, [d], 0.02);
  }
  mat("mlp.fc1.weight", [d, f], 1 / Math.sqrt(d));
  mat("mlp.fc1.bias", [f], 0.02);
  mat("mlp.fc2.weight", [f, d], 1 / Math.sqrt(f));
  mat("mlp.fc2.bias", [d], 0.02);
  const x = nx.array(Float32Array.from(randn(b * t * d, s++, 1)), [b, t, d]);
  return { params, x };
}
