/**
 * Reverse-mode automatic differentiation: {@link grad}, {@link valueAndGrad},
 * {@link vjp}, the VJP rule table and the simplifying constructors.
 *
 * @module
 */
export * from "./grad.ts";
export * from "./vjp.ts";
export * from "./simplify.ts";
export * from "./check.ts";
