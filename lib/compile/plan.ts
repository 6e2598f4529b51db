/**
 * The fusion planner: groups a graph into kernels and decides which values
 * reach memory (and why).
 *
 * - `dot` and `attention` nodes anchor their own kernels; elementwise
 *   consumers reached through bijective views (bias, activation, residual
 *   add, scaling) join as epilogues, and operands are read through views.
 * - Every other materialised value is computed by a loop kernel whose body
 *   inlines the elementwise, movement and reduction nodes above it. When the
 *   reductions in it all reduce the same axes and are used through
 *   broadcasts (norms, softmax), the kernel runs one invocation per row and
 *   loops over the row to write full-size outputs: LayerNorm with its scale
 *   and shift and the residual add before it is one row kernel.
 * - A reduction inside a kernel that would be recomputed more often than it
 *   has elements is materialised instead; so is anything a kernel's binding
 *   limit forces out.
 *
 * Every materialised value records the reason its kernel boundary exists.
 *
 * @module
 */

import { DECOMPOSE } from "../ir/decompose.ts";
import type { DType } from "../ir/dtype.ts";
import {
  type CompositeOp,
  type Expr,
  isOp,
  leavesOf,
  mk,
  mkLeaf,
  OP_KIND,
  toposort,
  withSrc,
} from "../ir/expr.ts";
import { fmtShape, numel, shapeEq } from "../ir/shape.ts";
import { add, delinearize, ivar, type Lin, linearize, reshapeIndex } from "./index_expr.ts";
import type { Binding, Body, Ref, Stmt } from "./kir.ts";
import { type Block, forwardView, Lowerer, normBody, rootBlock } from "./lower.ts";

/** What the planner needs to know. */
export interface PlanOptions {
  /** fuse (default) or one kernel per primitive op */
  fusion: boolean;
  /** storage buffers one kernel may bind */
  maxBindings: number;
  /** param name → its new value, written back after each run */
  updates?: Readonly<Record<string, Expr>>;
  /**
   * merge loop kernels side by side (default true); the planner retries
   * without merging when a merged kernel would pass llvmpipe's loop cap
   */
  mergeLoops?: boolean;
}

/** A buffer-sized value of the program. */
export interface Value {
  /** index in {@link Plan.values} */
  readonly id: number;
  /** the node whose elements it holds */
  readonly node: Expr;
  /** where it comes from / goes */
  readonly role: "input" | "param" | "temp" | "output";
  /** element type */
  readonly dtype: DType;
  /** number of elements */
  readonly numel: number;
  /** why it is materialised (temps and outputs) */
  readonly reason: string;
}

/** A lowered loop kernel: one invocation per element of `count`. */
export interface LoopKernel {
  /** kind tag */
  readonly kind: "loop";
  /** invocations */
  readonly count: number;
  /** the invocation index variable used by `body` */
  readonly gid: string;
  /** the body */
  readonly body: Stmt[];
  /** row loop length when the kernel writes rows (1 otherwise) */
  readonly rowLength: number;
}

/** One product of a matmul kernel (several share A when fused horizontally). */
export interface MatmulPart {
  /** its columns (the kernel's columns are the parts' side by side) */
  readonly n: number;
  /** `mm_b(b, kk, j)` with j local to the part */
  readonly b: Body;
  /** `mm_store(b, i, j, acc)` with j local to the part */
  readonly store: Body;
  /** B is a plain buffer with vec4-aligned rows: its binding and index of B[b,kk,j] */
  readonly bDirect?: { buf: string; idx: Lin };
  /** B is a plain buffer contiguous along kk (a transposed B): binding and index of B[b,kk,j] */
  readonly bDirectK?: { buf: string; idx: Lin };
  /** the dot node */
  readonly dot: Expr;
}

/** A lowered matmul kernel: hooks for the matmul template. */
export interface MatmulKernelIR {
  /** kind tag */
  readonly kind: "matmul";
  /** batch count */
  readonly batch: number;
  /** rows */
  readonly m: number;
  /** columns (all parts) */
  readonly n: number;
  /** reduction length */
  readonly k: number;
  /** `mm_a(b, i, kk)` */
  readonly a: Body;
  /** A is a plain buffer whose rows are vec4-aligned: its binding and index of A[b,i,kk] */
  readonly aDirect?: { buf: string; idx: Lin };
  /** A is a plain buffer contiguous along i (a transposed A): binding and index of A[b,i,kk] */
  readonly aDirectI?: { buf: string; idx: Lin };
  /** the products, side by side along n */
  readonly parts: readonly MatmulPart[];
}

/** A lowered attention kernel. */
export interface AttentionKernelIR {
  /** kind tag */
  readonly kind: "attention";
  /** flattened leading (batch, head) count */
  readonly bh: number;
  /** query length */
  readonly tq: number;
  /** key length */
  readonly tk: number;
  /** q/k head size */
  readonly dk: number;
  /** v head size */
  readonly dv: number;
  /** causal mask */
  readonly causal: boolean;
  /** logit scale */
  readonly scale: number;
  /** `att_q(bh, t, c)` */
  readonly q: Body;
  /** `att_k(bh, t, c)` */
  readonly k: Body;
  /** `att_v(bh, t, c)` */
  readonly v: Body;
  /** `att_store(bh, t, c, o)` */
  readonly store: Body;
  /** operands that are plain f32 buffers with vec4-aligned rows: binding and index of x[bh,t,c] */
  readonly direct: {
    readonly q?: { buf: string; idx: Lin };
    readonly k?: { buf: string; idx: Lin };
    readonly v?: { buf: string; idx: Lin };
  };
}

/** One planned kernel. */
export interface PlannedKernel {
  /** a short unique name, e.g. `k3_matmul` */
  readonly name: string;
  /** the lowered body */
  readonly ir: LoopKernel | MatmulKernelIR | AttentionKernelIR;
  /** storage buffers it binds */
  readonly bindings: readonly Binding[];
  /** values it writes */
  readonly outputs: readonly number[];
  /** values it reads */
  readonly inputs: readonly number[];
  /** ops computed in it, printed `%id op` */
  readonly ops: readonly string[];
  /** why this kernel exists and why each output leaves it */
  readonly why: readonly string[];
  /** estimated statement executions (for explain) */
  readonly work: number;
  /** the graph nodes computed in it (for debug replays) */
  readonly nodes: readonly Expr[];
}

/** The whole plan. */
export interface Plan {
  /** every buffer-sized value */
  readonly values: readonly Value[];
  /** kernels in execution order */
  readonly kernels: readonly PlannedKernel[];
  /** value of each program output, in order */
  readonly outputs: readonly number[];
  /** param updates: param value ← new value */
  readonly updates: readonly { readonly param: number; readonly value: number }[];
  /** the graph after preprocessing (outputs then update values) */
  readonly roots: readonly Expr[];
}

// ---------------------------------------------------------------------------
// Preprocessing

function decomposeOnly(roots: readonly Expr[], which: ReadonlySet<string>): Expr[] {
  const memo = new Map<Expr, Expr>();
  const run = (e: Expr): Expr => {
    for (const n of toposort([e])) {
      if (memo.has(n)) continue;
      const src = n.src.map((s) => memo.get(s)!);
      if (OP_KIND[n.op] === "composite" && which.has(n.op)) {
        const rule = DECOMPOSE[n.op as CompositeOp] as (s: readonly Expr[], e: Expr) => Expr;
        memo.set(n, run(rule(src, n)));
      } else {
        memo.set(n, n.src.length ? withSrc(n, src) : n);
      }
    }
    return memo.get(e)!;
  };
  return roots.map(run);
}

// A concat of more operands than a kernel can bind becomes a tree of concats.
function splitConcats(roots: readonly Expr[], max: number): Expr[] {
  const memo = new Map<Expr, Expr>();
  for (const n of toposort(roots)) {
    let src = n.src.map((s) => memo.get(s)!);
    if (isOp(n, "concat") && src.length > max - 1) {
      const per = Math.max(2, max - 1);
      while (src.length > per) {
        const groups: Expr[] = [];
        for (let i = 0; i < src.length; i += per) {
          const g = src.slice(i, i + per);
          groups.push(g.length === 1 ? g[0]! : mk("concat", g, { axis: n.arg.axis }));
        }
        src = groups;
      }
      memo.set(n, mk("concat", src, { axis: n.arg.axis }));
    } else memo.set(n, n.src.length ? withSrc(n, src) : n);
  }
  return roots.map((r) => memo.get(r)!);
}

const isEw = (e: Expr): boolean => {
  const k = OP_KIND[e.op];
  return k === "unary" || k === "binary" || k === "compare" || k === "ternary";
};
const isBijView = (e: Expr): boolean => e.op === "reshape" || e.op === "permute";
const isAnchor = (e: Expr): boolean => e.op === "dot" || e.op === "attention";
const isLoadedLeaf = (e: Expr): boolean => e.op === "input" || e.op === "param";
const isReduction = (e: Expr): boolean => e.op === "sum" || e.op === "rmax" || e.op === "norm";

/** Loop kernels with at most this many outputs per value may be merged side by side. */
const SMALL_KERNEL = 1024;

/** Local node numbers (topological position) so names do not depend on global ids. */
let NUM: ReadonlyMap<Expr, number> = new Map();
const num = (e: Expr): string => `%${NUM.get(e) ?? `#${e.id}`}`;

function describe(e: Expr): string {
  const a = e.arg as { name?: string; kind?: string } | null;
  const extra = a?.name !== undefined ? ` "${a.name}"` : a?.kind !== undefined ? `(${a.kind})` : "";
  return `${num(e)} ${e.op}${extra} ${e.dtype}${fmtShape(e.shape)}`;
}

// ---------------------------------------------------------------------------
// Planning

interface Ctx {
  opts: PlanOptions;
  order: Expr[];
  pos: Map<Expr, number>;
  users: Map<Expr, Expr[]>;
  /** materialised nodes and why */
  M: Map<Expr, string>;
  /** epilogue regions, by anchor */
  regions: Map<Expr, Expr[]>;
  /** node → anchor whose region holds it */
  claimed: Map<Expr, Expr>;
  /** ancestor sets (memo) */
  anc: Map<Expr, Set<Expr>>;
  /** dots that must not be fused horizontally (binding limit) */
  noGroup: Set<Expr>;
}

function ancestors(ctx: Ctx, e: Expr): Set<Expr> {
  let s = ctx.anc.get(e);
  if (s) return s;
  s = new Set<Expr>();
  for (const x of e.src) {
    s.add(x);
    for (const y of ancestors(ctx, x)) s.add(y);
  }
  ctx.anc.set(e, s);
  return s;
}

/** Nodes computed inline under `e` (stopping at materialised nodes and leaves). */
function inlineRegion(ctx: Ctx, e: Expr, stopAtRoot = true): Expr[] {
  const out: Expr[] = [];
  const seen = new Set<Expr>();
  const visit = (n: Expr, top: boolean) => {
    if (seen.has(n)) return;
    seen.add(n);
    if (!top && (ctx.M.has(n) || (stopAtRoot && isAnchor(n)))) return;
    if (OP_KIND[n.op] === "leaf") return;
    const srcs = n.op === "norm" ? [normBody(n)] : n.src;
    for (const s of srcs) visit(s, false);
    out.push(n);
  };
  visit(e, true);
  return out;
}

function growEpilogue(ctx: Ctx, x: Expr): Expr[] {
  const R = new Set<Expr>([x]);
  // symbolic index of every region node as a function of the anchor's
  const vars = x.shape.map((d, i) => ivar(`e${i}`, d));
  const idx = new Map<Expr, string>([[x, vars.map((v) => v.key).join(",")]]);
  const idxL = new Map<Expr, Lin[]>([[x, vars]]);
  const start = ctx.pos.get(x)!;
  for (let p = start + 1; p < ctx.order.length; p++) {
    const u = ctx.order[p]!;
    if (ctx.claimed.has(u) || isAnchor(u)) continue;
    const inR = u.src.filter((s) => R.has(s));
    if (inR.length === 0) continue;
    if (!(isEw(u) || isBijView(u))) continue;
    let uIdx: Lin[];
    if (isBijView(u)) uIdx = forwardView(u, idxL.get(u.src[0]!)!);
    else {
      const keys = new Set(inR.map((s) => idx.get(s)!));
      if (keys.size !== 1) continue;
      uIdx = idxL.get(inR[0]!)!;
    }
    const outside = u.src.filter((s) => !R.has(s));
    if (outside.some((s) => [...R].some((r) => r === s || ancestors(ctx, s).has(r)))) continue;
    R.add(u);
    idxL.set(u, uIdx);
    idx.set(u, uIdx.map((v) => v.key).join(","));
  }
  // drop views that lead nowhere inside the region
  let changed = true;
  while (changed) {
    changed = false;
    for (const n of [...R]) {
      if (n === x || !isBijView(n) || ctx.M.has(n)) continue;
      const us = ctx.users.get(n) ?? [];
      // a view another matmul/attention reads is written in that layout by this epilogue
      // (the head merge after attention), so the reader loads a plain buffer
      if (us.some(isAnchor)) continue;
      if (us.every((u) => !R.has(u))) {
        R.delete(n);
        changed = true;
      }
    }
  }
  return ctx.order.filter((n) => R.has(n));
}

/**
 * Drops elementwise tails of an epilogue that only feed other kernels when the
 * values they read are written anyway: the consumer recomputes such a tail from
 * memory (a weight gradient's square, summed for the gradient norm, is not
 * written as one more tensor).
 */
function trimEpilogue(
  ctx: Ctx,
  anchor: Expr,
  region: readonly Expr[],
  operandBases: ReadonlySet<Expr>,
): Expr[] {
  const R = new Set(region);
  const outside = (n: Expr) => (ctx.users.get(n) ?? []).filter((u) => !R.has(u));
  let changed = true;
  while (changed) {
    changed = false;
    for (const n of [...R].reverse()) {
      if (n === anchor || !isEw(n) || ctx.M.has(n) || operandBases.has(n)) continue;
      const us = ctx.users.get(n) ?? [];
      if (us.length === 0 || us.some((u) => R.has(u))) continue;
      // consumers that evaluate it once per element (no broadcast views, no anchors)
      if (!us.every((u) => isEw(u) || u.op === "sum" || u.op === "rmax")) continue;
      // every value it reads inside the region is written anyway
      const inR = n.src.filter((s) => R.has(s));
      if (inR.length === 0) continue;
      if (!inR.every((s) => ctx.M.has(s) || outside(s).some((u) => u !== n))) continue;
      R.delete(n);
      changed = true;
    }
  }
  return region.filter((n) => R.has(n));
}

/** Materialises `e` unless it is a leaf or already is. */
function need(ctx: Ctx, e: Expr, why: string): boolean {
  if (OP_KIND[e.op] === "leaf" && e.op !== "const" && e.op !== "iota") return false;
  if (ctx.M.has(e)) return false;
  if (!ctx.pos.has(e)) {
    // only graph nodes get buffers; a caller passing a norm's inner node is a planner bug
    throw new Error(`Internal error: cannot materialise ${describe(e)} (${why}): not a graph node`);
  }
  ctx.M.set(e, why);
  return true;
}

/** Strips views off an operand: the node the views read from. */
function viewBase(e: Expr): Expr {
  let b = e;
  while (OP_KIND[b.op] === "movement" && b.op !== "concat" && b.op !== "pad") b = b.src[0]!;
  return b;
}

/**
 * Plans a program: preprocessing, fusion groups, lowered kernel IR and the
 * values each kernel reads and writes.
 *
 * @param outputs the expressions the program returns
 * @param opts fusion switch, binding limit and parameter updates
 * @returns the plan
 * @throws {TypeError} when an update names a param the graph lacks or has another shape
 */
export function plan(outputs: readonly Expr[], opts: PlanOptions): Plan {
  try {
    return planOnce(outputs, opts);
  } catch (e) {
    // Some merge paths can still build a kernel past the loop cap: plan again
    // without merging loop kernels rather than fail (or, worse, run wrong).
    if (!(e instanceof LoopCapError) || opts.mergeLoops === false) throw e;
    return planOnce(outputs, { ...opts, mergeLoops: false });
  }
}

/** A kernel would pass llvmpipe's per-invocation loop cap. */
class LoopCapError extends RangeError {}

function planOnce(outputs: readonly Expr[], opts: PlanOptions): Plan {
  if (!(opts.maxBindings >= 4)) {
    throw new RangeError(
      `Cannot plan kernels with maxBindings ${opts.maxBindings}: at least 4 storage buffers ` +
        `per kernel are needed (a select reads 3 and writes 1)`,
    );
  }
  const updNames = Object.keys(opts.updates ?? {}).sort();
  // a new value that is itself a param or input is copied into a buffer of its
  // own first, so that updates applied in sequence all see the old values
  const updVals = updNames.map((n) => {
    const v = opts.updates![n]!;
    return v.op === "param" || v.op === "input" ? mk("reshape", [v], { shape: v.shape }) : v;
  });
  const raw = [...outputs, ...updVals];
  let roots = opts.fusion
    ? decomposeOnly(raw, new Set(["residual"]))
    : decomposeOnly(raw, new Set(["residual", "norm", "attention"]));
  roots = splitConcats(roots, opts.maxBindings);
  const { params } = leavesOf(roots);
  // a param that only receives an update (e.g. a snapshot) still needs a buffer
  const extra: Expr[] = [];
  for (const [i, name] of updNames.entries()) {
    const p = params.find((q) => q.arg.name === name);
    const v = roots[outputs.length + i]!;
    if (!p) {
      extra.push(mkLeaf("param", v.dtype, v.shape, { name }));
      continue;
    }
    if (!shapeEq(p.shape, v.shape) || p.dtype !== v.dtype) {
      throw new TypeError(
        `Cannot compile update of param "${name}": it is ${p.dtype}${fmtShape(p.shape)} but the ` +
          `new value is ${v.dtype}${fmtShape(v.shape)}`,
      );
    }
  }
  const order = toposort([...roots, ...extra]);
  const pos = new Map(order.map((e, i) => [e, i]));
  NUM = pos;
  const users = new Map<Expr, Expr[]>();
  for (const e of order) for (const s of e.src) users.set(s, [...(users.get(s) ?? []), e]);
  const ctx: Ctx = {
    opts,
    order,
    pos,
    users,
    M: new Map(),
    regions: new Map(),
    claimed: new Map(),
    anc: new Map(),
    valueNodes: [],
    noGroup: new Set(),
  };
  roots.forEach((r, i) => {
    const why = i < outputs.length
      ? `program output ${i}`
      : `new value of param "${updNames[i - outputs.length]}"`;
    need(ctx, r, why);
  });

  if (!opts.fusion) {
    for (const e of order) {
      if (OP_KIND[e.op] === "leaf" || e.op === "reshape") continue;
      need(ctx, e, "unfused: one kernel per op");
    }
  } else {
    // Epilogues of anchors.
    const operandBases = new Set<Expr>();
    for (const e of order) {
      if (isAnchor(e)) {
        for (const s of e.src) operandBases.add(viewBase(s));
      }
    }
    for (const e of order) {
      if (!isAnchor(e)) continue;
      const R = trimEpilogue(ctx, e, growEpilogue(ctx, e), operandBases);
      ctx.regions.set(e, R);
      for (const n of R) ctx.claimed.set(n, e);
    }
    for (const [a, R] of ctx.regions) {
      const inR = new Set(R);
      for (const n of R) {
        const outs = (ctx.users.get(n) ?? []).filter((u) => !inR.has(u));
        if (outs.length) {
          need(
            ctx,
            n,
            `${a.op} epilogue ends: used by ${describe(outs[0]!)}${
              outs.length > 1 ? ` and ${outs.length - 1} more` : ""
            }`,
          );
        }
      }
    }
  }
  const fixpoint = () => {
    for (let iter = 0; iter < 1000; iter++) {
      if (!step(ctx)) return;
    }
    throw new Error("Internal error: fusion planning did not converge");
  };
  fixpoint();
  let kernels = buildKernels(ctx);
  // Binding limit: split until every kernel fits.
  for (let iter = 0; iter < 1000; iter++) {
    const over = kernels.find((k) => k.bindings.length > opts.maxBindings);
    if (!over) break;
    splitFor(ctx, over);
    fixpoint();
    kernels = buildKernels(ctx);
  }
  const bad = kernels.find((k) => k.bindings.length > opts.maxBindings);
  if (bad) {
    throw new RangeError(
      `Cannot fit kernel ${bad.name} into ${opts.maxBindings} storage buffers: it binds ` +
        `${bad.bindings.length}; raise maxStorageBuffersPerShaderStage`,
    );
  }
  return finish(ctx, kernels, roots, outputs.length, updNames);
}

/** Shader loop iterations one invocation may run (llvmpipe's silent cap is 65535). */
const LOOP_ITERATION_CAP = 32768;

// One round of materialisation rules; true when something changed.
function step(ctx: Ctx): boolean {
  const { M } = ctx;
  let changed = false;
  if (ctx.opts.fusion) {
    // Anchor operands are read through views of a buffer.
    for (const e of ctx.order) {
      if (!isAnchor(e)) continue;
      for (const s of e.src) {
        const b = ctx.claimed.has(s) && isBijView(s) ? s : viewBase(s);
        if (OP_KIND[b.op] === "leaf" && b.op !== "const" && b.op !== "iota") continue;
        changed = need(ctx, b, `operand of ${describe(e)} (${e.op} reads operands from memory)`) ||
          changed;
      }
    }
    // Epilogue side inputs must be cheap: reductions in them are materialised.
    for (const [, R] of ctx.regions) {
      const inR = new Set(R);
      for (const n of R) {
        if (isAnchor(n)) continue;
        for (const s of n.src) {
          // a materialised side input is loaded, not recomputed
          if (inR.has(s) || ctx.M.has(s) || OP_KIND[s.op] === "leaf") continue;
          for (const r of inlineRegion(ctx, s, true)) {
            // (nodes inside a norm's decomposition are no graph nodes: the norm is)
            if ((isReduction(r) || isAnchor(r)) && ctx.pos.has(r)) {
              changed = need(ctx, r, `reduction feeding a matmul/attention epilogue`) || changed;
            }
          }
        }
      }
    }
  }
  // Scalars: a scalar subexpression used elementwise by a larger kernel (bias
  // corrections, a clip factor, a learning-rate schedule) is computed once.
  if (ctx.opts.fusion) {
    const kernelRegions: Expr[][] = [];
    for (const e of M.keys()) {
      if (ctx.claimed.has(e) || isAnchor(e) || numel(e.shape) <= 1) continue;
      kernelRegions.push(inlineRegion(ctx, e));
    }
    for (const [, R] of ctx.regions) {
      const inR = new Set(R);
      for (const n of R) {
        for (const x of n.src) {
          if (!inR.has(x) && !M.has(x)) kernelRegions.push(inlineRegion(ctx, x));
        }
      }
    }
    for (const region of kernelRegions) {
      for (const n of region) {
        if (numel(n.shape) !== 1 || M.has(n) || !ctx.pos.has(n)) continue;
        const k = OP_KIND[n.op];
        if (k === "leaf" || k === "movement") continue;
        // only where scalars meet the rest: some user is not a scalar computation
        const us = ctx.users.get(n) ?? [];
        if (!us.some((u) => numel(u.shape) > 1 || OP_KIND[u.op] === "movement")) continue;
        const cost = inlineRegion(ctx, n).filter((m) => OP_KIND[m.op] !== "movement").length;
        if (cost < 3) continue;
        changed = need(ctx, n, "scalar computed once, not per element") || changed;
      }
    }
  }
  // Loop kernels: reductions evaluated more often than they have elements.
  const roots = [...M.keys()].filter((e) => !ctx.claimed.has(e) && !isAnchor(e));
  const count = new Map<Expr, number>();
  for (const r of roots) {
    if (OP_KIND[r.op] === "leaf" && r.op !== "const" && r.op !== "iota") continue;
    const lk = lowerLoop(ctx, [r], () => undefined);
    for (const [red, evals] of lk.evals) {
      if (red === r) continue;
      // llvmpipe stops a shader loop after 65535 iterations (nested loops
      // count together): a reduction nested in this kernel's loop whose
      // iterations per invocation pass that gets its own kernel.
      if ((isOp(red, "sum") || isOp(red, "rmax")) && ctx.pos.has(red)) {
        const len = numel(red.arg.axes.map((a) => red.src[0]!.shape[a]!));
        const perInvocation = (evals / Math.max(1, numel(r.shape))) * len;
        if (perInvocation > LOOP_ITERATION_CAP) {
          changed = need(
            ctx,
            red,
            `nested reduction would loop ${perInvocation} times per invocation (cap ${LOOP_ITERATION_CAP})`,
          ) || changed;
          continue;
        }
      }
      if (evals > numel(red.shape)) {
        const owner = lk.ownerOf.get(red) ?? red;
        if (owner === r) continue;
        changed = need(
          ctx,
          owner,
          `reduction would be recomputed ${evals / numel(red.shape)}× inside the kernel of ${
            describe(r)
          }`,
        ) || changed;
      }
    }
    // ... and sequential loops count together too: a kernel whose invocation would run
    // past the cap (e.g. a scalar summing the squared norms of a block's parameters) gives
    // its longest inline reduction a kernel of its own, until it fits
    if (loopIterations(lk.ir.body) > LOOP_ITERATION_CAP) {
      let best: Expr | undefined, bestIters = 0;
      for (const [red, evals] of lk.evals) {
        const owner = lk.ownerOf.get(red) ?? red;
        if (owner === r || !ctx.pos.has(owner) || M.has(owner)) continue;
        const len = numel(
          (red.arg as { axes: readonly number[] }).axes.map((a) => red.src[0]!.shape[a]!),
        );
        const iters = (evals / Math.max(1, lk.ir.count)) * len;
        if (iters > bestIters) [best, bestIters] = [owner, iters];
      }
      if (best) {
        changed = need(
          ctx,
          best,
          `the kernel of ${describe(r)} would loop ${
            loopIterations(lk.ir.body)
          } times per invocation (cap ${LOOP_ITERATION_CAP})`,
        ) || changed;
      }
    }
    for (const n of lk.ops) if (isReduction(n)) count.set(n, (count.get(n) ?? 0) + 1);
  }
  for (const [n, c] of count) {
    if (c > 1 && !M.has(n)) changed = need(ctx, n, `reduction shared by ${c} kernels`) || changed;
  }
  return changed;
}

function splitFor(ctx: Ctx, k: PlannedKernel): void {
  const limit = ctx.opts.maxBindings;
  const why = `split: ${k.name} would bind ${k.bindings.length} storage buffers (limit ${limit})`;
  if (k.ir.kind !== "loop") {
    // drop the epilogue: the product is written as is
    const anchor = (k as Built).anchor;
    if (anchor) {
      const R = ctx.regions.get(anchor)!;
      for (const n of R) if (n !== anchor) ctx.claimed.delete(n);
      ctx.regions.set(anchor, [anchor]);
      need(ctx, anchor, why);
    }
    return;
  }
  // loop kernel: materialise the inline node that carries the most loads but fits
  const rootsOf = k.outputs.map((v) => ctx.valueNodes[v]!);
  let best: Expr | undefined, bestLoads = 0;
  for (const root of rootsOf) {
    for (const n of inlineRegion(ctx, root)) {
      // nodes inside a norm's decomposition cannot get a buffer (the norm can)
      if (rootsOf.includes(n) || OP_KIND[n.op] === "movement" || !ctx.pos.has(n)) continue;
      const loads = new Set<Expr>();
      for (const m of inlineRegion(ctx, n)) {
        for (const s of m.op === "norm" ? [normBody(m)] : m.src) {
          if (ctx.M.has(s) || isLoadedLeaf(s)) loads.add(s);
        }
      }
      if (loads.size + 1 <= limit && loads.size > bestLoads) {
        best = n;
        bestLoads = loads.size;
      }
    }
  }
  if (!best) {
    throw new RangeError(
      `Cannot fit kernel ${k.name} into ${limit} storage buffers: no part of it can be split off`,
    );
  }
  need(ctx, best, why);
}

// ---------------------------------------------------------------------------
// Kernel construction

interface Built extends PlannedKernel {
  readonly produces: readonly Expr[];
  readonly anchor?: Expr;
}

interface Ctx {
  valueNodes: Expr[];
}

function lowerLoop(
  ctx: Ctx,
  outs: readonly Expr[],
  load: (e: Expr) => string | undefined,
): {
  ir: LoopKernel;
  evals: Map<Expr, number>;
  ops: Set<Expr>;
  work: number;
  ownerOf: Map<Expr, Expr>;
} {
  const produced = new Set(outs);
  const host = {
    label: num,
    load: (e: Expr) => {
      if (produced.has(e) && OP_KIND[e.op] !== "leaf") return undefined;
      if (ctx.M.has(e) && !produced.has(e)) return load(e) ?? "_";
      if (isLoadedLeaf(e)) return load(e) ?? "_";
      return undefined;
    },
  };
  const F = outs[0]!.shape;
  // Which axes do reductions read at? Probe with one variable per axis.
  const probe = new Lowerer(host, rootBlock(F.map((_, i) => `o${i}`)));
  const pv = F.map((d, i) => ivar(`o${i}`, d));
  const used = new Set<string>();
  for (const o of outs) {
    // (outputs of another shape are scalars merged into a scalar kernel)
    probe.val(o, shapeEq(o.shape, F) ? pv : o.shape.map(() => add(0)));
  }
  // reduction indices: free vars recorded by the probe's statements
  collectReductionVars(probe, used);
  const A = F.map((_d, i) => i).filter((i) =>
    F[i]! > 1 && !used.has(`o${i}`) && probe.reductionEvals.size > 0
  );
  const O = F.map((d, i) => (A.includes(i) ? 1 : d));
  const count = numel(O);
  const gid = "gid";
  const root = rootBlock([gid]);
  const L = new Lowerer(host, root);
  const outerIdx = delinearize(ivar(gid, count), O);
  const rowLen = numel(A.map((a) => F[a]!));
  const rowOuts = outs.filter((o) => A.length > 0 && shapeEq(o.shape, F));
  const pointOuts = outs.filter((o) => !rowOuts.includes(o));
  for (const o of pointOuts) {
    const ix = o.shape.length === O.length ? outerIdx : delinearize(ivar(gid, count), o.shape);
    const v = L.val(o, ix);
    L.emit({ s: "store", buf: load(o) ?? "_", idx: linearize(ix, o.shape), val: v });
  }
  if (rowOuts.length) {
    L.loop(rowLen, (r) => {
      const parts = delinearize(r, A.map((a) => F[a]!));
      const full = F.map((_, i) => (A.includes(i) ? parts[A.indexOf(i)]! : outerIdx[i]!));
      for (const o of rowOuts) {
        const v = L.val(o, full);
        L.emit({ s: "store", buf: load(o) ?? "_", idx: linearize(full, F), val: v });
      }
    });
  }
  const evals = new Map<Expr, number>();
  for (const [r, n] of L.reductionEvals) evals.set(r, n * count);
  return {
    ir: { kind: "loop", count, gid, body: root.stmts, rowLength: rowOuts.length ? rowLen : 1 },
    evals,
    ops: L.ops,
    work: L.work * count,
    ownerOf: L.ownerOf,
  };
}

// The probe marks reduction loops; any outer variable used inside a reduction
// loop's index (or the accumulator's placement) pins that axis to the outer domain.
function collectReductionVars(probe: Lowerer, used: Set<string>): void {
  // Every value a statement inside a (reduction) loop depends on, followed
  // through let-bound values defined outside the loop: a gathered row index
  // (`tok_emb[ids[b, t]]`) reads `b` through `ids`, so `b` is not a row axis.
  // Missing that made LayerNorm over an embedding a "32 rows of 512" kernel
  // that recomputed each row's statistics 64 times (and ran past llvmpipe's
  // loop cap).
  const deps = new Map<string, Set<string>>();
  const roots = new Set<string>();
  const lin = (l: Lin, into: Set<string>) => {
    for (const t of l.terms) atomVars(t.a, into);
  };
  const ref = (r: Ref, into: Set<string>) => {
    if (r.r === "v") into.add(r.name);
  };
  const exprDeps = (x: Stmt & { s: "let" }): Set<string> => {
    const d = new Set<string>();
    const e = x.x;
    if (e.e === "load") lin(e.idx, d);
    else if (e.e === "index") lin(e.ix, d);
    else if (e.e === "inrange") { for (const c of e.conds) lin(c.x, d); }
    else if (e.e === "op") { for (const a of e.args) ref(a, d); }
    else if (e.e === "select") [e.c, e.a, e.b].forEach((r) => ref(r, d));
    else if (e.e === "gidx" || e.e === "gok") ref(e.v, d);
    return d;
  };
  const walk = (stmts: readonly Stmt[], inLoop: boolean) => {
    for (const s of stmts) {
      if (s.s === "loop") walk(s.body, true);
      else if (s.s === "let") {
        const d = exprDeps(s);
        deps.set(s.name, d);
        if (inLoop && (s.x.e === "load" || s.x.e === "index" || s.x.e === "inrange")) {
          for (const v of d) roots.add(v);
        }
      }
    }
  };
  let root = probe.block;
  while (root.parent) root = root.parent;
  walk(root.stmts, false);
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    used.add(v);
    for (const d of deps.get(v) ?? []) stack.push(d);
  }
}

function atomVars(a: import("./index_expr.ts").Atom, into: Set<string>): void {
  if (a.t === "var" || a.t === "ext") into.add(a.name);
  else for (const t of a.x.terms) atomVars(t.a, into);
}

function buildKernels(ctx: Ctx): Built[] {
  // values: leaves first (inputs, params), then materialised nodes in topo order
  const valueOf = new Map<Expr, number>();
  const nodes: Expr[] = [];
  for (const e of ctx.order) {
    if (isLoadedLeaf(e) || ctx.M.has(e)) {
      valueOf.set(e, nodes.length);
      nodes.push(e);
    }
  }
  ctx.valueNodes = nodes;
  const built: Built[] = [];
  let kid = 0;
  const mkBindings = () => {
    const list: Binding[] = [];
    const by = new Map<number, Binding>();
    const bind = (e: Expr, access: "read" | "write"): string => {
      const v = valueOf.get(e);
      if (v === undefined) {
        throw new Error(`Internal error: ${describe(e)} has no buffer (${ctx.M.get(e)})`);
      }
      const hit = by.get(v);
      if (hit) return hit.name;
      const b: Binding = {
        name: `b${list.length}`,
        label: bindingName(e, v),
        buffer: v,
        dtype: e.dtype === "bool" ? "u32" : e.dtype,
        access,
      };
      by.set(v, b);
      list.push(b);
      return b.name;
    };
    return { list, bind };
  };

  // anchors; matmuls that share their A operand run as one kernel (horizontal fusion)
  const done = new Set<Expr>();
  const groups: Expr[][] = [];
  const byA = new Map<Expr, Expr[][]>();
  for (const e of ctx.order) {
    if (!isAnchor(e)) continue;
    if (e.op !== "dot" || !ctx.opts.fusion || ctx.noGroup.has(e)) {
      groups.push([e]);
      continue;
    }
    const A = e.src[0]!;
    const cands = byA.get(A) ?? [];
    const anc = ancestors(ctx, e);
    const g = cands.find((g) =>
      g.every((d) =>
        !anc.has(d) && (ctx.regions.get(d) ?? [d]).every((n) =>
          !anc.has(n) && !ancestors(ctx, n).has(e)
        ) &&
        d.dtype === e.dtype && shapeEq(d.shape.slice(0, -1), e.shape.slice(0, -1))
      )
    );
    if (g) g.push(e);
    else {
      const ng = [e];
      groups.push(ng);
      byA.set(A, [...cands, ng]);
    }
  }
  for (const grp of groups) {
    const e = grp[0]!;
    const regionOf = (d: Expr) => ctx.regions.get(d) ?? [d];
    const all = grp.flatMap(regionOf);
    const outs = all.filter((n) => ctx.M.has(n));
    const { list, bind } = mkBindings();
    for (const o of outs) bind(o, "write");
    const loadHost = {
      label: num,
      load: (n: Expr, peek = false) => {
        if (all.includes(n) && !grp.includes(n)) return undefined;
        if (ctx.M.has(n) || isLoadedLeaf(n)) return peek ? "?" : bind(n, "read");
        return undefined;
      },
    };
    const name = `k${kid++}_${e.op === "dot" ? "matmul" : "attention"}_${NUM.get(e)}`;
    const ops = new Set<Expr>();
    let ir: MatmulKernelIR | AttentionKernelIR;
    let work = 0;
    if (e.op === "dot") {
      const r = lowerMatmul(
        grp.map((d) => ({ e: d, R: regionOf(d), outs: regionOf(d).filter((n) => ctx.M.has(n)) })),
        loadHost,
        bind,
      );
      ir = r.ir;
      r.ops.forEach((o) => ops.add(o));
      work = 2 * ir.batch * ir.m * ir.n * ir.k;
      if (grp.length > 1 && list.length > ctx.opts.maxBindings) {
        // too many buffers for one kernel: run the products separately
        grp.forEach((d) => ctx.noGroup.add(d));
        return buildKernels(ctx);
      }
    } else {
      const R = regionOf(e);
      const r = lowerAttention(e, R, outs, loadHost, bind);
      ir = r.ir;
      r.ops.forEach((o) => ops.add(o));
      work = 2 * ir.bh * ir.tq * ir.tk * (ir.dk + ir.dv);
    }
    grp.forEach((d) => ops.add(d));
    outs.forEach((o) => done.add(o));
    const why = [`${e.op} anchor ${describe(e)}`];
    if (grp.length > 1) {
      why.push(
        `horizontal fusion: ${grp.length} matmuls share operand A ${describe(e.src[0]!)} ` +
          `(${grp.map((d) => num(d)).join(", ")}), columns side by side`,
      );
    }
    built.push({
      ...finishKernel(ctx, name, ir, list, outs, ops, valueOf, work, why),
      anchor: e,
    });
  }
  // loop kernels: one per remaining materialised node, merging elementwise
  // producers into the row kernels that read them
  const rootsLeft = [...ctx.M.keys()].filter((e) => !done.has(e) && !ctx.claimed.has(e));
  rootsLeft.sort((a, b) => ctx.pos.get(a)! - ctx.pos.get(b)!);
  const loopGroups = mergeLoopRoots(ctx, rootsLeft, built);
  for (const outs of loopGroups) {
    const { list, bind } = mkBindings();
    for (const o of outs) bind(o, "write");
    const lk = lowerLoop(ctx, outs, (n) => bind(n, outs.includes(n) ? "write" : "read"));
    const kind = lk.ir.rowLength > 1 ? "row" : [...lk.ops].some(isReduction) ? "reduce" : "map";
    const name = `k${kid++}_${kind}_${NUM.get(outs[0]!)}`;
    const why = [
      kind === "row"
        ? `row kernel: ${lk.ir.count} rows of ${lk.ir.rowLength}, reductions computed once per row`
        : kind === "reduce"
        ? `reduction kernel: ${lk.ir.count} outputs`
        : `elementwise kernel: ${lk.ir.count} elements`,
    ];
    built.push(finishKernel(ctx, name, lk.ir, list, outs, lk.ops, valueOf, lk.work, why));
  }
  return orderKernels(built, valueOf);
}

// Elementwise-only roots of the same shape that a loop kernel reads are written by
// that kernel: the residual add before a norm joins the norm's row kernel, and an
// optimizer's moments join the parameter update that reads them (one kernel writes
// m, v and p). Map kernels only merge when that costs no recomputation (the merged
// kernel does no more work than the two did).
function mergeLoopRoots(ctx: Ctx, roots: Expr[], anchors: readonly Built[]): Expr[][] {
  const groups: Expr[][] = roots.map((r) => [r]);
  if (!ctx.opts.fusion || ctx.opts.mergeLoops === false) return groups;
  const regions = new Map<Expr, Expr[]>();
  const regionOf = (r: Expr) => {
    let x = regions.get(r);
    if (!x) regions.set(r, x = inlineRegion(ctx, r));
    return x;
  };
  const hasRed = (r: Expr) => regionOf(r).some(isReduction);
  const srcsOf = (n: Expr) => n.op === "norm" ? [normBody(n)] : n.src;
  const loadsOf = (g: readonly Expr[]) => {
    const loads = new Set<Expr>();
    for (const x of g) {
      for (const n of regionOf(x)) {
        for (const s of srcsOf(n)) {
          if ((ctx.M.has(s) || isLoadedLeaf(s)) && !g.includes(s)) loads.add(s);
        }
      }
    }
    return loads;
  };
  const workOf = (g: readonly Expr[]) => lowerLoop(ctx, g, () => "_").work;
  const numel1 = (e: Expr) => numel(e.shape) === 1;

  // Kernels as units (anchor kernels fixed, loop groups merging) and who reads what, so a
  // merge never closes a cycle through a third kernel.
  interface Unit {
    outs: Expr[];
    reads: Set<Expr>;
  }
  const readers = new Map<Expr, Set<Unit>>();
  const addReads = (u: Unit) => {
    for (const y of u.reads) {
      let s = readers.get(y);
      if (!s) readers.set(y, s = new Set());
      s.add(u);
    }
  };
  const dropReads = (u: Unit) => {
    for (const y of u.reads) readers.get(y)?.delete(u);
  };
  for (const k of anchors) {
    addReads({
      outs: [...k.produces],
      reads: new Set(
        k.bindings.filter((b) => b.access === "read").map((b) => ctx.valueNodes[b.buffer]!),
      ),
    });
  }
  const unitOf = new Map<Expr[], Unit>();
  for (const g of groups) {
    const u: Unit = { outs: g, reads: loadsOf(g) };
    unitOf.set(g, u);
    addReads(u);
  }
  // a path from → X → … → to through some other kernel X
  const reachesVia = (from: Unit, to: Unit): boolean => {
    const seen = new Set<Unit>([from, to]);
    const stack: Unit[] = [];
    for (const o of from.outs) {
      for (const r of readers.get(o) ?? []) if (!seen.has(r)) seen.add(r), stack.push(r);
    }
    while (stack.length) {
      const u = stack.pop()!;
      for (const o of u.outs) {
        for (const r of readers.get(o) ?? []) {
          if (r === to) return true;
          if (!seen.has(r)) seen.add(r), stack.push(r);
        }
      }
    }
    return false;
  };
  const tryMerge = (g: Expr[], sg: Expr[], checkWork: boolean): boolean => {
    const merged = [...g, ...sg];
    const reads = loadsOf(merged);
    if (reads.size + merged.length > ctx.opts.maxBindings) return false;
    const ug = unitOf.get(g)!, us = unitOf.get(sg)!;
    if (reachesVia(ug, us) || reachesVia(us, ug)) return false;
    const lk = lowerLoop(ctx, merged, () => "_");
    // llvmpipe's loop cap counts every loop an invocation runs, one after another too
    if (loopIterations(lk.ir.body) > LOOP_ITERATION_CAP) return false;
    if (checkWork && lk.work > workOf(g) + workOf(sg)) return false;
    dropReads(ug);
    dropReads(us);
    g.push(...sg);
    sg.length = 0;
    ug.reads = reads;
    addReads(ug);
    unitOf.delete(sg);
    return true;
  };

  const groupOf = new Map<Expr, Expr[]>(groups.map((g) => [g[0]!, g]));
  for (const g of groups) {
    if (g.length === 0) continue;
    const r = g[0]!;
    if (OP_KIND[r.op] === "leaf") continue;
    const rowKernel = hasRed(r);
    // (g grows while it is scanned: sources of merged members are candidates too)
    for (const x of g) {
      for (const n of regionOf(x)) {
        for (const s of srcsOf(n)) {
          const sg = groupOf.get(s);
          if (!sg || sg === g || sg.length === 0) continue;
          if (sg.some((y) => OP_KIND[y.op] === "leaf")) continue;
          // a producer with reductions joins only when nothing is recomputed (a row's mean
          // joins the kernel of its variance); scalar kernels are serial anyway
          const red = sg.some((y) => hasRed(y) && !numel1(y));
          if (!shapeEq(s.shape, r.shape) && !(numel1(s) && numel1(r))) {
            // row statistics join the kernel that normalises the rows (one value per row)
            if (!red || rowKernel || !sg.every((y) => numel(y.shape) === numel(s.shape))) continue;
            if (lowerLoop(ctx, [...g, ...sg], () => "_").ir.count !== numel(s.shape)) continue;
          }
          const members = [...sg];
          if (tryMerge(g, sg, !rowKernel || red)) { for (const y of members) groupOf.set(y, g); }
        }
      }
    }
  }
  // small kernels of one iteration space that do not depend on each other run as one
  // (llvmpipe pays a thread-pool round trip per dispatch; a bias gradient's column sums
  // are 64 invocations of little work)
  const shapeKey = (g: readonly Expr[]) => {
    const k = g[0]!.shape.join(",");
    return g.every((y) => y.shape.join(",") === k) ? k : undefined;
  };
  const small = groups.filter((g) =>
    g.length > 0 && !numel1(g[0]!) && numel(g[0]!.shape) <= SMALL_KERNEL &&
    shapeKey(g) !== undefined && g.every((y) => OP_KIND[y.op] !== "leaf") &&
    lowerLoop(ctx, g, () => "_").ir.rowLength === 1
  );
  for (let i = 0; i < small.length; i++) {
    const g = small[i]!;
    if (g.length === 0) continue;
    for (const sg of small.slice(i + 1)) {
      if (sg.length > 0 && shapeKey(sg) === shapeKey(g)) tryMerge(g, sg, true);
    }
  }
  // scalar kernels (one invocation each) that do not depend on each other run as one
  const scalars = groups.filter((g) =>
    g.length > 0 && g.every((y) => numel1(y) && OP_KIND[y.op] !== "leaf")
  );
  for (let i = 0; i < scalars.length; i++) {
    const g = scalars[i]!;
    if (g.length === 0) continue;
    for (const sg of scalars.slice(i + 1)) {
      if (sg.length > 0) tryMerge(g, sg, false);
    }
  }
  return groups.filter((g) => g.length > 0);
}

/** Loop iterations one invocation runs (nested loops multiply, sequential ones add). */
function loopIterations(stmts: readonly Stmt[]): number {
  let n = 0;
  for (const s of stmts) if (s.s === "loop") n += s.n * (1 + loopIterations(s.body));
  return n;
}

function finishKernel(
  ctx: Ctx,
  name: string,
  ir: LoopKernel | MatmulKernelIR | AttentionKernelIR,
  bindings: Binding[],
  outs: readonly Expr[],
  ops: Set<Expr>,
  valueOf: Map<Expr, number>,
  work: number,
  why: string[],
): Built {
  const reasons = outs.map((o) => `writes ${describe(o)}: ${ctx.M.get(o)}`);
  return {
    name,
    ir,
    bindings,
    outputs: outs.map((o) => valueOf.get(o)!),
    inputs: bindings.filter((b) => b.access === "read").map((b) => b.buffer),
    ops: [...ops].filter((o) => OP_KIND[o.op] !== "leaf").sort((a, b) =>
      (NUM.get(a) ?? a.id) - (NUM.get(b) ?? b.id)
    ).map(
      (o) => `${num(o)} ${o.op}${o.op === "norm" ? `(${(o.arg as { kind: string }).kind})` : ""}`,
    ),
    why: [...why, ...reasons],
    work,
    produces: outs,
    nodes: [...ops].filter((o) => OP_KIND[o.op] !== "leaf").sort((a, b) => a.id - b.id),
  };
}

function orderKernels(ks: Built[], valueOf: Map<Expr, number>): Built[] {
  void valueOf;
  const producer = new Map<number, Built>();
  for (const k of ks) for (const o of k.outputs) producer.set(o, k);
  const out: Built[] = [];
  const state = new Map<Built, number>();
  const visit = (k: Built) => {
    const s = state.get(k);
    if (s === 2) return;
    if (s === 1) {
      throw new Error(`Internal error: kernel ${k.name} depends on itself (fusion cycle)`);
    }
    state.set(k, 1);
    for (const i of k.inputs) {
      const p = producer.get(i);
      if (p && p !== k) visit(p);
    }
    state.set(k, 2);
    out.push(k);
  };
  for (const k of ks) visit(k);
  // names follow execution order
  return out.map((k, i) => ({ ...k, name: k.name.replace(/^k\d+_/, `k${i}_`) }));
}

function bindingName(e: Expr, v: number): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9]/g, "_").replace(/_+/g, "_");
  if (e.op === "input") return `in_${clean((e.arg as { name: string }).name)}_${v}`;
  if (e.op === "param") return `p_${clean((e.arg as { name: string }).name)}_${v}`;
  return `t${v}`;
}

// ---------------------------------------------------------------------------
// Matmul and attention hooks

function bodyOf(
  host: { load(e: Expr): string | undefined; label?(e: Expr): string },
  vars: readonly [string, number][],
  f: (L: Lowerer, v: Lin[]) => Ref | undefined,
  ops: Set<Expr>,
): Body {
  const root: Block = rootBlock(vars.map(([n]) => n));
  const L = new Lowerer(host, root);
  const ret = f(L, vars.map(([n, d]) => ivar(n, d)));
  L.ops.forEach((o) => ops.add(o));
  return { stmts: root.stmts, ret };
}

// A's (or B's) element index when it is a plain f32 buffer read through
// reshapes, permutes and broadcasts, so the template may use vec4 loads.
function direct(
  e: Expr,
  idx: readonly Lin[],
  loaded: (e: Expr) => boolean,
): { base: Expr; idx: Lin } | undefined {
  let b = e;
  let ix: Lin[] = [...idx];
  while (!loaded(b)) {
    if (b.op === "reshape") {
      ix = reshapeIndex(ix, b.shape, b.src[0]!.shape);
      b = b.src[0]!;
    } else if (b.op === "expand") {
      const s = b.src[0]!;
      ix = s.shape.map((d, a) => (d === 1 ? add(0) : ix[a]!));
      b = s;
    } else if (isOp(b, "permute")) {
      const src = new Array<Lin>(ix.length);
      b.arg.perm.forEach((p, i) => (src[p] = ix[i]!));
      ix = src;
      b = b.src[0]!;
    } else return undefined;
  }
  if (b.dtype !== "f32") return undefined;
  return { base: b, idx: linearize(ix, b.shape) };
}

function lowerMatmul(
  dots: readonly { e: Expr; R: readonly Expr[]; outs: readonly Expr[] }[],
  host: { load(e: Expr, peek?: boolean): string | undefined; label?(e: Expr): string },
  bind: (e: Expr, a: "read" | "write") => string,
): { ir: MatmulKernelIR; ops: Set<Expr> } {
  const e0 = dots[0]!.e;
  const A = e0.src[0]!;
  const r = A.shape.length;
  const batchShape = A.shape.slice(0, -2);
  const batch = numel(batchShape);
  const m = A.shape[r - 2]!, k = A.shape[r - 1]!;
  const ops = new Set<Expr>();
  const bIdx = (b: Lin) => delinearize(b, batchShape);
  const a = bodyOf(
    host,
    [["b", batch], ["i", m], ["kk", k]],
    (L, [b, i, kk]) => L.val(A, [...bIdx(b!), i!, kk!]),
    ops,
  );
  const bv = ivar("b", batch), iv = ivar("i", m), kv = ivar("kk", k);
  const isLoaded = (x: Expr) => host.load(x, true) !== undefined;
  const da = direct(A, [...bIdx(bv), iv, kv], isLoaded);
  const aDirect = da && aligned(da.idx, "kk")
    ? { buf: host.load(da.base)!, idx: da.idx }
    : undefined;
  const aDirectI = !aDirect && da && aligned(da.idx, "i")
    ? { buf: host.load(da.base)!, idx: da.idx }
    : undefined;
  const parts: MatmulPart[] = dots.map(({ e, R, outs }) => {
    const B = e.src[1]!;
    const n = B.shape[r - 1]!;
    const bb = bodyOf(
      host,
      [["b", batch], ["kk", k], ["j", n]],
      (L, [b, kk, j]) => L.val(B, [...bIdx(b!), kk!, j!]),
      ops,
    );
    const store = bodyOf(host, [["b", batch], ["i", m], ["j", n]], (L, [b, i, j]) => {
      epilogue(L, e, [...bIdx(b!), i!, j!], { r: "v", name: "acc", dtype: e.dtype }, R, outs, bind);
      return undefined;
    }, ops);
    const db = direct(B, [...bIdx(bv), kv, ivar("j", n)], isLoaded);
    const bDirect = db && aligned(db.idx, "j") && n % 4 === 0
      ? { buf: host.load(db.base)!, idx: db.idx }
      : undefined;
    const bDirectK = !bDirect && db && aligned(db.idx, "kk")
      ? { buf: host.load(db.base)!, idx: db.idx }
      : undefined;
    return { n, b: bb, store, bDirect, bDirectK, dot: e };
  });
  const n = parts.reduce((s, p) => s + p.n, 0);
  return { ir: { kind: "matmul", batch, m, n, k, a, aDirect, aDirectI, parts }, ops };
}

// vec4 loads need unit stride along `v` and every other part a multiple of 4.
function aligned(x: Lin, v: string): boolean {
  if (x.k % 4 !== 0) return false;
  // v itself, or v % d with 4 | d: four consecutive v (from a multiple of 4) are
  // four consecutive elements; v / d with 4 | d is constant over them
  const isV = (y: Lin) =>
    y.k === 0 && y.terms.length === 1 && y.terms[0]!.c === 1 &&
    y.terms[0]!.a.t === "var" && y.terms[0]!.a.name === v;
  let unit = false;
  for (const t of x.terms) {
    const a = t.a;
    const uses = new Set<string>();
    atomVars(a, uses);
    if ((a.t === "var" && a.name === v) || (a.t === "mod" && a.d % 4 === 0 && isV(a.x))) {
      if (t.c !== 1 || unit) return false;
      unit = true;
    } else if (a.t === "div" && a.d % 4 === 0 && isV(a.x)) {
      if (t.c % 4 !== 0) return false;
    } else if (uses.has(v) || t.c % 4 !== 0) return false;
  }
  return unit;
}

function epilogue(
  L: Lowerer,
  anchor: Expr,
  idx: Lin[],
  acc: Ref,
  R: readonly Expr[],
  outs: readonly Expr[],
  bind: (e: Expr, a: "read" | "write") => string,
): void {
  const at = new Map<Expr, Lin[]>([[anchor, idx]]);
  const vals = new Map<Expr, Ref>([[anchor, acc]]);
  L.seed(anchor, idx, acc);
  for (const n of R) {
    if (n === anchor) continue;
    if (isBijView(n)) {
      const ix = forwardView(n, at.get(n.src[0]!)!);
      at.set(n, ix);
      const v = vals.get(n.src[0]!)!;
      vals.set(n, v);
      L.seed(n, ix, v);
    } else {
      const src = n.src.find((s) => at.has(s))!;
      const ix = at.get(src)!;
      at.set(n, ix);
      vals.set(n, L.val(n, ix));
    }
  }
  for (const o of outs) {
    L.emit({
      s: "store",
      buf: bind(o, "write"),
      idx: linearize(at.get(o)!, o.shape),
      val: vals.get(o)!,
    });
  }
}

function lowerAttention(
  e: Expr,
  R: readonly Expr[],
  outs: readonly Expr[],
  host: { load(e: Expr, peek?: boolean): string | undefined; label?(e: Expr): string },
  bind: (e: Expr, a: "read" | "write") => string,
): { ir: AttentionKernelIR; ops: Set<Expr> } {
  const [q, k, v] = e.src as [Expr, Expr, Expr];
  const r = q.shape.length;
  const lead = q.shape.slice(0, -2);
  const bh = numel(lead);
  const tq = q.shape[r - 2]!, dk = q.shape[r - 1]!, tk = k.shape[r - 2]!, dv = v.shape[r - 1]!;
  const ops = new Set<Expr>();
  const lIdx = (b: Lin) => delinearize(b, lead);
  const ld = (x: Expr, t: number, d: number) =>
    bodyOf(
      host,
      [["bh", bh], ["t", t], ["c", d]],
      (L, [b, ti, c]) => L.val(x, [...lIdx(b!), ti!, c!]),
      ops,
    );
  const store = bodyOf(host, [["bh", bh], ["t", tq], ["c", dv]], (L, [b, ti, c]) => {
    epilogue(L, e, [...lIdx(b!), ti!, c!], { r: "v", name: "o", dtype: e.dtype }, R, outs, bind);
    return undefined;
  }, ops);
  const arg = e.arg as { causal: boolean; scale: number };
  const isLoaded = (x: Expr) => host.load(x, true) !== undefined;
  const dir = (x: Expr, t: number, d: number) => {
    if (d % 4 !== 0) return undefined;
    const di = direct(x, [...lIdx(ivar("bh", bh)), ivar("t", t), ivar("c", d)], isLoaded);
    return di && aligned(di.idx, "c") ? { buf: host.load(di.base)!, idx: di.idx } : undefined;
  };
  return {
    ir: {
      direct: { q: dir(q, tq, dk), k: dir(k, tk, dk), v: dir(v, tk, dv) },
      kind: "attention",
      bh,
      tq,
      tk,
      dk,
      dv,
      causal: arg.causal,
      scale: arg.scale,
      q: ld(q, tq, dk),
      k: ld(k, tk, dk),
      v: ld(v, tk, dv),
      store,
    },
    ops,
  };
}

// ---------------------------------------------------------------------------

function finish(
  ctx: Ctx,
  kernels: Built[],
  roots: readonly Expr[],
  nOut: number,
  updNames: readonly string[],
): Plan {
  const nodes = ctx.valueNodes;
  // A kernel past llvmpipe's loop cap would be silently wrong there: refuse it loudly.
  for (const k of kernels) {
    const n = k.ir.kind === "loop" ? loopIterations(k.ir.body) : 0;
    if (n > 65535) {
      throw new LoopCapError(
        `Cannot compile ${k.name} (writes ${k.produces.map(describe).join(", ")}): one ` +
          `invocation would run ${n} loop iterations, past the ` +
          `65535 that Mesa's llvmpipe executes before silently stopping a loop; this is a ` +
          `planner limitation, please report it with the graph (workaround: make an ` +
          `intermediate value a program output so it gets its own kernel)`,
      );
    }
  }
  const produced = new Map<number, Built>();
  for (const k of kernels) for (const o of k.outputs) produced.set(o, k);
  const outSet = new Set(roots.map((r) => nodes.indexOf(r)));
  const values: Value[] = nodes.map((node, id) => ({
    id,
    node,
    role: node.op === "input"
      ? "input"
      : node.op === "param"
      ? "param"
      : outSet.has(id)
      ? "output"
      : "temp",
    dtype: node.dtype,
    numel: numel(node.shape),
    reason: ctx.M.get(node) ?? node.op,
  }));
  // a leaf (or a value no kernel writes) that is an output needs a copy kernel:
  // roots are materialised, and loop kernels copy leaves, so this cannot happen
  for (const r of roots) {
    const id = nodes.indexOf(r);
    if (!produced.has(id) && !isLoadedLeaf(r)) {
      throw new Error(`Internal error: output ${describe(r)} is produced by no kernel`);
    }
  }
  const updates = updNames.map((name, i) => {
    const v = nodes.indexOf(roots[nOut + i]!);
    const p = nodes.findIndex((n) => n.op === "param" && (n.arg as { name: string }).name === name);
    return { param: p, value: v };
  });
  return {
    values,
    kernels,
    outputs: roots.slice(0, nOut).map((r) => nodes.indexOf(r)),
    updates,
    roots,
  };
}
