/**
 * normix: design, verify and train transformer normalization variants.
 *
 * A transformer block is a typed, immutable expression built by pure
 * functions; shapes and dtypes are checked as it is built. Expressions run
 * on a float64 reference interpreter (the oracle) and compile to fused WGSL
 * kernels on WebGPU.
 *
 * @example Build and evaluate an expression
 * ```ts
 * import * as nx from "./mod.ts";
 * const x = nx.input("x", [2, 4]);
 * const y = nx.layerNorm(x);
 * const [out] = nx.interpret([y], { x: nx.array([1, 2, 3, 4, 2, 2, 2, 6], [2, 4]) });
 * console.log(nx.printExpr(y));
 * ```
 *
 * @module
 */
export * from "./lib/ir/mod.ts";
export * from "./lib/interpret.ts";
export * from "./lib/data/mod.ts";
export * from "./lib/io/mod.ts";
export * from "./lib/report/mod.ts";
export * from "./lib/autodiff/mod.ts";
export * from "./lib/optim/mod.ts";
export * from "./lib/train/mod.ts";
export * from "./lib/rewrite/mod.ts";
export * from "./lib/nn/mod.ts";
export * from "./kernels/mod.ts";
