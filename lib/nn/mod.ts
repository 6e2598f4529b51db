/**
 * nn: a transformer written once, with its normalisation moved around by
 * declarative rewrites.
 *
 * ## The API in five lines
 *
 * ```ts
 * import { buildModel, explainModel, initParams, type ModelConfig } from "./mod.ts";
 * import { array } from "../ir/array.ts";
 * import { interpret } from "../interpret.ts";
 *
 * const cfg: ModelConfig = { vocabSize: 32, dModel: 16, nLayers: 2, nHeads: 2, batch: 2, seqLen: 8 };
 * const model = buildModel(cfg, "hybridnorm");   // or a Placement: hybridNorm({ norm: "layer" })
 * const params = initParams(model, 0);           // Record<string, NDArray>, names per spec §16
 * console.log(explainModel(model));              // where every norm sits
 * const ids = array(new Int32Array(16), [2, 8], "i32");
 * const [loss] = interpret([model.loss], { ...params, ids, targets: ids });
 * ```
 *
 * A {@link Model} has the inputs `ids` (`[B, T]` i32) and `targets`
 * (`[B, T]` i32 for language modelling), the graphs `logits` (`[B, T, V]`)
 * and `loss` (scalar, mean token cross-entropy), the `params` specs
 * (name, shape, init rule, `trainable: false` for FakeLN's σ̄) and the
 * `neutral` (placement-free) graph. Build one model per placement from
 * the same config to compare placements.
 *
 * ## Pieces
 *
 * - `config.ts`: {@link ModelConfig} (sizes, MLP kind, positions, GQA,
 *   head, init) and {@link resolveConfig}.
 * - `layers.ts`: embeddings, RoPE, attention, MLPs, and the slots.
 * - `norms.ts`: {@link normLayer}, norms with named affine parameters.
 * - `placement.ts`: {@link definePlacement} / {@link composePlacements}
 *   (rule sets over `residual` and slot nodes), {@link applyPlacement}.
 * - `placements.ts`: the catalogue (postLn, preLn, preRms, preCrms,
 *   normFormer, subLn, deepNorm, qkNorm, mixLn, periLn, lnScaling,
 *   hybridNorm, hybridNormStar, lnFree) and {@link placementByName}.
 * - `init.ts`: init rules from §16 names, {@link initParams}.
 * - `model.ts`: {@link buildModel}, {@link buildBlock}, losses.
 * - `explain.ts`: {@link explainModel}.
 * - `equiv.ts`: the §4 conversions (Pre-LN → zero-mean Pre-LN →
 *   Pre-RMSNorm → Pre-CRMSNorm), the on-the-fly training form, and the
 *   §12 folds.
 *
 * @module
 */
export * from "./config.ts";
export * from "./norms.ts";
export * from "./layers.ts";
export * from "./placement.ts";
export * from "./placements.ts";
export * from "./init.ts";
export * from "./model.ts";
export * from "./explain.ts";
export * from "./equiv.ts";
