/**
 * The main job: Pre-LN, Post-LN and HybridNorm blocks built from the same
 * builders, printed, and evaluated on the float64 interpreter.
 *
 * Run: `deno run examples/hybridnorm.ts`
 *
 * @module
 */
import * as nx from "../mod.ts";

const B = 2, T = 8, D = 16, H = 2, F = 32;
const dh = D / H;

type F32 = nx.Expr<"f32">;

function linear(x: F32, name: string, din: number, dout: number): F32 {
  return nx.matmul(x, nx.param(`${name}.weight`, [din, dout]));
}

function heads(x: F32): F32 { // [B,T,D] -> [B,H,T,dh]
  return nx.permute(nx.reshape(x, [B, T, H, dh]), [0, 2, 1, 3]);
}

function merge(x: F32): F32 { // [B,H,T,dh] -> [B,T,D]
  return nx.reshape(nx.permute(x, [0, 2, 1, 3]), [B, T, D]);
}

function attn(x: F32, p: string, qkvNorm: boolean): F32 {
  let [q, k, v] = ["q", "k", "v"].map((n) => heads(linear(x, `${p}.attn.${n}`, D, D)));
  if (qkvNorm) { // HybridNorm: RMSNorm on q, k, v per head (spec §6)
    [q, k, v] = [q!, k!, v!].map((t, i) =>
      nx.mul(nx.rmsNorm(t), nx.param(`${p}.attn.${"qkv"[i]}_norm.weight`, [dh]))
    );
  }
  return linear(merge(nx.attention(q!, k!, v!, { causal: true })), `${p}.attn.o`, D, D);
}

function mlp(x: F32, p: string): F32 {
  return linear(nx.gelu(linear(x, `${p}.mlp.fc1`, D, F)), `${p}.mlp.fc2`, F, D);
}

function ln(x: F32, name: string): F32 {
  return nx.add(
    nx.mul(nx.layerNorm(x), nx.param(`${name}.weight`, [D])),
    nx.param(`${name}.bias`, [D]),
  );
}

function rms(x: F32, name: string): F32 {
  return nx.mul(nx.rmsNorm(x), nx.param(`${name}.weight`, [D]));
}

const x = nx.input("x", [B, T, D]);
const p = "blocks.0";
const blocks: Record<string, F32> = {
  // y = x + Attn(LN1(x)); x+ = y + FFN(LN2(y))
  "pre-ln": ((): F32 => {
    const y = nx.add(x, attn(ln(x, `${p}.ln_1`), p, false));
    return nx.add(y, mlp(ln(y, `${p}.ln_2`), p));
  })(),
  // y = LN(x + Attn(x)); x+ = LN(y + FFN(y))
  "post-ln": ((): F32 => {
    const y = ln(nx.add(x, attn(x, p, false)), `${p}.ln_1`);
    return ln(nx.add(y, mlp(y, p)), `${p}.ln_2`);
  })(),
  // z = RMS(x + Attn_qkv(x)); x+ = z + FFN(z)
  "hybridnorm": ((): F32 => {
    const z = rms(nx.add(x, attn(x, p, true)), `${p}.ln_2`);
    return nx.add(z, mlp(z, p));
  })(),
};

// Deterministic weights: normal(0, 0.02) from a small LCG, norms at 1 / 0.
let seed = 42;
function randn(n: number, std: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const u = (seed + 0.5) / 2 ** 32;
    seed = (seed * 1103515245 + 12345) >>> 0;
    const v = seed / 2 ** 32;
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

for (const [name, out] of Object.entries(blocks)) {
  const { params } = nx.leavesOf([out]);
  const bindings: Record<string, nx.NDArray> = { x: nx.array(randn(B * T * D, 1), [B, T, D]) };
  for (const q of params) {
    const n = nx.numel(q.shape);
    const isNorm = /norm|ln_/.test(q.arg.name);
    const data = isNorm
      ? new Float64Array(n).fill(q.arg.name.endsWith("bias") ? 0 : 1)
      : randn(n, 0.02);
    bindings[q.arg.name] = nx.array(data, q.shape);
  }
  seed = 42;
  const [y] = nx.interpret([out], bindings);
  const rmsOut = Math.sqrt(y!.data.reduce((a, v) => a + v * v, 0) / y!.data.length);
  console.log(`\n== ${name}: ${params.length} parameters, output rms ${rmsOut.toFixed(4)}`);
  console.log(nx.printExpr(out).split("\n").slice(-6).join("\n"));
}
