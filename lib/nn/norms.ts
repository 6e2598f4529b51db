/**
 * Norm layers with named affine parameters, over the last axis.
 *
 * {@link normLayer} builds the core `norm` composite and adds the affine
 * parameters under a site name (spec §16): `<site>.weight` (γ),
 * `<site>.bias` (β) and, for FakeLN, `<site>.sigma` (the frozen σ̄, a
 * constant that is never trained). The kind is independent of where the
 * norm sits, so placements and kinds compose.
 *
 * @module
 */

import {
  add,
  broadcastTo,
  crmsNorm,
  fakeNorm,
  l2Norm,
  layerNorm,
  mul,
  param,
  recip,
  rmsNorm,
} from "../ir/builders.ts";
import type { FloatDType } from "../ir/dtype.ts";
import type { Expr } from "../ir/expr.ts";

/** Norm kinds a model can use: the core kinds plus "identity" (no norm). */
export type NormKindName = "layer" | "rms" | "crms" | "l2" | "fake" | "identity";

/** Every kind, in a fixed order. */
export const NORM_KINDS: readonly NormKindName[] = Object.freeze([
  "layer",
  "rms",
  "crms",
  "l2",
  "fake",
  "identity",
]);

/** What a norm computes. */
export interface NormSpec {
  /** The kind. */
  readonly kind: NormKindName;
  /** ε (default: the model's, 1e-5; L2 uses 1e-12 when unset). */
  readonly eps?: number;
  /**
   * Learned affine parameters (default true): γ for every kind but
   * identity and L2, plus β for LayerNorm and FakeLN.
   */
  readonly affine?: boolean;
}

/** Short labels used by printers: LN, RMS, CRMS, L2, FakeLN, Id. */
export const NORM_LABEL: Readonly<Record<NormKindName, string>> = Object.freeze({
  layer: "LN",
  rms: "RMS",
  crms: "CRMS",
  l2: "L2",
  fake: "FakeLN",
  identity: "Id",
});

/**
 * Which affine parameters a norm of this spec has.
 *
 * @param spec a norm spec
 * @returns whether it has γ (`.weight`) and β (`.bias`)
 */
export function normAffine(spec: NormSpec): { gain: boolean; bias: boolean } {
  const on = spec.affine ?? true;
  const gain = on && spec.kind !== "identity" && spec.kind !== "l2";
  return { gain, bias: gain && (spec.kind === "layer" || spec.kind === "fake") };
}

function check(spec: NormSpec, site: string): void {
  if (!(spec.kind as string) || !NORM_KINDS.includes(spec.kind)) {
    throw new RangeError(
      `Cannot build norm "${site}": unknown kind "${spec.kind}" (one of ${NORM_KINDS.join(", ")})`,
    );
  }
}

/**
 * A norm over the last axis with named affine parameters.
 *
 * @param x the input `[..., n]`
 * @param site the parameter prefix, e.g. `blocks.0.ln_1` (spec §16)
 * @param spec kind, ε, affine
 * @param defaultEps ε when the spec has none (the model's)
 * @returns the normalised input (the input itself for "identity")
 *
 * @example Pre-LN's first norm
 * ```ts
 * import * as nx from "../ir/mod.ts";
 * import { normLayer } from "./norms.ts";
 * const x = nx.input("x", [2, 4, 8]);
 * const y = normLayer(x, "blocks.0.ln_1", { kind: "layer" }); // params blocks.0.ln_1.{weight,bias}
 * ```
 */
export function normLayer(
  x: Expr,
  site: string,
  spec: NormSpec,
  defaultEps = 1e-5,
): Expr {
  check(spec, site);
  if (spec.kind === "identity") return x;
  const f = x as Expr<FloatDType>;
  const n = x.shape[x.shape.length - 1]!;
  let y: Expr;
  switch (spec.kind) {
    case "layer":
      y = layerNorm(f, { eps: spec.eps ?? defaultEps });
      break;
    case "rms":
      y = rmsNorm(f, { eps: spec.eps ?? defaultEps });
      break;
    case "crms":
      y = crmsNorm(f, { eps: spec.eps ?? defaultEps });
      break;
    case "l2":
      y = l2Norm(f, { eps: spec.eps ?? 1e-12 });
      break;
    case "fake": {
      // FakeLN: (x − μ)/σ̄ with σ̄ a named constant, so a checkpoint carries it
      const sigma = param(`${site}.sigma`, [], x.dtype);
      y = mul(fakeNorm(f, 1), broadcastTo(recip(sigma as Expr<FloatDType>), x.shape));
      break;
    }
  }
  const { gain, bias } = normAffine(spec);
  if (gain) y = mul(y, param(`${site}.weight`, [n], x.dtype));
  if (bias) y = add(y, param(`${site}.bias`, [n], x.dtype));
  return y;
}
