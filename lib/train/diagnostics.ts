/**
 * Diagnostics as expressions: the quantities the normalisation papers plot
 * (spec §13), computed from a model's graph so they compile with it.
 *
 * - activation RMS of the residual stream after each block (LNS, Peri-LN);
 * - attention entropy per layer (HybridNorm);
 * - update-to-weight ratio ‖ΔW‖/‖W‖ per block (usual sanity range ~1e-3).
 *
 * Streams are found on the placement-neutral graph (its `residual` nodes)
 * and mapped through the same placement rewrite, so they are exactly the
 * placed model's nodes, whatever the placement.
 *
 * @module
 */

import {
  add,
  cast,
  div,
  exp,
  greaterEqual,
  iota,
  logSoftmax,
  matmul,
  mean,
  mul,
  neg,
  sqrt,
  square,
  sub,
  sum,
  transpose,
  where,
} from "../ir/builders.ts";
import type { FloatDType } from "../ir/dtype.ts";
import { type Expr, isOp, toposort } from "../ir/expr.ts";
import { applyPlacement } from "../nn/placement.ts";
import type { Model } from "../nn/model.ts";
import { blockGroup } from "./step.ts";

type F = Expr<FloatDType>;

/**
 * The residual stream after each block of a model, as nodes of its placed graph.
 *
 * @param model a model from `buildModel`
 * @returns one `[B, T, D]` expression per block, block 0 first
 */
export function blockStreams(model: Model): Expr<"f32">[] {
  const ends = toposort([model.neutral]).filter((e) => isOp(e, "residual") && e.arg.role === "mlp");
  const byLayer = new Map<number, Expr>();
  for (const e of ends) if (isOp(e, "residual")) byLayer.set(e.arg.layer, e);
  const layers = [...byLayer.keys()].sort((a, b) => a - b);
  const placed = applyPlacement(
    [model.neutral, ...layers.map((l) => byLayer.get(l)!)],
    model.placement,
    model.config,
  );
  return placed.slice(1) as Expr<"f32">[];
}

/**
 * Root-mean-square of each block's output stream, named `actRms.<i>`.
 *
 * @param model a model
 * @returns scalar expressions by name
 */
export function activationRms(model: Model): Record<string, Expr<"f32">> {
  const out: Record<string, Expr<"f32">> = {};
  blockStreams(model).forEach((s, i) => {
    out[`actRms.${i}`] = sqrt(mean(square(s as F))) as Expr<"f32">;
  });
  return out;
}

/**
 * Mean entropy (nats) of the attention distributions of every `attention`
 * node, in graph order (block 0 first), named `attnEntropy.<i>`. Masked
 * positions contribute 0 (not 0·log 0 = NaN).
 *
 * @param root a graph containing attention nodes (e.g. a model's logits)
 * @returns scalar expressions by name
 */
export function attentionEntropy(root: Expr): Record<string, Expr<"f32">> {
  const out: Record<string, Expr<"f32">> = {};
  const nodes = toposort([root]).filter((e) => isOp(e, "attention"));
  nodes.forEach((e, i) => {
    if (!isOp(e, "attention")) return;
    const [q, k] = e.src as [F, F];
    let s = mul(matmul(q, transpose(k)), e.arg.scale) as F;
    const r = s.shape.length;
    const tq = s.shape[r - 2]!, tk = s.shape[r - 1]!;
    const keep = e.arg.causal
      ? greaterEqual(add(iota([tq, tk], 0), tk - tq), iota([tq, tk], 1))
      : undefined;
    if (keep) s = where(keep, s, -1e30) as F;
    const lp = logSoftmax(s, -1);
    let plogp = mul(exp(lp), lp) as F;
    if (keep) plogp = where(keep, plogp, 0) as F;
    out[`attnEntropy.${i}`] = cast(neg(mean(sum(plogp, -1))), "f32");
  });
  return out;
}

/**
 * Update-to-weight ratio per parameter group: `‖new − old‖ / ‖old‖` over
 * the group's matrices (rank ≥ 2), named `updateRatio.<group>`.
 *
 * @param params the parameter nodes being trained
 * @param updates their new values, by name (a train step's `updates`)
 * @param groupOf parameter name → group (default `blocks.<i>` / `other`)
 * @returns scalar expressions by name
 */
export function updateRatios(
  params: readonly Expr[],
  updates: Readonly<Record<string, Expr>>,
  groupOf: (name: string) => string | undefined = blockGroup,
): Record<string, Expr<"f32">> {
  const groups = new Map<string, { d: F[]; w: F[] }>();
  for (const p of params) {
    if (!isOp(p, "param") || p.shape.length < 2) continue;
    const next = updates[p.arg.name];
    const g = groupOf(p.arg.name);
    if (!next || g === undefined) continue;
    const entry = groups.get(g) ?? { d: [], w: [] };
    entry.d.push(sum(square(sub(next as F, p as F) as F)) as F);
    entry.w.push(sum(square(p as F)) as F);
    groups.set(g, entry);
  }
  const out: Record<string, Expr<"f32">> = {};
  for (const [g, { d, w }] of groups) {
    const total = (xs: F[]) => xs.reduce((a, b) => add(a, b) as F);
    // +1e-30 so an all-zero group reads 0, not NaN
    out[`updateRatio.${g}`] = cast(sqrt(div(total(d), add(total(w), 1e-30)) as F), "f32");
  }
  return out;
}
