/**
 * Kernel IR: the statements one fused kernel executes, with no WGSL in it.
 *
 * A kernel body is a tree of blocks. Values are bound once (`let`) in the
 * outermost block whose variables they depend on, so a reduction's result or
 * a broadcast operand is computed once per row, not once per element (loop
 * invariant code motion falls out of the placement rule). Equal
 * (node, index) pairs share one binding: common subexpressions are bound once.
 *
 * `lower.ts` builds this IR from expression graphs; kernels/ prints it.
 *
 * @module
 */

import type { DType } from "../ir/dtype.ts";
import type { Op } from "../ir/expr.ts";
import type { Lin } from "./index_expr.ts";

/** An operand: a bound value or a literal. */
export type Ref =
  | { readonly r: "v"; readonly name: string; readonly dtype: DType }
  | { readonly r: "c"; readonly value: number; readonly dtype: DType };

/** A condition `lo ≤ x ≤ hi` on an index. */
export interface IndexCond {
  /** the index */
  readonly x: Lin;
  /** smallest allowed value */
  readonly lo: number;
  /** largest allowed value */
  readonly hi: number;
}

/** The right-hand side of a `let`. */
export type KExpr =
  | { readonly e: "load"; readonly buf: string; readonly idx: Lin }
  | {
    readonly e: "op";
    /** an elementwise primitive (unary, binary, compare, where, cast) */
    readonly op: Op;
    readonly args: readonly Ref[];
    /** dtype of the (first non-condition) operand */
    readonly argDtype: DType;
  }
  | { readonly e: "index"; readonly ix: Lin }
  | { readonly e: "inrange"; readonly conds: readonly IndexCond[] }
  | { readonly e: "select"; readonly c: Ref; readonly a: Ref; readonly b: Ref }
  /** a gathered row: `clamp(value, 0, n − 1)` as u32 */
  | { readonly e: "gidx"; readonly v: Ref; readonly n: number }
  /** whether a gathered index lies in `[0, n)` */
  | { readonly e: "gok"; readonly v: Ref; readonly n: number };

/** One statement. */
export type Stmt =
  | {
    readonly s: "let";
    readonly name: string;
    readonly dtype: DType;
    readonly x: KExpr;
    /** the op this value computes, for comments and debugging */
    readonly note?: string;
  }
  | { readonly s: "var"; readonly name: string; readonly dtype: DType; readonly init: Ref }
  | { readonly s: "loop"; readonly v: string; readonly n: number; readonly body: Stmt[] }
  | {
    readonly s: "acc";
    readonly name: string;
    readonly op: "sum" | "max";
    readonly val: Ref;
    readonly dtype: DType;
  }
  | { readonly s: "store"; readonly buf: string; readonly idx: Lin; readonly val: Ref };

/** How a kernel uses one storage buffer. */
export interface Binding {
  /**
   * the WGSL name the IR uses: `b<binding number>`, so kernels that differ only
   * in which buffers they bind print the same WGSL (one pipeline compile)
   */
  readonly name: string;
  /** a readable name for comments and explain, e.g. `p_blocks_0_attn_q_weight` */
  readonly label: string;
  /** the buffer it binds (see the buffer plan) */
  readonly buffer: number;
  /** element type as stored (bool is stored as u32) */
  readonly dtype: DType;
  /** read-only or written */
  readonly access: "read" | "write";
  /** bind as `array<vec4<f32>>` (aligned vector loads) */
  vec4?: boolean;
}

/** A function body: statements plus the value it returns (if any). */
export interface Body {
  /** statements, in order */
  readonly stmts: Stmt[];
  /** returned value */
  readonly ret?: Ref;
}
