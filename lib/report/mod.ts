/**
 * Reports: the {@link TrainingLog} training code fills, a terminal progress
 * line, hand-written SVG charts, and the SVG/HTML training report. All pure
 * (they return text); `saveReport` in lib/io writes a report atomically.
 *
 * @module
 */
export * from "./log.ts";
export * from "./progress.ts";
export * from "./svg.ts";
export * from "./render.ts";
