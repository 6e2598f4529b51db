/**
 * The placement catalogue (spec §1–§7), each a few rules over the same
 * neutral block, and a registry from command-line names to placements.
 *
 * Every placement takes `{ norm, eps, affine }` to choose the norm kind
 * where the paper allows it (spec §15.6 defaults: RMSNorm for Mix-LN, LNS
 * and HybridNorm(*); LayerNorm elsewhere). `norm: "identity"` removes the
 * norms but keeps everything else (DeepNorm's α, LNS's 1/√l, NormFormer's
 * head scale and λ), which the structural tests use.
 *
 * @module
 */

import { add, broadcastTo, mul, type Operand, param, reshape } from "../ir/builders.ts";
import type { Expr } from "../ir/expr.ts";
import type { ResolvedConfig } from "./config.ts";
import type { NormKindName, NormSpec } from "./norms.ts";
import { composePlacements, definePlacement, type InitScale, type Placement } from "./placement.ts";

/** The norm choice every placement accepts. */
export interface PlacementOptions {
  /** Norm kind (each placement has a default and a set of allowed kinds). */
  readonly norm?: NormKindName;
  /** ε (default: the model's). */
  readonly eps?: number;
  /** Learned γ/β (default true). */
  readonly affine?: boolean;
}

function spec(
  name: string,
  o: PlacementOptions,
  dflt: NormKindName,
  allowed: readonly NormKindName[],
): NormSpec {
  const kind = o.norm ?? dflt;
  if (!allowed.includes(kind)) {
    throw new RangeError(
      `Cannot make placement "${name}" with norm "${kind}": it allows ${allowed.join(", ")}`,
    );
  }
  return { kind, eps: o.eps, affine: o.affine };
}

const STREAM_KINDS: readonly NormKindName[] = ["layer", "rms", "identity"];
function scale(x: Operand, c: number): Expr {
  return mul(x, c);
}

/**
 * Post-LN: `LN(x + f(x))` per sublayer, no final norm (spec §1).
 *
 * @param o norm options, and `embNorm` for BERT's embedding LayerNorm (`ln_emb`)
 * @returns the placement
 */
export function postLn(o: PlacementOptions & { embNorm?: boolean } = {}): Placement {
  return definePlacement("post-ln", { norm: spec("post-ln", o, "layer", STREAM_KINDS) }, (k) => [
    k.sublayer((x, f, s) => k.norm(add(x, f(x)), s.inNorm)),
    ...(o.embNorm ? [k.slot("emb", (x) => k.norm(x, "ln_emb"))] : []),
  ]);
}

/**
 * Pre-LN: `x + f(N(x))` per sublayer, final norm `ln_f` (spec §1).
 * `norm: "rms"` is Pre-RMSNorm; `"fake"` is the LN-free form.
 *
 * @param o norm options
 * @returns the placement
 */
export function preLn(o: PlacementOptions = {}): Placement {
  const s = spec("pre-ln", o, "layer", [...STREAM_KINDS, "fake", "l2"]);
  return definePlacement(nameFor("pre-ln", s), { norm: s }, (k) => [
    k.sublayer((x, f, st) => add(x, f(k.norm(x, st.inNorm)))),
    k.slot("final", (x) => k.norm(x, "ln_f")),
  ]);
}

function nameFor(base: string, s: NormSpec): string {
  if (base === "pre-ln" && s.kind === "rms") return "pre-rms";
  if (base === "pre-ln" && s.kind === "fake") return "ln-free";
  return base;
}

/**
 * Pre-RMSNorm: Pre-LN with RMSNorm (spec §4).
 *
 * @param o norm options (ε, affine; `norm` may only be "rms" or "identity")
 * @returns the placement
 */
export function preRms(o: PlacementOptions = {}): Placement {
  return preLn({ ...o, norm: spec("pre-rms", o, "rms", ["rms", "identity"]).kind });
}

/**
 * Pre-CRMSNorm: Pre-LN on a compressed (d_model − 1) stream with CRMSNorm
 * (spec §4 step 4). Build it from scratch, or convert a Pre-LN model with
 * `toPreCrms`.
 *
 * @param o norm options (ε, affine; `norm` may only be "crms" or "identity")
 * @returns the placement (its `compressed` flag narrows the stream)
 */
export function preCrms(o: PlacementOptions = {}): Placement {
  const s = spec("pre-crms", o, "crms", ["crms", "identity"]);
  return definePlacement("pre-crms", { norm: s, compressed: true }, (k) => [
    k.sublayer((x, f, st) => add(x, f(k.norm(x, st.inNorm)))),
    k.slot("final", (x) => k.norm(x, "ln_f")),
  ]);
}

/** NormFormer options (spec §2). */
export interface NormFormerOptions extends PlacementOptions {
  /** Head scale γ ∈ R^H: before W_O (paper), after W_O (fairseq), or off (default "pre_WO"). */
  readonly headScale?: "pre_WO" | "post_WO" | "none";
  /** λ ⊙ y on the FFN residual (fairseq `--scale-resids`; default false). */
  readonly residScale?: boolean;
  /** LN_post after attention (`--scale-attn`; default true). */
  readonly postAttnNorm?: boolean;
  /** LN_ffn after the activation (`--scale-fc`; default true). */
  readonly ffnNorm?: boolean;
}

// repeat(γ ∈ R^H, d_h) as a [H·d_h] vector: head h's scale on its d_h columns
function headScaleVector(cfg: ResolvedConfig, layer: number): Expr {
  const g = param(`blocks.${layer}.attn.head_scale`, [cfg.nHeads]);
  return reshape(broadcastTo(reshape(g, [cfg.nHeads, 1]), [cfg.nHeads, cfg.dHead]), [
    cfg.nHeads * cfg.dHead,
  ]);
}

/**
 * NormFormer: Pre-LN plus LN_post, head scale, LN_ffn and λ (spec §2).
 *
 * @param o norm and feature options
 * @returns the placement
 */
export function normFormer(o: NormFormerOptions = {}): Placement {
  const hs = o.headScale ?? "pre_WO";
  return definePlacement("normformer", { norm: spec("normformer", o, "layer", STREAM_KINDS) }, (
    k,
  ) => [
    k.sublayer((x, f, s) => {
      let a = f(k.norm(x, s.inNorm));
      if (hs === "post_WO") a = mul(a, broadcastTo(headScaleVector(k.cfg, s.layer), a.shape));
      return add(x, o.postAttnNorm === false ? a : k.norm(a, s.outNorm));
    }, { role: "attn" }),
    k.sublayer((y, f, s) => {
      const lam = o.residScale ? mul(y, param(s.name("resid_scale"), [y.shape[2]!])) : y;
      return add(lam, f(k.norm(y, s.inNorm)));
    }, { role: "mlp" }),
    ...(hs === "pre_WO"
      ? [k.slot("attn.heads", (h, s) => mul(h, headScaleVector(k.cfg, s.layer)))]
      : []),
    ...(o.ffnNorm === false
      ? []
      : [k.slot("mlp.hidden", (h, s) => k.norm(h, s.name("mlp.ln_inner")))]),
    k.slot("final", (x) => k.norm(x, "ln_f")),
  ]);
}

const V_O_FC = /^blocks\.\d+\.(attn\.(v|o)|mlp\.(fc1|fc2))\.(weight|bias)$/;

/**
 * Sub-LN (Magneto, spec §3): Pre-LN plus an inner LN before W_O and after
 * the MLP activation; init × √(ln 2N) on W_V, W_O, W_1, W_2.
 *
 * @param o norm options
 * @returns the placement
 */
export function subLn(o: PlacementOptions = {}): Placement {
  return definePlacement("sub-ln", {
    norm: spec("sub-ln", o, "layer", STREAM_KINDS),
    initScales: (cfg) => [{
      pattern: V_O_FC,
      factor: Math.sqrt(Math.log(2 * cfg.nLayers)),
      why: "Magneto γ = √(ln 2N)",
    }],
  }, (k) => [
    k.sublayer((x, f, s) => add(x, f(k.norm(x, s.inNorm)))),
    k.slot("attn.heads", (h, s) => k.norm(h, s.name("attn.ln_inner"))),
    k.slot("mlp.hidden", (h, s) => k.norm(h, s.name("mlp.ln_inner"))),
    k.slot("final", (x) => k.norm(x, "ln_f")),
  ]);
}

/**
 * DeepNorm constants for an N-layer encoder-only or decoder-only model
 * (spec §1, torchscale): α = (2N)^(1/4), β = (8N)^(-1/4).
 *
 * @param nLayers N
 * @returns α (residual scale) and β (init scale of W_V, W_O, W_1, W_2)
 */
export function deepNormConstants(nLayers: number): { alpha: number; beta: number } {
  return { alpha: Math.pow(2 * nLayers, 0.25), beta: Math.pow(8 * nLayers, -0.25) };
}

/**
 * DeepNorm: `LN(α·x + f(x))`, init × β on W_V, W_O, W_1, W_2 (spec §1;
 * torchscale's decoder-only constants unless given).
 *
 * @param o norm options, and α / β overrides
 * @returns the placement
 */
export function deepNorm(o: PlacementOptions & { alpha?: number; beta?: number } = {}): Placement {
  return definePlacement("deepnorm", {
    norm: spec("deepnorm", o, "layer", STREAM_KINDS),
    initScales: (cfg): InitScale[] => [{
      pattern: V_O_FC,
      factor: o.beta ?? deepNormConstants(cfg.nLayers).beta,
      why: "DeepNet β = (8N)^(-1/4)",
    }],
  }, (k) => {
    const alpha = o.alpha ?? deepNormConstants(k.cfg.nLayers).alpha;
    return [k.sublayer((x, f, s) => k.norm(add(scale(x, alpha), f(x)), s.inNorm))];
  });
}

/** QK-norm options. */
export interface QkNormOptions extends PlacementOptions {
  /**
   * The q/k norm kind (default "layer"; "l2" is Henry et al. 2020 with a
   * learned scalar gain replacing 1/√d_h).
   */
  readonly qk?: "layer" | "rms" | "l2" | "identity";
}

/**
 * The initial QK-norm gain g of Henry et al. [recall: g₀ = log₂(L² − L)
 * with L the training sequence length; not re-verified against the paper].
 *
 * @param seqLen the training sequence length L
 * @returns g₀
 */
export function qkGainInit(seqLen: number): number {
  return Math.log2(Math.max(2, seqLen * seqLen - seqLen));
}

/**
 * QK-norm: Pre-LN with per-head norms on q and k before RoPE, one γ over
 * d_h shared by the heads (spec §1, §15.5). With `qk: "l2"`, q and k are
 * L2-normalised and the logits become g·q̂·k̂ (q is scaled by g·√d_h, which
 * the attention's 1/√d_h cancels) [recall: Henry et al. 2020].
 *
 * @param o stream norm options and the q/k norm kind
 * @returns the placement
 */
export function qkNorm(o: QkNormOptions = {}): Placement {
  const qk = o.qk ?? "layer";
  const qkSpec = spec("qk-norm", { ...o, norm: qk }, "layer", ["layer", "rms", "l2", "identity"]);
  const slots = definePlacement("qk-norm/qk", { norm: qkSpec }, (k) => [
    k.slot("attn.q", (q, s) => {
      const n = k.norm(q, s.name("attn.q_norm"));
      if (qk !== "l2") return n;
      const g = param(s.name("attn.qk_gain"), []);
      return mul(n, broadcastTo(mul(g, Math.sqrt(k.cfg.dHead)), n.shape));
    }),
    k.slot("attn.k", (x, s) => k.norm(x, s.name("attn.k_norm"))),
  ]);
  return composePlacements("qk-norm", preLn({ ...o, norm: o.norm ?? "layer" }), slots);
}

/**
 * Mix-LN: Post-LN in blocks `0 … ⌊αN⌋−1`, Pre-LN after, final norm kept
 * (spec §1, §15.11). The default norm is RMSNorm.
 *
 * @param o norm options, and which blocks are Post-LN: `ratio` α (default
 *   0.25), `postLayers` (the first k blocks), or `postLayerList` (any
 *   0-based block indices, for experiments beyond the paper)
 * @returns the placement
 * @throws {RangeError} when `postLayerList` names a block outside the model
 */
export function mixLn(
  o: PlacementOptions & {
    ratio?: number;
    postLayers?: number;
    postLayerList?: readonly number[];
  } = {},
): Placement {
  const s = spec("mix-ln", o, "rms", STREAM_KINDS);
  return definePlacement("mix-ln", { norm: s }, (k) => {
    const n = k.cfg.nLayers;
    let isPost: (l: number) => boolean;
    if (o.postLayerList) {
      const bad = o.postLayerList.filter((l) => !Number.isInteger(l) || l < 0 || l >= n);
      if (bad.length) {
        throw new RangeError(
          `Cannot place mix-ln: postLayerList [${o.postLayerList.join(",")}] names block(s) ` +
            `${bad.join(",")} outside 0..${n - 1}`,
        );
      }
      const set = new Set(o.postLayerList);
      isPost = (l) => set.has(l);
    } else {
      const cut = o.postLayers ?? Math.floor((o.ratio ?? 0.25) * n);
      isPost = (l) => l < cut;
    }
    return [
      k.sublayer((x, f, st) => k.norm(add(x, f(x)), st.inNorm), { layers: isPost }),
      k.sublayer((x, f, st) => add(x, f(k.norm(x, st.inNorm)))),
      k.slot("final", (x) => k.norm(x, "ln_f")),
    ];
  });
}

/**
 * Peri-LN: `x + N_out(f(N_in(x)))` for both sublayers, final norm, no
 * embedding norm (spec §1, §15.10) [recall: arXiv 2502.02732].
 *
 * @param o norm options
 * @returns the placement
 */
export function periLn(o: PlacementOptions = {}): Placement {
  return definePlacement("peri-ln", { norm: spec("peri-ln", o, "layer", STREAM_KINDS) }, (k) => [
    k.sublayer((x, f, s) => add(x, k.norm(f(k.norm(x, s.inNorm)), s.outNorm))),
    k.slot("final", (x) => k.norm(x, "ln_f")),
  ]);
}

/**
 * LayerNorm Scaling: Pre-LN with each sublayer norm's output × 1/√l,
 * l the 1-based layer; the final norm is not scaled (spec §5). Default
 * RMSNorm; with LayerNorm β is scaled too (§15.2).
 *
 * @param o norm options
 * @returns the placement
 */
export function lnScaling(o: PlacementOptions = {}): Placement {
  const s = spec("ln-scaling", o, "rms", STREAM_KINDS);
  return definePlacement("ln-scaling", { norm: s }, (k) => [
    k.sublayer((x, f, st) => add(x, f(scale(k.norm(x, st.inNorm), 1 / Math.sqrt(st.l))))),
    k.slot("final", (x) => k.norm(x, "ln_f")),
  ]);
}

/**
 * HybridNorm: QKV-norm attention without an input norm, `z = N(x + Attn(x))`
 * (`ln_2`), then `z + FFN(z)`; final norm (spec §6). Default RMSNorm.
 *
 * @param o norm options
 * @returns the placement
 */
export function hybridNorm(o: PlacementOptions = {}): Placement {
  const s = spec("hybridnorm", o, "rms", STREAM_KINDS);
  return definePlacement("hybridnorm", { norm: s }, (k) => [
    k.slot(["attn.q", "attn.k", "attn.v"], (x, st) => {
      const which = st.slot.slice("attn.".length);
      return k.norm(x, st.name(`attn.${which}_norm`));
    }),
    k.sublayer((x, f, st) => k.norm(add(x, f(x)), st.name("ln_2")), { role: "attn" }),
    k.slot("final", (x) => k.norm(x, "ln_f")),
  ]);
}

/**
 * HybridNorm*: HybridNorm except block 0 (the spec's block 1), which is
 * Pre-Norm with QKV-norm on both sublayers: HybridNorm plus exactly one
 * norm, `blocks.0.ln_1` (spec §6, §15.7).
 *
 * @param o norm options
 * @returns the placement
 */
export function hybridNormStar(o: PlacementOptions = {}): Placement {
  const s = spec("hybridnorm-star", o, "rms", STREAM_KINDS);
  const first = definePlacement("hybridnorm-star/block0", { norm: s }, (k) => [
    k.sublayer((x, f, st) => add(x, f(k.norm(x, st.inNorm))), { layers: (l) => l === 0 }),
  ]);
  return composePlacements("hybridnorm-star", first, hybridNorm(o));
}

/**
 * LN-free (Heimersheim 2024): Pre-LN with FakeLN `(x − μ)/σ̄`, σ̄ a frozen
 * constant per norm (`<site>.sigma`; measure it with `calibrateFakeLn`).
 *
 * @param o `affine` keeps γ/β (default true); `norm` may only be "fake" or "identity"
 * @returns the placement
 */
export function lnFree(o: PlacementOptions = {}): Placement {
  return preLn({ ...o, norm: spec("ln-free", o, "fake", ["fake", "identity"]).kind });
}

/** A placement factory by command-line name. */
export type PlacementFactory = (o?: PlacementOptions) => Placement;

/** Command-line names → placement factories. */
export const PLACEMENTS: Readonly<Record<string, PlacementFactory>> = Object.freeze({
  "post-ln": (o?: PlacementOptions) => postLn(o),
  "pre-ln": (o?: PlacementOptions) => preLn(o),
  "pre-rms": (o?: PlacementOptions) => preRms(o),
  "pre-crms": (o?: PlacementOptions) => preCrms(o),
  "normformer": (o?: PlacementOptions) => normFormer(o),
  "sub-ln": (o?: PlacementOptions) => subLn(o),
  "deepnorm": (o?: PlacementOptions) => deepNorm(o),
  "qk-norm": (o?: PlacementOptions) => qkNorm(o),
  "mix-ln": (o?: PlacementOptions) => mixLn(o),
  "peri-ln": (o?: PlacementOptions) => periLn(o),
  "ln-scaling": (o?: PlacementOptions) => lnScaling(o),
  "hybridnorm": (o?: PlacementOptions) => hybridNorm(o),
  "hybridnorm-star": (o?: PlacementOptions) => hybridNormStar(o),
  "ln-free": (o?: PlacementOptions) => lnFree(o),
});

/**
 * The placement registered under a command-line name.
 *
 * @param name e.g. "pre-ln", "hybridnorm-star"
 * @param o norm options passed to the factory
 * @returns the placement
 * @throws {RangeError} for an unknown name, listing the known ones
 */
export function placementByName(name: string, o?: PlacementOptions): Placement {
  const f = Object.hasOwn(PLACEMENTS, name) ? PLACEMENTS[name] : undefined;
  if (!f) {
    throw new RangeError(
      `Cannot find placement "${name}": known placements are ${Object.keys(PLACEMENTS).join(", ")}`,
    );
  }
  return f(o);
}
