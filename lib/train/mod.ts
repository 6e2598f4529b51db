/**
 * Training: train-step graphs (loss, gradients, clipping, optimizer
 * updates), the float64 reference step, and the training loop.
 *
 * @module
 */
export * from "./step.ts";
export * from "./loop.ts";
export * from "./diagnostics.ts";
