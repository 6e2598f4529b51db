/**
 * The model builder: one neutral transformer, any placement.
 *
 * {@link buildModel} builds the placement-neutral graph (embeddings, N
 * blocks of `residual` sublayers with slots, final slot, head), applies the
 * placement's rule set, and adds the loss. The result's `param` leaves are
 * named per spec §16 and listed with their init rules in `params`.
 *
 * @module
 */

import {
  cast,
  equal,
  input,
  iota,
  logSoftmax,
  matmul,
  mean,
  mul,
  neg,
  param,
  reshape,
  residual,
  slice,
  square,
  sub,
  sum,
  transpose,
} from "../ir/builders.ts";
import type { FloatDType } from "../ir/dtype.ts";
import { type Expr, leavesOf } from "../ir/expr.ts";
import { fmtShape, shapeEq } from "../ir/shape.ts";
import type { RewriteOptions } from "../rewrite/driver.ts";
import { type ModelConfig, resolveConfig, type ResolvedConfig } from "./config.ts";
import { type InitRule, initRuleFor } from "./init.ts";
import { attentionBody, embed, linear, mlpBody, slot } from "./layers.ts";
import { applyPlacement, type Placement } from "./placement.ts";
import { placementByName } from "./placements.ts";

type F = Expr<FloatDType>;

/** A parameter of a built model. */
export interface ParamSpec {
  /** Its stable name (spec §16), also the `param` leaf's name in the graph. */
  readonly name: string;
  /** Its shape. */
  readonly shape: readonly number[];
  /** How {@link initParams} fills it. */
  readonly init: InitRule;
  /** False for constants that must not be trained (FakeLN's σ̄). */
  readonly trainable: boolean;
}

/** A built model: graphs, inputs and parameter specs. */
export interface Model {
  /** The resolved config. */
  readonly config: ResolvedConfig;
  /** The placement applied. */
  readonly placement: Placement;
  /** The residual stream width (d_model, or d_model − 1 when compressed). */
  readonly streamWidth: number;
  /** Input "ids": token ids `[B, T]` i32. */
  readonly ids: Expr<"i32">;
  /**
   * Input "targets": next-token ids `[B, T]` i32 (lm), class ids `[B]` i32
   * (classify), or values `[B, T, K]` f32 (regress).
   */
  readonly targets: Expr;
  /** Logits `[B, T, V]` (lm), `[B, C]` (classify) or predictions `[B, T, K]` (regress). */
  readonly logits: Expr<"f32">;
  /** Scalar loss: mean token cross-entropy (lm, classify) or mean squared error (regress). */
  readonly loss: Expr<"f32">;
  /** Every parameter the loss uses, sorted by name. */
  readonly params: readonly ParamSpec[];
  /** The placement-neutral logits graph (residual and slot nodes intact). */
  readonly neutral: Expr<"f32">;
}

/** Options for {@link buildModel}. */
export interface BuildOptions {
  /** Rewrite options for the placement pass (e.g. `{ verify: true }` in tests). */
  readonly rewrite?: RewriteOptions;
}

/**
 * Mean token cross-entropy of logits `[..., V]` against integer targets
 * `[...]`: `−mean(logSoftmax(logits)[target])`, the target picked by a
 * one-hot from `iota == target` (no gather on the vocabulary axis).
 *
 * @param logits float logits `[..., V]`
 * @param targets i32/u32 ids with the logits' shape minus the last axis
 * @returns a scalar `[]`
 * @throws {TypeError} when the shapes or dtypes do not fit
 */
export function tokenCrossEntropy(logits: Expr, targets: Expr): Expr<"f32"> {
  const what = `Cannot take the cross-entropy of ${logits.dtype}${
    fmtShape(logits.shape)
  } against ${targets.dtype}${fmtShape(targets.shape)}`;
  if (targets.dtype !== "i32" && targets.dtype !== "u32") {
    throw new TypeError(`${what}: targets must be i32 or u32`);
  }
  if (logits.shape.length < 1 || !shapeEq(targets.shape, logits.shape.slice(0, -1))) {
    throw new TypeError(`${what}: targets must have the logits' shape without the last axis`);
  }
  if (logits.dtype !== "f32" && logits.dtype !== "f16") {
    throw new TypeError(`${what}: logits must be float`);
  }
  const r = logits.shape.length;
  const lp = logSoftmax(logits as F, -1);
  const hit = equal(
    iota(logits.shape, r - 1, targets.dtype),
    reshape(targets, [...targets.shape, 1]),
  );
  return neg(mean(sum(mul(lp, cast(hit, logits.dtype)), -1))) as Expr<"f32">;
}

/**
 * Mean squared error.
 *
 * @param pred predictions
 * @param target targets of the same shape
 * @returns a scalar `[]`
 */
export function meanSquaredError(pred: Expr, target: Expr): Expr<"f32"> {
  if (!shapeEq(pred.shape, target.shape)) {
    throw new TypeError(
      `Cannot take the squared error of ${fmtShape(pred.shape)} against ${
        fmtShape(target.shape)
      }: shapes differ`,
    );
  }
  return mean(square(sub(pred, target) as F)) as Expr<"f32">;
}

/**
 * The neutral stream after block `layer`: two residual sublayers.
 *
 * @param cfg the config
 * @param layer the 0-based block index
 * @param x the stream entering the block `[B, T, D]`
 * @returns the stream leaving it
 */
export function neutralBlock(cfg: ResolvedConfig, layer: number, x: Expr): Expr {
  const y = residual(x as F, (h) => attentionBody(cfg, layer, h) as F, { role: "attn", layer });
  return residual(y, (h) => mlpBody(cfg, layer, h) as F, { role: "mlp", layer });
}

function head(cfg: ResolvedConfig, h: Expr, width: number): Expr {
  const hd = cfg.head;
  if (hd.kind === "lm") {
    if (cfg.tieEmbeddings) {
      return matmul(h, transpose(param("tok_emb.weight", [cfg.vocabSize, width])));
    }
    return linear(h, "unembed", cfg.vocabSize, cfg.unembedBias);
  }
  if (hd.kind === "classify") {
    const [b, t] = h.shape as [number, number];
    const pooled = (hd.pool ?? (cfg.causal ? "last" : "mean")) === "mean"
      ? mean(h as F, 1)
      : reshape(slice(h, 1, t - 1, t), [b, width]);
    return linear(pooled, "head", hd.classes, true);
  }
  return linear(h, "head", hd.outputs, true);
}

/**
 * Builds the placement-neutral logits graph.
 *
 * @param cfg a model config
 * @param compressed build a d_model − 1 stream (for CRMS)
 * @returns the ids input and the neutral logits
 */
export function buildNeutral(
  cfg: ModelConfig | ResolvedConfig,
  compressed = false,
): { ids: Expr<"i32">; logits: Expr<"f32"> } {
  const c = resolveConfig(cfg as ModelConfig);
  const width = compressed ? c.dModel - 1 : c.dModel;
  if (width < 1) throw new RangeError("Cannot build a compressed model with dModel 1");
  const ids = input("ids", [c.batch, c.seqLen], "i32");
  let h = slot(embed(c, ids, width) as F, "emb", -1) as Expr;
  for (let i = 0; i < c.nLayers; i++) h = neutralBlock(c, i, h);
  h = slot(h as F, "final", -1);
  return { ids, logits: head(c, h, width) as Expr<"f32"> };
}

/**
 * Builds a model: the neutral graph, the placement, the loss and the
 * parameter specs.
 *
 * @param cfg a model config
 * @param placement a placement, or its command-line name ("pre-ln", …)
 * @param opts rewrite options for the placement pass
 * @returns the model
 *
 * @example Build HybridNorm and evaluate its loss
 * ```ts
 * import { buildModel, initParams } from "./mod.ts";
 * const model = buildModel(
 *   { vocabSize: 16, dModel: 8, nLayers: 2, nHeads: 2, batch: 1, seqLen: 4 },
 *   "hybridnorm",
 * );
 * const params = initParams(model, 0);
 * // interpret([model.loss], { ...params, ids, targets })
 * ```
 */
export function buildModel(
  cfg: ModelConfig,
  placement: Placement | string,
  opts: BuildOptions = {},
): Model {
  const c = resolveConfig(cfg);
  const p = typeof placement === "string" ? placementByName(placement) : placement;
  const neutral = buildNeutral(c, p.compressed);
  const [logits] = applyPlacement([neutral.logits], p, c, opts.rewrite) as [Expr<"f32">];
  const { batch: b, seqLen: t } = c;
  let targets: Expr, loss: Expr<"f32">;
  if (c.head.kind === "regress") {
    targets = input("targets", [b, t, c.head.outputs], "f32");
    loss = meanSquaredError(logits, targets);
  } else {
    targets = input("targets", c.head.kind === "lm" ? [b, t] : [b], "i32");
    loss = tokenCrossEntropy(logits, targets);
  }
  const scales = p.initScales(c);
  const params = leavesOf([loss]).params.map((e) => {
    const init = initRuleFor(e.arg.name, e.shape, c, scales);
    return Object.freeze({
      name: e.arg.name,
      shape: e.shape,
      init,
      trainable: !e.arg.name.endsWith(".sigma"),
    });
  });
  return Object.freeze({
    config: c,
    placement: p,
    streamWidth: p.compressed ? c.dModel - 1 : c.dModel,
    ids: neutral.ids,
    targets,
    logits,
    loss,
    params: Object.freeze(params),
    neutral: neutral.logits,
  });
}

/**
 * One placed block on its own, as a function of an input stream (for
 * structural tests and explanations): `x` → stream after block `layer`.
 *
 * @param cfg a model config
 * @param placement a placement
 * @param layer the 0-based block index
 * @param x the stream entering the block `[B, T, D]` (default an input "x")
 * @returns the placed block output
 */
export function buildBlock(
  cfg: ModelConfig,
  placement: Placement,
  layer: number,
  x?: Expr,
): Expr {
  const c = resolveConfig(cfg);
  const w = placement.compressed ? c.dModel - 1 : c.dModel;
  const xin = x ?? input("x", [c.batch, c.seqLen, w]);
  return applyPlacement([neutralBlock(c, layer, xin)], placement, c)[0]!;
}
