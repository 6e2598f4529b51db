/**
 * Compiles a Pre-LN transformer block to fused WebGPU kernels and prints
 * the plan: every kernel, the ops fused into it, why its boundary exists,
 * its buffers and dispatch size (and the WGSL with `--wgsl`). Then runs it
 * fused and unfused and checks both against the float64 interpreter.
 *
 * ```sh
 * deno run examples/explain_kernels.ts          # plan and timings
 * deno run examples/explain_kernels.ts --wgsl   # also the WGSL of every kernel
 * ```
 *
 * @module
 */
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import { compile, explain } from "../kernels/mod.ts";

const dims = { b: 2, t: 16, d: 64, h: 4, f: 256 };
const dh = dims.d / dims.h;

// deterministic pseudo-random values
let seed = 7;
const rand = (n: number, scale: number, offset = 0): Float32Array =>
  Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return offset + scale * (seed / 2147483648 - 0.5) * 2;
  });

const params: Record<string, nx.NDArray> = {};
const p = (name: string, shape: number[], scale: number, offset = 0): nx.Expr<"f32"> => {
  params[name] = nx.array(rand(shape.reduce((a, b) => a * b, 1), scale, offset), shape);
  return nx.param(name, shape);
};
const ln = (x: nx.Expr<"f32">, name: string) =>
  nx.add(nx.mul(nx.layerNorm(x), p(`${name}.g`, [dims.d], 0.1, 1)), p(`${name}.b`, [dims.d], 0.1));
const linear = (x: nx.Expr<"f32">, name: string, din: number, dout: number) =>
  nx.add(
    nx.matmul(x, p(`${name}.w`, [din, dout], 1 / Math.sqrt(din))),
    p(`${name}.b`, [dout], 0.02),
  );
const heads = (y: nx.Expr<"f32">) =>
  nx.permute(nx.reshape(y, [dims.b, dims.t, dims.h, dh]), [0, 2, 1, 3]);

const x = nx.input("x", [dims.b, dims.t, dims.d]);
const a = ln(x, "ln1");
const att = nx.attention(
  heads(linear(a, "q", dims.d, dims.d)),
  heads(linear(a, "k", dims.d, dims.d)),
  heads(linear(a, "v", dims.d, dims.d)),
  { causal: true },
);
const y = nx.add(
  x,
  linear(nx.reshape(nx.permute(att, [0, 2, 1, 3]), [dims.b, dims.t, dims.d]), "o", dims.d, dims.d),
);
const out = nx.add(
  y,
  linear(nx.gelu(linear(ln(y, "ln2"), "fc1", dims.d, dims.f)), "fc2", dims.f, dims.d),
);

const xs = nx.array(rand(dims.b * dims.t * dims.d, 1), [dims.b, dims.t, dims.d]);
const ref = interpret([out], { ...params, x: xs })[0]!;

let fused;
try {
  fused = await compile([out]);
} catch (e) {
  console.log(`WebGPU is not available here: ${(e as Error).message}`);
  console.log("Running on the interpreter instead (explicitly):");
  const prog = await compile([out], { backend: "interpreter" });
  prog.setParams(params);
  const [o] = await prog.run({ x: xs });
  console.log(`output ${o!.shape.join("×")}, first value ${o!.data[0]}`);
  Deno.exit(0);
}
console.log(explain(fused, { wgsl: Deno.args.includes("--wgsl") }));

using unfused = await compile([out], { fusion: false });
for (const [name, prog] of [["fused", fused], ["unfused", unfused]] as const) {
  prog.setParams(params);
  await prog.run({ x: xs }); // first run: the driver compiles shaders lazily
  const t0 = performance.now();
  const [o] = await prog.run({ x: xs });
  const ms = performance.now() - t0;
  let worst = 0;
  for (let i = 0; i < ref.data.length; i++) {
    worst = Math.max(worst, Math.abs(o!.data[i]! - ref.data[i]!));
  }
  console.log(
    `\n${name}: ${prog.dispatchCount} dispatches, ${ms.toFixed(1)} ms per run, ` +
      `max |GPU − float64| = ${worst.toExponential(2)}`,
  );
}
fused[Symbol.dispose]();
