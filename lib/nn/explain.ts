/**
 * `explainModel`: where every norm sits, read back from the placed graph.
 *
 * The printer walks the graph itself (not the placement's description), so
 * what it shows is what runs. Attention and MLP sublayers are abbreviated
 * to `Attn{i}` / `MLP{i}` (recognised by their §16 projection names), with
 * the norms inside them listed in brackets; norms on the stream are shown
 * as `KIND[site](input)`; stream values used twice get names `x0, x1, …`.
 *
 * ```
 * pre-ln: 2 blocks, d_model 8, stream norm LN
 *   x0 = tok_emb[ids] + pos_emb
 * block 0
 *   x1 = x0 + Attn0(LN[ln_1](x0))
 *   x2 = x1 + MLP0(LN[ln_2](x1))
 * …
 *   logits = unembed(LN[ln_f](x4))
 * ```
 *
 * @module
 */

import type { Expr, OpArgs } from "../ir/expr.ts";
import { toposort } from "../ir/expr.ts";
import { shapeEq } from "../ir/shape.ts";
import type { Model } from "./model.ts";
import { NORM_LABEL } from "./norms.ts";

const MOVE = new Set(["reshape", "expand", "permute", "slice"]);

function paramName(e: Expr): string | undefined {
  return e.op === "param" ? (e.arg as OpArgs["param"]).name : undefined;
}

// The param behind a chain of movement ops / recip (a broadcast parameter).
function viewedParam(e: Expr): { name: string; transposed: boolean } | undefined {
  let cur = e, transposed = false;
  while (MOVE.has(cur.op) || cur.op === "recip") {
    if (cur.op === "permute") transposed = !transposed;
    cur = cur.src[0]!;
  }
  const n = paramName(cur);
  return n === undefined ? undefined : { name: n, transposed };
}

function constValue(e: Expr): number | undefined {
  let cur = e;
  while (MOVE.has(cur.op)) cur = cur.src[0]!;
  return cur.op === "const" ? (cur.arg as OpArgs["const"]).value : undefined;
}

function fmtNum(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4).replace(/0+$/, "");
}

interface NormMatch {
  kind: string;
  site?: string;
  x: Expr;
  /** the `norm` node itself */
  core: Expr;
}

function stripSuffix(n: string): string {
  return n.replace(/\.(weight|bias|sigma)$/, "");
}

// A norm core: `norm(x)`, or FakeLN's `norm_fake(x) · 1/σ̄`.
function normCore(e: Expr): NormMatch | undefined {
  if (e.op === "norm") {
    return { kind: NORM_LABEL[(e.arg as OpArgs["norm"]).kind], x: e.src[0]!, core: e };
  }
  if (e.op === "mul" && e.src[0]!.op === "norm") {
    const s = viewedParam(e.src[1]!);
    if (s && s.name.endsWith(".sigma")) {
      return { kind: "FakeLN", site: stripSuffix(s.name), x: e.src[0]!.src[0]!, core: e.src[0]! };
    }
  }
  return undefined;
}

// A norm with its affine parameters: core, core·γ, core·γ + β.
function asNorm(e: Expr): NormMatch | undefined {
  const core = normCore(e);
  if (core) return core;
  if (e.op === "add") {
    const b = viewedParam(e.src[1]!);
    if (b && b.name.endsWith(".bias")) {
      const inner = asNorm(e.src[0]!);
      if (inner) return { ...inner, site: inner.site ?? stripSuffix(b.name) };
    }
  }
  if (e.op === "mul") {
    const g = viewedParam(e.src[1]!);
    if (g && g.name.endsWith(".weight")) {
      const inner = normCore(e.src[0]!);
      if (inner) return { ...inner, site: inner.site ?? stripSuffix(g.name) };
    }
  }
  return undefined;
}

interface Linear {
  /** e.g. "blocks.0.attn.o", or "tok_embᵀ" for a tied unembedding */
  prefix: string;
  input: Expr;
}

// `x W (+ b)` as built by `linear()`/`matmul`: [reshape](dot(reshape(x), W)) [+ b].
function asLinear(e: Expr): Linear | undefined {
  let cur = e;
  let biasOf: string | undefined;
  if (cur.op === "add") {
    const b = viewedParam(cur.src[1]!);
    if (!b || !b.name.endsWith(".bias")) return undefined;
    biasOf = stripSuffix(b.name);
    cur = cur.src[0]!;
  }
  if (cur.op === "reshape" && cur.src[0]!.op === "dot") cur = cur.src[0]!;
  if (cur.op !== "dot") return undefined;
  const w = viewedParam(cur.src[1]!);
  if (!w) return undefined;
  const prefix = w.transposed ? `${stripSuffix(w.name)}ᵀ` : stripSuffix(w.name);
  if (biasOf !== undefined && biasOf !== prefix) return undefined;
  let x = cur.src[0]!;
  if (x.op === "reshape") x = x.src[0]!;
  return { prefix, input: x };
}

/**
 * Explains a placed model: one line per named stream value, showing every
 * norm on the stream and, in brackets, the norms inside each sublayer.
 *
 * @param model a built model (or anything with `logits`, and optionally
 *   `placement` and `config` for the header)
 * @returns the explanation, one line per stream value
 *
 * @example
 * ```ts
 * import { buildModel, explainModel } from "./mod.ts";
 * const m = buildModel({ vocabSize: 16, dModel: 8, nLayers: 2, nHeads: 2, batch: 1, seqLen: 4 }, "hybridnorm");
 * console.log(explainModel(m));
 * ```
 */
export function explainModel(
  model: Pick<Model, "logits"> & Partial<Pick<Model, "placement" | "config">>,
): string {
  const root = model.logits;
  const order = toposort([root]);
  const users = new Map<Expr, number>();
  for (const e of order) for (const s of e.src) users.set(s, (users.get(s) ?? 0) + 1);

  // Sublayers: the output of W_O / W_2, with their inputs and inner nodes.
  interface Atom {
    label: string;
    inputs: { tag: string; e: Expr }[];
    inner: string[];
  }
  const atoms = new Map<Expr, Atom>();
  const outs = new Map<string, Expr>();
  for (const e of order) {
    const lin = asLinear(e);
    if (!lin) continue;
    const m = /^blocks\.(\d+)\.(attn\.o|mlp\.fc2)$/.exec(lin.prefix);
    // keep the outermost node of the linear (with its bias)
    if (m) outs.set(lin.prefix, e);
  }
  for (const [prefix, out] of outs) {
    const [, layer, which] = /^blocks\.(\d+)\.(attn\.o|mlp\.fc2)$/.exec(prefix)!;
    const isAttn = which === "attn.o";
    const sub = toposort([out]);
    const readers = isAttn ? ["q", "k", "v"] : ["fc1", "gate"];
    const inputs: { tag: string; e: Expr }[] = [];
    for (const n of sub) {
      const lin = asLinear(n);
      if (!lin) continue;
      const r = readers.find((t) =>
        lin.prefix === `blocks.${layer}.${isAttn ? "attn" : "mlp"}.${t}`
      );
      if (r && !inputs.some((i) => i.tag === r)) inputs.push({ tag: r, e: lin.input });
    }
    const outside = new Set(toposort(inputs.map((i) => i.e)));
    // Consumers come first in reverse order, so a norm's affine form (which
    // names its site) is seen before its bare core.
    const labelled = new Map<Expr, string>();
    const extras: string[] = [];
    const strip = (t: string) => t.replace(/^blocks\.\d+\.(attn|mlp)\./, "");
    for (const n of [...sub].reverse()) {
      if (outside.has(n)) continue;
      const nm = asNorm(n);
      if (nm && !labelled.has(nm.core)) {
        labelled.set(nm.core, `${nm.site ? strip(nm.site) : traceLabel(nm.x)}: ${nm.kind}`);
      }
      const pn = paramName(n);
      if (pn && /\.(head_scale|qk_gain)$/.test(pn)) extras.push(strip(pn));
    }
    const inner = [...[...labelled.values()].reverse(), ...extras.reverse()];
    atoms.set(out, {
      label: `${isAttn ? "Attn" : "MLP"}${layer}`,
      inputs,
      inner,
    });
  }

  // Stream values get names when used twice, or when they end a sublayer
  // (an add with a sublayer in one operand that no norm consumes).
  const streamShape = order.find((e) => e.op === "gather")?.shape;
  // inputs of norms that write the stream (the final norm is the head's, not the stream's)
  const coreSite = new Map<Expr, string | undefined>();
  for (const e of order) {
    const nm = asNorm(e);
    if (nm && (nm.site || !coreSite.has(nm.core))) coreSite.set(nm.core, nm.site);
  }
  const normInputs = new Set<Expr>();
  for (const [core, site] of coreSite) if (site !== "ln_f") normInputs.add(core.src[0]!);
  // hasAtom: a sublayer below e, not hidden behind an already named value
  const hasAtom = new Map<Expr, boolean>();
  const names = new Map<Expr, string>();
  for (const e of order) {
    const below = (s: Expr) => !names.has(s) && hasAtom.get(s) === true;
    const stream = streamShape !== undefined && shapeEq(e.shape, streamShape) && !atoms.has(e) &&
      constValue(e) === undefined && !viewedParam(e);
    const endsSublayer = e.op === "add" && !normInputs.has(e) && !asLinear(e) && !asNorm(e) &&
      e.src.some(below);
    if (stream && ((users.get(e) ?? 0) >= 2 || endsSublayer)) names.set(e, `x${names.size}`);
    hasAtom.set(e, atoms.has(e) || e.src.some(below));
  }

  const fmt = (e: Expr, top = false): string => {
    const nm = names.get(e);
    if (nm && !top) return nm;
    const atom = atoms.get(e);
    if (atom) {
      const ins = atom.inputs.map((i) => ({ tag: i.tag, s: fmt(i.e) }));
      const same = ins.every((i) => i.s === ins[0]!.s);
      const args = same ? ins[0]?.s ?? "?" : ins.map((i) => `${i.tag}: ${i.s}`).join(", ");
      const inner = atom.inner.length ? `[${atom.inner.join(", ")}]` : "";
      return `${atom.label}${inner}(${args})`;
    }
    const norm = asNorm(e);
    if (norm) {
      const site = norm.site ? `[${norm.site.replace(/^blocks\.\d+\./, "")}]` : "";
      return `${norm.kind}${site}(${fmt(norm.x)})`;
    }
    const lin = asLinear(e);
    if (lin) return `${lin.prefix}(${fmt(lin.input)})`;
    const vp = viewedParam(e);
    if (vp) {
      return vp.transposed
        ? `${vp.name.replace(/\.weight$/, "")}ᵀ`
        : vp.name.replace(/\.weight$/, "");
    }
    const c = constValue(e);
    if (c !== undefined) return fmtNum(c);
    switch (e.op) {
      case "input":
        return (e.arg as OpArgs["input"]).name;
      case "gather":
        return `${fmt(e.src[0]!)}[${fmt(e.src[1]!)}]`;
      case "add":
        return `${fmt(e.src[0]!)} + ${fmt(e.src[1]!)}`;
      case "mul": {
        const [a, b] = e.src as [Expr, Expr];
        const cb = constValue(b), pb = viewedParam(b);
        if (cb !== undefined) return `${fmtNum(cb)}·${paren(a)}`;
        if (pb) return `${pb.name.replace(/^blocks\.\d+\./, "")}⊙${paren(a)}`;
        return `${paren(a)}·${paren(b)}`;
      }
      default:
        if (MOVE.has(e.op)) return fmt(e.src[0]!);
        return `${e.op}(${e.src.map((s) => fmt(s)).join(", ")})`;
    }
  };
  const paren = (e: Expr): string => {
    const s = fmt(e);
    return e.op === "add" && !names.has(e) && !atoms.has(e) && !asNorm(e) ? `(${s})` : s;
  };

  const lines: string[] = [];
  const p = model.placement, c = model.config;
  if (p && c) {
    const kind = NORM_LABEL[p.norm.kind];
    lines.push(`${p.name}: ${c.nLayers} blocks, d_model ${c.dModel}, stream norm ${kind}`);
  }
  let block = -1;
  const rows = [...names.keys(), root];
  for (const e of rows) {
    const text = fmt(e, true);
    const m = /(?:Attn|MLP)(\d+)/.exec(text);
    if (m && Number(m[1]) !== block) {
      block = Number(m[1]);
      lines.push(`block ${block}`);
    } else if (e === root) lines.push("head");
    lines.push(`  ${e === root ? "logits" : names.get(e)} = ${text}`);
  }
  return lines.join("\n");
}

// What an affine-free inner norm normalises: a projection, the heads, the hidden.
function traceLabel(x: Expr): string {
  let cur = x;
  for (let i = 0; i < 8; i++) {
    const lin = asLinear(cur);
    if (lin) return lin.prefix.replace(/^.*\./, "");
    if (cur.op === "attention") return "heads";
    if (MOVE.has(cur.op)) cur = cur.src[0]!;
    else break;
  }
  return "hidden";
}
