/**
 * WGSL emission: prints planned kernels (lib/compile kernel IR) as complete,
 * deterministic, readable WGSL modules.
 *
 * Conservative on purpose so both Naga (Deno) and Tint (browsers) accept it:
 * typed bindings in group 0, u32 index arithmetic, no `enable` directives
 * except `f16` when the device has `shader-f16`, no overrides, and
 * non-finite constants written as run-time bit casts of a private variable
 * (`bitcast<f32>(nx_nonfinite.y)` for −∞), since WGSL rejects const-expressions
 * that evaluate to infinity or NaN. All arithmetic on
 * floats is f32 (f16 is a storage format only); bool is stored as u32.
 *
 * Bindings are named by number (`b0`, `b1`, …) and everything kernel-specific
 * (kernel and node names, buffer labels) lives in comments, so kernels that
 * differ only in which buffers they bind (the same sublayer in every layer)
 * print the same code once comments are stripped and share one pipeline.
 *
 * @module
 */

import type { DType } from "../lib/ir/dtype.ts";
import type { Atom, Lin } from "../lib/compile/index_expr.ts";
import type { Binding, Body, KExpr, Ref, Stmt } from "../lib/compile/kir.ts";
import type {
  AttentionKernelIR,
  LoopKernel,
  MatmulKernelIR,
  PlannedKernel,
} from "../lib/compile/plan.ts";
import { type MatmulDeviceInfo, matmulKernel } from "./matmul.ts";

/** Device facts emission depends on. */
export interface EmitDevice extends MatmulDeviceInfo {
  /** f16 values are stored as f16 (device has shader-f16) rather than f32 */
  f16Storage: boolean;
}

/** A kernel ready for pipeline creation. */
export interface EmittedKernel {
  /** complete WGSL module, entry point `main` */
  code: string;
  /** workgroup counts */
  readonly dispatch: [number, number, number];
  /** `@workgroup_size` */
  readonly workgroupSize: [number, number, number];
  /** e.g. the matmul template's description */
  readonly description: string;
  /** the bindings, in binding-number order */
  readonly bindings: readonly Binding[];
}

const U = (v: number): string => `${v}u`;

/** Module-scope bit patterns of +Inf, -Inf and NaN (see {@link f32Lit}). */
const NONFINITE = "nx_nonfinite";
const NONFINITE_DECL =
  `var<private> ${NONFINITE}: vec3<u32> = vec3<u32>(0x7f800000u, 0xff800000u, 0x7fc00000u);`;

/**
 * Formats a number as a WGSL f32 expression. Non-finite values become
 * bit casts of a private variable (`bitcast<f32>(nx_nonfinite.x)`): WGSL
 * rejects const-expressions that evaluate to infinity or NaN.
 *
 * @param v a number
 * @returns WGSL text
 */
export function f32Lit(v: number): string {
  const f = Math.fround(v);
  // a bitcast of a private variable is a runtime value: WGSL (Tint) rejects
  // const-expressions that evaluate to NaN or infinity, even via bitcast
  if (Number.isNaN(f)) return `bitcast<f32>(${NONFINITE}.z)`;
  if (f === Infinity) return `bitcast<f32>(${NONFINITE}.x)`;
  if (f === -Infinity) return `bitcast<f32>(${NONFINITE}.y)`;
  let s = String(v);
  if (Math.fround(Number(s)) !== f) s = String(f);
  if (Object.is(f, -0)) s = "-0.0";
  const t = `${s}f`;
  return s.startsWith("-") ? `(${t})` : t;
}

function litText(r: Ref & { r: "c" }): string {
  switch (r.dtype) {
    case "f32":
    case "f16":
      return f32Lit(r.value);
    case "i32":
      if (r.value === -2147483648) return "bitcast<i32>(0x80000000u)";
      return r.value < 0 ? `(${r.value}i)` : `${r.value}i`;
    case "u32":
      return `${r.value >>> 0}u`;
    case "bool":
      return r.value ? "true" : "false";
  }
}

/**
 * The register type of a dtype (f16 computes in f32).
 *
 * @param d a dtype
 * @returns a WGSL scalar type
 */
export function regType(d: DType): string {
  return d === "f16" || d === "f32" ? "f32" : d === "bool" ? "bool" : d;
}

function storeType(d: DType, f16: boolean): string {
  return d === "f16" ? (f16 ? "f16" : "f32") : d === "bool" ? "u32" : d;
}

/**
 * Prints an index expression as u32 WGSL.
 *
 * @param x the expression
 * @returns WGSL text (non-negative by construction)
 */
export function linText(x: Lin): string {
  const pos: string[] = [], neg: string[] = [];
  for (const t of x.terms) {
    const a = atomText(t.a);
    const c = Math.abs(t.c);
    const term = c === 1 ? a : `${a} * ${U(c)}`;
    (t.c > 0 ? pos : neg).push(term);
  }
  if (x.k > 0) pos.push(U(x.k));
  if (x.k < 0) neg.push(U(-x.k));
  if (pos.length === 0) return "0u";
  let s = pos.join(" + ");
  for (const n of neg) s += ` - ${n}`;
  return s;
}

function atomText(a: Atom): string {
  const wrap = (x: Lin) => {
    const t = linText(x);
    return /^\w+$/.test(t) ? t : `(${t})`;
  };
  switch (a.t) {
    case "var":
    case "ext":
      return a.name;
    case "div":
      return `(${wrap(a.x)} / ${U(a.d)})`;
    case "mod":
      return `(${wrap(a.x)} % ${U(a.d)})`;
    case "clamp":
      return `clamp(${linText(a.x)}, ${U(a.lo)}, ${U(a.hi)})`;
  }
}

interface Ctx {
  bind: Map<string, Binding>;
  f16: boolean;
}

function ref(r: Ref): string {
  return r.r === "v" ? r.name : litText(r);
}

function loadText(ctx: Ctx, buf: string, idx: Lin, dtype: DType): string {
  const b = ctx.bind.get(buf)!;
  const i = linText(idx);
  const raw = b.vec4 ? `${buf}[(${i}) / 4u][(${i}) % 4u]` : `${buf}[${i}]`;
  if (dtype === "bool") return `(${raw} != 0u)`;
  if (dtype === "f16") return ctx.f16 ? `f32(${raw})` : raw;
  return raw;
}

function castText(a: string, from: DType, to: DType): string {
  const rf = regType(from), rt = regType(to);
  if (rf === rt) return a;
  if (rt === "bool") return `(${a} != ${rf === "f32" ? "0.0f" : rf === "i32" ? "0i" : "0u"})`;
  if (rf === "bool") {
    return `select(${rt === "f32" ? "0.0f, 1.0f" : rt === "i32" ? "0i, 1i" : "0u, 1u"}, ${a})`;
  }
  if (rt === "f32") return `f32(${a})`;
  if (rt === "i32") return rf === "u32" ? `bitcast<i32>(${a})` : `i32(${a})`;
  // to u32: wrap negatives like the interpreter (trunc, then modulo 2^32)
  return rf === "i32" ? `bitcast<u32>(${a})` : `bitcast<u32>(i32(${a}))`;
}

function opText(x: KExpr & { e: "op" }): string {
  const a = x.args.map(ref);
  const d = regType(x.argDtype);
  const isInt = d === "i32" || d === "u32";
  const zero = d === "i32" ? "0i" : "0u";
  switch (x.op) {
    case "neg":
      return d === "u32" ? `(0u - ${a[0]})` : `(-${a[0]})`;
    case "recip":
      return `(1.0f / ${a[0]})`;
    case "exp":
    case "log":
    case "sqrt":
    case "sin":
    case "cos":
    case "abs":
      return `${x.op}(${a[0]})`;
    case "rsqrt":
      return `inverseSqrt(${a[0]})`;
    case "tanh":
      // tanh(x) = 1 for |x| > 15 in f32; clamping avoids inf/inf in exp-based implementations
      return `tanh(clamp(${a[0]}, -15.0f, 15.0f))`;
    case "add":
      return `(${a[0]} + ${a[1]})`;
    case "sub":
      return `(${a[0]} - ${a[1]})`;
    case "mul":
      return `(${a[0]} * ${a[1]})`;
    case "div":
      return isInt
        ? `select(${a[0]} / ${a[1]}, ${zero}, ${a[1]} == ${zero})`
        : `(${a[0]} / ${a[1]})`;
    case "max":
      return d === "bool" ? `(${a[0]} || ${a[1]})` : `max(${a[0]}, ${a[1]})`;
    case "min":
      return d === "bool" ? `(${a[0]} && ${a[1]})` : `min(${a[0]}, ${a[1]})`;
    case "lt":
      return `(${a[0]} < ${a[1]})`;
    case "le":
      return `(${a[0]} <= ${a[1]})`;
    case "eq":
      return `(${a[0]} == ${a[1]})`;
    case "where":
      return `select(${a[2]}, ${a[1]}, ${a[0]})`;
    default:
      throw new Error(`Internal error: no WGSL for op ${x.op}`);
  }
}

function exprText(ctx: Ctx, x: KExpr, dtype: DType): string {
  switch (x.e) {
    case "load":
      return loadText(ctx, x.buf, x.idx, dtype);
    case "op":
      if (x.op === "cast") return castText(ref(x.args[0]!), x.argDtype, dtype);
      return opText(x);
    case "index": {
      const t = linText(x.ix);
      return dtype === "u32" ? t : `${regType(dtype)}(${t})`;
    }
    case "inrange":
      return x.conds.map((c) => {
        const t = linText(c.x);
        const parts: string[] = [];
        if (c.lo > 0) parts.push(`${t} >= ${U(c.lo)}`);
        parts.push(`${t} <= ${U(c.hi)}`);
        return parts.join(" && ");
      }).join(" && ");
    case "select":
      return `select(${ref(x.b)}, ${ref(x.a)}, ${ref(x.c)})`;
    case "gidx":
      return x.v.dtype === "u32"
        ? `min(${ref(x.v)}, ${U(x.n - 1)})`
        : `u32(clamp(${ref(x.v)}, 0i, ${x.n - 1}i))`;
    case "gok":
      return x.v.dtype === "u32"
        ? `(${ref(x.v)} < ${U(x.n)})`
        : `(${ref(x.v)} >= 0i && ${ref(x.v)} < ${x.n}i)`;
  }
}

function stmtsText(ctx: Ctx, stmts: readonly Stmt[], ind: string, out: string[]): void {
  for (const s of stmts) {
    switch (s.s) {
      case "let": {
        const note = s.note ? ` // ${s.note}` : "";
        out.push(
          `${ind}let ${s.name}: ${regType(s.dtype)} = ${exprText(ctx, s.x, s.dtype)};${note}`,
        );
        break;
      }
      case "var":
        out.push(`${ind}var ${s.name}: ${regType(s.dtype)} = ${ref(s.init)};`);
        break;
      case "loop":
        out.push(`${ind}for (var ${s.v} = 0u; ${s.v} < ${U(s.n)}; ${s.v}++) {`);
        stmtsText(ctx, s.body, ind + "  ", out);
        out.push(`${ind}}`);
        break;
      case "acc":
        out.push(
          s.op === "sum"
            ? `${ind}${s.name} += ${ref(s.val)};`
            : `${ind}${s.name} = max(${s.name}, ${ref(s.val)});`,
        );
        break;
      case "store": {
        const b = ctx.bind.get(s.buf)!;
        const v = ref(s.val);
        const val = s.val.dtype === "bool"
          ? `select(0u, 1u, ${v})`
          : b.dtype === "f16" && ctx.f16
          ? `f16(${v})`
          : v;
        out.push(`${ind}${s.buf}[${linText(s.idx)}] = ${val};`);
        break;
      }
    }
  }
}

function header(ctx: Ctx, bindings: readonly Binding[], title: string[]): string {
  const L: string[] = [];
  if (ctx.f16 && bindings.some((b) => b.dtype === "f16")) L.push("enable f16;", "");
  for (const t of title) L.push(`// ${t}`);
  bindings.forEach((b, i) => {
    const el = b.vec4 ? "vec4<f32>" : storeType(b.dtype, ctx.f16);
    const acc = b.access === "read" ? "read" : "read_write";
    L.push(
      `@group(0) @binding(${i}) var<storage, ${acc}> ${b.name}: array<${el}>; // ${b.label}`,
    );
  });
  return L.join("\n");
}

function fnText(
  ctx: Ctx,
  name: string,
  params: string,
  body: Body,
  retType: string | undefined,
): string {
  const L: string[] = [`fn ${name}(${params})${retType ? ` -> ${retType}` : ""} {`];
  stmtsText(ctx, body.stmts, "  ", L);
  if (retType && body.ret) {
    const r = ref(body.ret);
    L.push(`  return ${regType(body.ret.dtype) === "f32" ? r : `f32(${r})`};`);
  }
  L.push("}");
  return L.join("\n");
}

function fold(count: number, maxDim: number): [number, number, number] {
  const x = Math.max(1, Math.min(count, maxDim));
  const y = Math.ceil(count / x);
  if (y > maxDim) {
    throw new RangeError(`Cannot dispatch ${count} workgroups: more than ${maxDim}² per kernel`);
  }
  return [x, y, 1];
}

function emitLoop(ctx: Ctx, k: PlannedKernel, ir: LoopKernel, dev: EmitDevice): EmittedKernel {
  const wg = Math.max(1, Math.min(64, ir.count));
  const groups = Math.ceil(ir.count / wg);
  const dispatch = fold(groups, dev.maxComputeWorkgroupsPerDimension);
  const L: string[] = [
    header(ctx, k.bindings, [`${k.name}: ${k.why[0]}`, `ops: ${k.ops.join(", ")}`]),
  ];
  L.push("");
  L.push(`@compute @workgroup_size(${wg}, 1, 1)`);
  L.push(`fn main(@builtin(global_invocation_id) g: vec3<u32>) {`);
  L.push(`  let ${ir.gid} = g.x + g.y * ${U(dispatch[0] * wg)};`);
  L.push(`  if (${ir.gid} >= ${U(ir.count)}) { return; }`);
  stmtsText(ctx, ir.body, "  ", L);
  L.push("}", "");
  return {
    code: L.join("\n"),
    dispatch,
    workgroupSize: [wg, 1, 1],
    description: ir.rowLength > 1
      ? `row kernel, ${ir.count} rows × ${ir.rowLength}`
      : `${ir.count} invocations`,
    bindings: k.bindings,
  };
}

function emitMatmul(
  ctx: Ctx,
  k: PlannedKernel,
  ir: MatmulKernelIR,
  dev: EmitDevice,
): EmittedKernel {
  if (ir.aDirect) ctx.bind.get(ir.aDirect.buf)!.vec4 = true;
  if (ir.aDirectI) ctx.bind.get(ir.aDirectI.buf)!.vec4 = true;
  const bVec4 = ir.parts.every((p) => p.bDirect);
  if (bVec4) { for (const p of ir.parts) ctx.bind.get(p.bDirect!.buf)!.vec4 = true; }
  const bVec4K = !bVec4 && ir.parts.every((p) => p.bDirectK);
  if (bVec4K) { for (const p of ir.parts) ctx.bind.get(p.bDirectK!.buf)!.vec4 = true; }
  const P: string[] = [
    header(ctx, k.bindings, [`${k.name}: ${k.why[0]}`, `ops: ${k.ops.join(", ")}`]),
  ];
  P.push("");
  P.push(fnText(ctx, "mm_a", "b: u32, i: u32, kk: u32", ir.a, "f32"));
  if (ir.aDirect) {
    P.push(
      `fn mm_a4(b: u32, i: u32, kk: u32) -> vec4<f32> {\n  return ${ir.aDirect.buf}[(${
        linText(ir.aDirect.idx)
      }) / 4u];\n}`,
    );
  }
  if (ir.aDirectI && ir.m % 4 === 0) {
    // the template calls mm_a4i with i a multiple of 4 when 4 | m: one aligned vec4
    P.push(
      `fn mm_a4i(b: u32, i: u32, kk: u32) -> vec4<f32> {\n  return ${ir.aDirectI.buf}[(${
        linText(ir.aDirectI.idx)
      }) / 4u];\n}`,
    );
  } else if (ir.aDirectI) {
    // contiguous along i; a vec4 load when the start is aligned, else four scalars
    P.push(
      `fn mm_a4i(b: u32, i: u32, kk: u32) -> vec4<f32> {\n  let x = ${
        linText(ir.aDirectI.idx)
      };\n` +
        `  if ((x & 3u) == 0u) { return ${ir.aDirectI.buf}[x / 4u]; }\n` +
        `  return vec4<f32>(mm_a(b, i, kk), mm_a(b, i + 1u, kk), mm_a(b, i + 2u, kk), ` +
        `mm_a(b, i + 3u, kk));\n}`,
    );
  }
  // the template calls mm_b4k with kk a multiple of 4, and aligned() made every other
  // stride a multiple of 4: the load is always one aligned vec4
  const b4k = (p: MatmulKernelIR["parts"][number], name: string) =>
    `fn ${name}(b: u32, kk: u32, j: u32) -> vec4<f32> {\n` +
    `  return ${p.bDirectK!.buf}[(${linText(p.bDirectK!.idx)}) / 4u];\n}`;
  const b4 = (p: MatmulKernelIR["parts"][number]) =>
    `${p.bDirect!.buf}[(${linText(p.bDirect!.idx)}) / 4u]`;
  if (ir.parts.length === 1) {
    const p = ir.parts[0]!;
    P.push(fnText(ctx, "mm_b", "b: u32, kk: u32, j: u32", p.b, "f32"));
    P.push(fnText(ctx, "mm_store", "b: u32, i: u32, j: u32, acc: f32", p.store, undefined));
    if (bVec4) P.push(`fn mm_b4(b: u32, kk: u32, j: u32) -> vec4<f32> {\n  return ${b4(p)};\n}`);
    if (bVec4K) P.push(b4k(p, "mm_b4k"));
  } else {
    // horizontally fused products: columns [off, off + n) belong to part q
    const offs: number[] = [];
    let off = 0;
    ir.parts.forEach((p, q) => {
      offs.push(off);
      off += p.n;
      P.push(fnText(ctx, `mm_b_${q}`, "b: u32, kk: u32, j: u32", p.b, "f32"));
      P.push(fnText(ctx, `mm_store_${q}`, "b: u32, i: u32, j: u32, acc: f32", p.store, undefined));
    });
    const route = (ret: string, call: (q: number, j: string) => string) => {
      const L: string[] = [];
      ir.parts.forEach((p, q) => {
        const j = offs[q] ? `j - ${U(offs[q]!)}` : "j";
        const c = call(q, j);
        if (q === ir.parts.length - 1) L.push(`  ${ret}${c};`);
        else L.push(`  if (j < ${U(offs[q]! + p.n)}) { ${ret}${c}; ${ret ? "" : "return; "}}`);
      });
      return L.join("\n");
    };
    P.push(
      `fn mm_b(b: u32, kk: u32, j: u32) -> f32 {\n${
        route("return ", (q, j) => `mm_b_${q}(b, kk, ${j})`)
      }\n}`,
    );
    P.push(
      `fn mm_store(b: u32, i: u32, j: u32, acc: f32) {\n${
        route("", (q, j) => `mm_store_${q}(b, i, ${j}, acc)`)
      }\n}`,
    );
    if (bVec4) {
      const withJ = (q: number, j: string) => {
        const p = ir.parts[q]!;
        return `${p.bDirect!.buf}[(${
          linText(p.bDirect!.idx).replaceAll(/\bj\b/g, `(${j})`)
        }) / 4u]`;
      };
      P.push(`fn mm_b4(b: u32, kk: u32, j: u32) -> vec4<f32> {\n${route("return ", withJ)}\n}`);
    }
    if (bVec4K) {
      ir.parts.forEach((p, q) => P.push(b4k(p, `mm_b4k_${q}`)));
      P.push(
        `fn mm_b4k(b: u32, kk: u32, j: u32) -> vec4<f32> {\n${
          route("return ", (q, j) => `mm_b4k_${q}(b, kk, ${j})`)
        }\n}`,
      );
    }
  }
  // aVec4I/bVec4K are optional template inputs (transposed operands); a template
  // that does not know them never calls mm_a4i/mm_b4k, which then stay unused
  const spec = {
    batch: ir.batch,
    m: ir.m,
    n: ir.n,
    k: ir.k,
    prelude: P.join("\n"),
    aVec4: !!ir.aDirect,
    bVec4,
    aVec4I: !!ir.aDirectI,
    bVec4K,
  };
  const mk = matmulKernel(spec, dev);
  return { ...mk, bindings: k.bindings };
}

function emitAttention(
  ctx: Ctx,
  k: PlannedKernel,
  ir: AttentionKernelIR,
  dev: EmitDevice,
): EmittedKernel {
  for (const d of [ir.direct.q, ir.direct.k, ir.direct.v]) if (d) ctx.bind.get(d.buf)!.vec4 = true;
  const P: string[] = [
    header(ctx, k.bindings, [`${k.name}: ${k.why[0]}`, `ops: ${k.ops.join(", ")}`]),
  ];
  P.push("");
  P.push(fnText(ctx, "att_q", "bh: u32, t: u32, c: u32", ir.q, "f32"));
  P.push(fnText(ctx, "att_k", "bh: u32, t: u32, c: u32", ir.k, "f32"));
  P.push(fnText(ctx, "att_v", "bh: u32, t: u32, c: u32", ir.v, "f32"));
  P.push(fnText(ctx, "att_store", "bh: u32, t: u32, c: u32, o: f32", ir.store, undefined));
  const vec = ir.dk % 4 === 0 && ir.dv % 4 === 0;
  if (vec) {
    for (const x of ["q", "k", "v"] as const) {
      const d = ir.direct[x];
      const body = d
        ? `return ${d.buf}[(${linText(d.idx)}) / 4u];`
        : `return vec4<f32>(att_${x}(bh, t, c), att_${x}(bh, t, c + 1u), att_${x}(bh, t, c + 2u), ` +
          `att_${x}(bh, t, c + 3u));`;
      P.push(`fn att_${x}4(bh: u32, t: u32, c: u32) -> vec4<f32> {\n  ${body}\n}`);
    }
  }
  const { code, wg, dispatch, qb } = vec ? attentionVec4(ir, dev) : attentionTemplate(ir, dev);
  return {
    code: `${P.join("\n")}\n${code}`,
    dispatch,
    workgroupSize: [wg, 1, 1],
    description:
      `attention online softmax${vec ? " vec4" : ""}, ${qb} query rows per invocation, ` +
      `${ir.bh}×${ir.tq}×${ir.tk}`,
    bindings: k.bindings,
  };
}

/**
 * The entry point shared by both attention templates: one invocation per
 * (batch·head, block of up to 4 query rows), workgroups of up to 8.
 *
 * @param ir sizes
 * @param dev device limits
 * @returns rows per invocation, workgroup size, dispatch, and the opening WGSL lines
 */
function attentionEntry(
  ir: AttentionKernelIR,
  dev: EmitDevice,
): { qb: number; wg: number; dispatch: [number, number, number]; L: string[] } {
  // measured on llvmpipe (4 rows × 2 keys beat 2×2, 4×4, 8×4 and 8×8 or tied with smaller code)
  const qb = Math.min(4, ir.tq);
  const nb = Math.ceil(ir.tq / qb);
  const total = ir.bh * nb;
  const wg = Math.min(8, total);
  const dispatch = fold(Math.ceil(total / wg), dev.maxComputeWorkgroupsPerDimension);
  const L: string[] = [];
  L.push(`@compute @workgroup_size(${wg}, 1, 1)`);
  L.push(`fn main(@builtin(global_invocation_id) g: vec3<u32>) {`);
  L.push(`  let w = g.x + g.y * ${U(dispatch[0] * wg)};`);
  L.push(`  if (w >= ${U(total)}) { return; }`);
  L.push(`  let bh = w / ${U(nb)};`);
  L.push(`  let iFirst = (w % ${U(nb)}) * ${U(qb)};`);
  L.push(
    `  // the last block is shifted back to end at Tq; it stores only rows no other block stores`,
  );
  L.push(`  let i0 = min(iFirst, ${U(ir.tq - qb)});`);
  return { qb, wg, dispatch, L };
}

/**
 * The fused attention loop with vec4 registers: one invocation per
 * (batch·head, block of query rows); keys are visited in blocks of 2 with an
 * online softmax (one rescale per block), so the Tq×Tk scores never reach
 * memory and every key/value load serves all rows of the block.
 *
 * @param ir sizes and options
 * @param dev device limits
 * @returns the WGSL (after the hooks), workgroup size, dispatch, rows per invocation
 */
function attentionVec4(
  ir: AttentionKernelIR,
  dev: EmitDevice,
): { code: string; wg: number; dispatch: [number, number, number]; qb: number } {
  const { qb, wg, dispatch, L } = attentionEntry(ir, dev);
  const kb = Math.min(2, ir.tk);
  const R = [...Array(qb).keys()], K = [...Array(kb).keys()];
  const C = [...Array(ir.dk / 4).keys()], V = [...Array(ir.dv / 4).keys()];
  const shift = ir.tk - ir.tq;
  for (const r of R) {
    for (const c of C) {
      L.push(`  let q${r}_${c} = att_q4(bh, i0 + ${U(r)}, ${U(4 * c)}) * ${f32Lit(ir.scale)};`);
    }
    for (const c of V) L.push(`  var a${r}_${c} = vec4<f32>();`);
    L.push(`  var m${r} = -1.0e30f;`, `  var l${r} = 0.0f;`);
    // keys visible to row r: j < lim (query i sees j <= i + tk - tq)
    L.push(
      ir.causal
        ? `  let lim${r} = u32(clamp(i32(i0) + ${r + shift + 1}i, 0i, ${ir.tk}i));`
        : `  let lim${r} = ${U(ir.tk)};`,
    );
  }
  L.push(`  let jEnd = lim${qb - 1};`);
  L.push(`  for (var j0 = 0u; j0 < jEnd; j0 += ${U(kb)}) {`);
  for (const j of K) {
    L.push(`    let j${j} = min(j0 + ${U(j)}, ${U(ir.tk - 1)});`);
    for (const c of C) L.push(`    let k${j}_${c} = att_k4(bh, j${j}, ${U(4 * c)});`);
    for (const r of R) {
      const terms = C.map((c) => `dot(q${r}_${c}, k${j}_${c})`);
      L.push(`    let s${r}_${j} = ${terms.join(" + ")};`);
      L.push(`    let vis${r}_${j} = j0 + ${U(j)} < lim${r};`);
    }
  }
  for (const r of R) {
    const mx = K.map((j) => `select(-1.0e30f, s${r}_${j}, vis${r}_${j})`).reduce((a, b) =>
      `max(${a}, ${b})`
    );
    L.push(`    let mn${r} = max(m${r}, ${mx});`);
    L.push(`    let cr${r} = exp(m${r} - mn${r});`);
    for (const j of K) {
      L.push(`    let p${r}_${j} = select(0.0f, exp(s${r}_${j} - mn${r}), vis${r}_${j});`);
    }
    L.push(`    l${r} = l${r} * cr${r} + ${K.map((j) => `p${r}_${j}`).join(" + ")};`);
    L.push(`    m${r} = mn${r};`);
  }
  for (const c of V) {
    for (const j of K) L.push(`    let v${j}_${c} = att_v4(bh, j${j}, ${U(4 * c)});`);
    for (const r of R) {
      let e = `a${r}_${c} * cr${r}`;
      for (const j of K) e = `fma(vec4<f32>(p${r}_${j}), v${j}_${c}, ${e})`;
      L.push(`    a${r}_${c} = ${e};`);
    }
  }
  L.push(`  }`);
  for (const r of R) {
    L.push(`  if (i0 + ${U(r)} >= iFirst) {`);
    L.push(`    let inv${r} = 1.0f / l${r};`);
    for (const c of V) {
      L.push(`    let o${r}_${c} = a${r}_${c} * inv${r};`);
      ["x", "y", "z", "w"].forEach((comp, q) =>
        L.push(`    att_store(bh, i0 + ${U(r)}, ${U(4 * c + q)}, o${r}_${c}.${comp});`)
      );
    }
    L.push(`  }`);
  }
  L.push(`}`, "");
  return { code: L.join("\n"), wg, dispatch, qb };
}

/**
 * The fused attention loop: one invocation per (batch·head, block of query
 * rows); keys are visited once per block with an online softmax, so the
 * Tq×Tk score matrix never reaches memory.
 *
 * @param ir sizes and options
 * @param dev device limits
 * @returns the WGSL (after the hooks), workgroup size, dispatch, rows per invocation
 */
function attentionTemplate(
  ir: AttentionKernelIR,
  dev: EmitDevice,
): { code: string; wg: number; dispatch: [number, number, number]; qb: number } {
  const { qb, wg, dispatch, L } = attentionEntry(ir, dev);
  const rows = [...Array(qb).keys()];
  for (const r of rows) {
    L.push(`  var q${r}: array<f32, ${ir.dk}>;`);
    L.push(`  var acc${r}: array<f32, ${ir.dv}>;`);
    L.push(`  var m${r} = -1.0e30f;`);
    L.push(`  var l${r} = 0.0f;`);
  }
  L.push(`  for (var c = 0u; c < ${U(ir.dk)}; c++) {`);
  for (const r of rows) L.push(`    q${r}[c] = att_q(bh, i0 + ${U(r)}, c) * ${f32Lit(ir.scale)};`);
  L.push(`  }`);
  // keys visible to the block: query i sees j <= i + (tk - tq)
  const shift = ir.tk - ir.tq;
  if (ir.causal) {
    L.push(`  let jEnd = u32(clamp(i32(i0) + ${qb - 1 + shift + 1}i, 0i, ${ir.tk}i));`);
  } else L.push(`  let jEnd = ${U(ir.tk)};`);
  L.push(`  for (var j = 0u; j < jEnd; j++) {`);
  for (const r of rows) L.push(`    var s${r} = 0.0f;`);
  L.push(`    for (var c = 0u; c < ${U(ir.dk)}; c++) {`);
  L.push(`      let kc = att_k(bh, j, c);`);
  for (const r of rows) L.push(`      s${r} = fma(q${r}[c], kc, s${r});`);
  L.push(`    }`);
  for (const r of rows) {
    const vis = ir.causal ? `i32(j) <= i32(i0) + ${r + shift}i` : "true";
    L.push(`    let mn${r} = select(m${r}, max(m${r}, s${r}), ${vis});`);
    L.push(`    let cr${r} = exp(m${r} - mn${r});`);
    L.push(`    let p${r} = select(0.0f, exp(s${r} - mn${r}), ${vis});`);
    L.push(`    l${r} = l${r} * cr${r} + p${r};`);
    L.push(`    m${r} = mn${r};`);
  }
  L.push(`    for (var c = 0u; c < ${U(ir.dv)}; c++) {`);
  L.push(`      let vc = att_v(bh, j, c);`);
  for (const r of rows) L.push(`      acc${r}[c] = fma(p${r}, vc, acc${r}[c] * cr${r});`);
  L.push(`    }`);
  L.push(`  }`);
  for (const r of rows) {
    L.push(`  if (i0 + ${U(r)} >= iFirst) {`);
    L.push(`    let inv${r} = 1.0f / l${r};`);
    L.push(
      `    for (var c = 0u; c < ${U(ir.dv)}; c++) { att_store(bh, i0 + ${
        U(r)
      }, c, acc${r}[c] * inv${r}); }`,
    );
    L.push(`  }`);
  }
  L.push(`}`, "");
  return { code: L.join("\n"), wg, dispatch, qb };
}

/**
 * Emits one planned kernel as WGSL.
 *
 * @param k the planned kernel
 * @param dev device facts (limits, f16 storage, adapter description)
 * @returns the module text, dispatch size and bindings
 */
export function emitKernel(k: PlannedKernel, dev: EmitDevice): EmittedKernel {
  // bindings are copied: the vec4 flag is decided here, per device
  const bindings = k.bindings.map((b) => ({ ...b }));
  const kk = { ...k, bindings };
  const ctx: Ctx = { bind: new Map(bindings.map((b) => [b.name, b])), f16: dev.f16Storage };
  const out: EmittedKernel = k.ir.kind === "loop"
    ? emitLoop(ctx, kk, k.ir, dev)
    : k.ir.kind === "matmul"
    ? emitMatmul(ctx, kk, k.ir, dev)
    : emitAttention(ctx, kk, k.ir, dev);
  if (out.code.includes(NONFINITE)) {
    const lines = out.code.split("\n");
    const at = lines[0]!.startsWith("enable ") ? 1 : 0;
    lines.splice(at, 0, NONFINITE_DECL);
    out.code = lines.join("\n");
  }
  // "auto" layouts drop unused bindings, which would break the bind group
  for (const b of out.bindings) {
    if (!new RegExp(`\\b${b.name}\\[`).test(out.code)) {
      throw new Error(`Internal error: kernel ${k.name} declares ${b.name} but never uses it`);
    }
  }
  return out;
}
