/**
 * Optimizers (SGD, AdamW), learning-rate schedules, gradient clipping and
 * parameter masks, all as graph fragments.
 *
 * @module
 */
export * from "./schedule.ts";
export * from "./mask.ts";
export * from "./clip.ts";
export * from "./optimizers.ts";
