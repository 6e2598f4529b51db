/**
 * nn: the transformer vocabulary, normalisation placements, parameters and
 * init, equivalence transforms and explanations.
 *
 * @module
 */
export * from "./config.ts";
export * from "./norms.ts";
export * from "./layers.ts";
export * from "./placement.ts";
export * from "./placements.ts";
export * from "./init.ts";
export * from "./model.ts";
