/**
 * Model configuration: one plain object describes a transformer, and
 * {@link resolveConfig} fills defaults and rejects inconsistent sizes.
 *
 * Shapes are static in normix, so the batch size and sequence length are
 * part of the config (rebuild the model for another shape; building is
 * cheap).
 *
 * @module
 */

/** The MLP's nonlinearity. */
export type MlpKind = "gelu" | "relu2" | "swiglu";

/** How positions enter the model. */
export type PositionKind = "learned" | "rope" | "none";

/** What the model outputs. */
export type HeadSpec =
  | { readonly kind: "lm" }
  | { readonly kind: "classify"; readonly classes: number; readonly pool?: "last" | "mean" }
  | { readonly kind: "regress"; readonly outputs: number };

/** Base initialisation (placements may scale some weights on top, e.g. DeepNet β). */
export interface InitConfig {
  /**
   * "normal": N(0, σ) for every weight (GPT-2 style). "megatron": truncated
   * normal at ±3σ, and σ/√(2N) on the output projections `attn.o`, `mlp.fc2`.
   */
  readonly scheme?: "normal" | "megatron";
  /** σ (default 0.02). */
  readonly std?: number;
}

/** A transformer's sizes and options. */
export interface ModelConfig {
  /** Vocabulary size V. */
  readonly vocabSize: number;
  /** Width d_model of the residual stream (and of the attention). */
  readonly dModel: number;
  /** Number of blocks N. */
  readonly nLayers: number;
  /** Attention heads H (d_h = d_model / H). */
  readonly nHeads: number;
  /** Key/value heads for grouped-query attention (default H; must divide H). */
  readonly nKvHeads?: number;
  /** MLP hidden width (default 4·d_model). */
  readonly dFf?: number;
  /** Batch size B of the built graph. */
  readonly batch: number;
  /** Sequence length T of the built graph. */
  readonly seqLen: number;
  /** Rows of the learned position table (default T). */
  readonly maxSeqLen?: number;
  /** MLP kind (default "gelu"). */
  readonly mlp?: MlpKind;
  /** Position encoding (default "learned"). */
  readonly positions?: PositionKind;
  /** RoPE base θ (default 10000). */
  readonly ropeTheta?: number;
  /** RoPE pairing: "half" pairs j with j + d_h/2 (default, §15.12); "interleaved" pairs 2j, 2j+1. */
  readonly ropePairs?: "half" | "interleaved";
  /** Causal attention (default true); false gives bidirectional attention. */
  readonly causal?: boolean;
  /** Biases on the attention and MLP projections (default true). */
  readonly bias?: boolean;
  /** Unembedding shares the token embedding (default false). */
  readonly tieEmbeddings?: boolean;
  /** A bias on the (untied) unembedding (default false). */
  readonly unembedBias?: boolean;
  /** Output head (default language modelling). */
  readonly head?: HeadSpec;
  /** ε of every norm unless a placement overrides it (default 1e-5). */
  readonly eps?: number;
  /** Base init (default normal, σ = 0.02). */
  readonly init?: InitConfig;
}

/** A config with every default filled in. */
export interface ResolvedConfig {
  /** Vocabulary size V. */
  readonly vocabSize: number;
  /** d_model. */
  readonly dModel: number;
  /** N. */
  readonly nLayers: number;
  /** H. */
  readonly nHeads: number;
  /** KV heads. */
  readonly nKvHeads: number;
  /** d_h = d_model / H. */
  readonly dHead: number;
  /** MLP width. */
  readonly dFf: number;
  /** B. */
  readonly batch: number;
  /** T. */
  readonly seqLen: number;
  /** Position-table rows. */
  readonly maxSeqLen: number;
  /** MLP kind. */
  readonly mlp: MlpKind;
  /** Position encoding. */
  readonly positions: PositionKind;
  /** RoPE θ. */
  readonly ropeTheta: number;
  /** RoPE pairing. */
  readonly ropePairs: "half" | "interleaved";
  /** Causal attention. */
  readonly causal: boolean;
  /** Projection biases. */
  readonly bias: boolean;
  /** Tied embeddings. */
  readonly tieEmbeddings: boolean;
  /** Unembedding bias. */
  readonly unembedBias: boolean;
  /** Output head. */
  readonly head: HeadSpec;
  /** Default ε. */
  readonly eps: number;
  /** Base init. */
  readonly init: Required<InitConfig>;
}

function posInt(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) {
    throw new RangeError(`Cannot build the model: ${what} must be a positive integer, got ${v}`);
  }
  return v as number;
}

/**
 * Fills defaults and checks a config.
 *
 * @param cfg a model config
 * @returns the resolved, frozen config
 * @throws {RangeError} when sizes are missing, not positive integers, or
 *   inconsistent (d_model not divisible by H, H not by the KV heads, odd
 *   d_h with RoPE, T above the position table)
 */
export function resolveConfig(cfg: ModelConfig): ResolvedConfig {
  if (!cfg || typeof cfg !== "object") {
    throw new TypeError(`Cannot build the model: the config must be an object, got ${cfg}`);
  }
  const vocabSize = posInt(cfg.vocabSize, "vocabSize");
  const dModel = posInt(cfg.dModel, "dModel");
  const nLayers = posInt(cfg.nLayers, "nLayers");
  const nHeads = posInt(cfg.nHeads, "nHeads");
  const nKvHeads = posInt(cfg.nKvHeads ?? nHeads, "nKvHeads");
  const batch = posInt(cfg.batch, "batch");
  const seqLen = posInt(cfg.seqLen, "seqLen");
  const maxSeqLen = posInt(cfg.maxSeqLen ?? seqLen, "maxSeqLen");
  const dFf = posInt(cfg.dFf ?? 4 * dModel, "dFf");
  if (dModel % nHeads !== 0) {
    throw new RangeError(
      `Cannot build the model: dModel ${dModel} is not divisible by nHeads ${nHeads}`,
    );
  }
  if (nHeads % nKvHeads !== 0) {
    throw new RangeError(
      `Cannot build the model: nHeads ${nHeads} is not divisible by nKvHeads ${nKvHeads}`,
    );
  }
  if (seqLen > maxSeqLen) {
    throw new RangeError(
      `Cannot build the model: seqLen ${seqLen} exceeds maxSeqLen ${maxSeqLen}`,
    );
  }
  const dHead = dModel / nHeads;
  const positions = cfg.positions ?? "learned";
  if (!["learned", "rope", "none"].includes(positions)) {
    throw new RangeError(`Cannot build the model: unknown positions "${positions}"`);
  }
  if (positions === "rope" && dHead % 2 !== 0) {
    throw new RangeError(`Cannot build the model: RoPE needs an even head width, got ${dHead}`);
  }
  const mlp = cfg.mlp ?? "gelu";
  if (!["gelu", "relu2", "swiglu"].includes(mlp)) {
    throw new RangeError(`Cannot build the model: unknown mlp "${mlp}" (gelu, relu2, swiglu)`);
  }
  const head = cfg.head ?? { kind: "lm" };
  if (head.kind === "classify") posInt(head.classes, "head.classes");
  else if (head.kind === "regress") posInt(head.outputs, "head.outputs");
  else if (head.kind !== "lm") {
    throw new RangeError(`Cannot build the model: unknown head "${(head as HeadSpec).kind}"`);
  }
  const eps = cfg.eps ?? 1e-5;
  if (!(eps >= 0)) throw new RangeError(`Cannot build the model: eps must be >= 0, got ${eps}`);
  const std = cfg.init?.std ?? 0.02;
  if (!(std > 0)) throw new RangeError(`Cannot build the model: init.std must be > 0, got ${std}`);
  const scheme = cfg.init?.scheme ?? "normal";
  if (scheme !== "normal" && scheme !== "megatron") {
    throw new RangeError(`Cannot build the model: unknown init scheme "${scheme}"`);
  }
  return Object.freeze({
    vocabSize,
    dModel,
    nLayers,
    nHeads,
    nKvHeads,
    dHead,
    dFf,
    batch,
    seqLen,
    maxSeqLen,
    mlp,
    positions,
    ropeTheta: cfg.ropeTheta ?? 10000,
    ropePairs: cfg.ropePairs ?? "half",
    causal: cfg.causal ?? true,
    bias: cfg.bias ?? true,
    tieEmbeddings: cfg.tieEmbeddings ?? false,
    unembedBias: cfg.unembedBias ?? false,
    head: Object.freeze({ ...head }),
    eps,
    init: Object.freeze({ scheme, std }),
  });
}
