/**
 * The expression core: dtypes, shapes, interned nodes, builders, printer.
 *
 * @module
 */
export * from "./dtype.ts";
export * from "./shape.ts";
export * from "./expr.ts";
export * from "./array.ts";
export * from "./builders.ts";
export * from "./decompose.ts";
export * from "./printer.ts";
