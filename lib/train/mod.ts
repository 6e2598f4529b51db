/**
 * Training: train-step graphs (loss, gradients, clipping, optimizer
 * updates), the float64 reference step, and losses.
 *
 * @module
 */
export * from "./loss.ts";
export * from "./step.ts";
export * from "./loop.ts";
