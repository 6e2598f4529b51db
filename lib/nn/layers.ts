/**
 * The block vocabulary: linear layers, embeddings, RoPE, multi-head
 * attention (causal or bidirectional, grouped KV heads) and MLPs (GELU,
 * ReLU², SwiGLU), written once with placement-neutral *slots*.
 *
 * A slot is a `residual` node with an empty (zero) body and role
 * `slot:<name>`: the identity, marking a point where a placement may put
 * a norm (q/k/v before RoPE, the concatenated heads before W_O, the MLP
 * hidden after the activation, the embedding output, the final stream).
 * Placements replace slots; unfilled slots become their input.
 *
 * Weights are stored `[in, out]` (y = x W + b), named per spec §16.
 *
 * @module
 */

import {
  add,
  attention,
  broadcastTo,
  concat,
  cos,
  exp,
  full,
  gather,
  gelu,
  iota,
  matmul,
  mul,
  param,
  permute,
  relu,
  reshape,
  residual,
  silu,
  sin,
  slice,
  square,
  sub,
} from "../ir/builders.ts";
import type { FloatDType } from "../ir/dtype.ts";
import type { Expr } from "../ir/expr.ts";
import type { ResolvedConfig } from "./config.ts";

type F = Expr<FloatDType>;

/** Slots a neutral block exposes to placements. */
export type SlotName =
  | "emb"
  | "final"
  | "attn.q"
  | "attn.k"
  | "attn.v"
  | "attn.heads"
  | "mlp.hidden";

/** Every slot name. */
export const SLOT_NAMES: readonly SlotName[] = Object.freeze([
  "emb",
  "final",
  "attn.q",
  "attn.k",
  "attn.v",
  "attn.heads",
  "mlp.hidden",
]);

/** The role prefix that marks a slot's residual node. */
export const SLOT_ROLE_PREFIX = "slot:";

/**
 * Marks a slot: the identity, as a residual node with a zero body.
 *
 * @param x the value at the slot
 * @param name which slot
 * @param layer its block (−1 outside blocks)
 * @returns `x`, marked
 */
export function slot<D extends FloatDType>(x: Expr<D>, name: SlotName, layer: number): Expr<D> {
  return residual(x, () => full(x.shape, 0, x.dtype), {
    role: `${SLOT_ROLE_PREFIX}${name}`,
    layer,
  });
}

/**
 * A linear layer `x W + b` with `W` named `<prefix>.weight` `[in, out]`.
 *
 * @param x input `[..., in]`
 * @param prefix parameter prefix, e.g. `blocks.0.attn.q`
 * @param out output width
 * @param bias add `<prefix>.bias` `[out]`
 * @returns `[..., out]`
 */
export function linear(x: Expr, prefix: string, out: number, bias: boolean): Expr {
  const din = x.shape[x.shape.length - 1]!;
  let y: Expr = matmul(x, param(`${prefix}.weight`, [din, out], x.dtype));
  if (bias) y = add(y, param(`${prefix}.bias`, [out], x.dtype));
  return y;
}

/**
 * Rotary position embedding over `[..., T, d_h]`.
 *
 * Position t rotates each pair by angle `t·θ^(−2j/d_h)`. With "half" pairs
 * (the default, spec §15.12) coordinate j pairs with j + d_h/2; with
 * "interleaved" pairs, 2j pairs with 2j+1.
 *
 * @param x queries or keys `[..., T, d_h]`
 * @param theta the base θ
 * @param pairs the pairing convention
 * @returns the rotated input
 */
export function rope(x: Expr, theta: number, pairs: "half" | "interleaved" = "half"): Expr {
  const r = x.shape.length;
  const t = x.shape[r - 2]!, dh = x.shape[r - 1]!, half = dh / 2;
  if (dh % 2 !== 0) {
    throw new RangeError(`Cannot apply RoPE to a head width of ${dh}: it must be even`);
  }
  const pos = iota([t, half], 0, "f32");
  const j = iota([t, half], 1, "f32");
  const ang = mul(pos, exp(mul(j, (-2 * Math.log(theta)) / dh)));
  const c = cos(ang), s = sin(ang);
  const lead = x.shape.slice(0, -1);
  let x1: Expr, x2: Expr;
  if (pairs === "half") {
    x1 = slice(x, -1, 0, half);
    x2 = slice(x, -1, half, dh);
  } else {
    const xr = reshape(x, [...lead, half, 2]);
    x1 = reshape(slice(xr, -1, 0, 1), [...lead, half]);
    x2 = reshape(slice(xr, -1, 1, 2), [...lead, half]);
  }
  const o1 = sub(mul(x1, c), mul(x2, s));
  const o2 = add(mul(x2, c), mul(x1, s));
  if (pairs === "half") return concat([o1, o2], -1);
  return reshape(concat([reshape(o1, [...lead, half, 1]), reshape(o2, [...lead, half, 1])], -1), [
    ...lead,
    dh,
  ]);
}

// [B, T, n·dh] → [B, n, T, dh]
function splitHeads(y: Expr, n: number, dh: number): Expr {
  const [b, t] = y.shape as [number, number];
  return permute(reshape(y, [b, t, n, dh]), [0, 2, 1, 3]);
}

// [B, Hkv, T, dh] → [B, H, T, dh], each KV head serving H/Hkv query heads
function repeatKv(y: Expr, groups: number): Expr {
  if (groups === 1) return y;
  const [b, hk, t, dh] = y.shape as [number, number, number, number];
  const e = broadcastTo(reshape(y, [b, hk, 1, t, dh]), [b, hk, groups, t, dh]);
  return reshape(e, [b, hk * groups, t, dh]);
}

/**
 * The attention sublayer body `Attn(h)` of block `layer`, with slots for
 * q/k/v (per head, before RoPE) and the concatenated heads (before W_O).
 *
 * @param cfg the model config
 * @param layer the 0-based block index
 * @param h the sublayer input `[B, T, D]`
 * @returns the sublayer output `[B, T, D]` (after W_O and b_O)
 */
export function attentionBody(cfg: ResolvedConfig, layer: number, h: Expr): Expr {
  const p = `blocks.${layer}.attn`;
  const { nHeads: nh, nKvHeads: nkv, dHead: dh } = cfg;
  const [b, t, dStream] = h.shape as [number, number, number];
  let q = slot(splitHeads(linear(h, `${p}.q`, nh * dh, cfg.bias), nh, dh) as F, "attn.q", layer);
  let k = slot(splitHeads(linear(h, `${p}.k`, nkv * dh, cfg.bias), nkv, dh) as F, "attn.k", layer);
  const v = slot(
    splitHeads(linear(h, `${p}.v`, nkv * dh, cfg.bias), nkv, dh) as F,
    "attn.v",
    layer,
  );
  if (cfg.positions === "rope") {
    q = rope(q, cfg.ropeTheta, cfg.ropePairs) as F;
    k = rope(k, cfg.ropeTheta, cfg.ropePairs) as F;
  }
  const g = nh / nkv;
  const a = attention(q, repeatKv(k, g) as F, repeatKv(v, g) as F, { causal: cfg.causal });
  const heads = slot(reshape(permute(a, [0, 2, 1, 3]), [b, t, nh * dh]), "attn.heads", layer);
  return linear(heads, `${p}.o`, dStream, cfg.bias);
}

/**
 * The MLP sublayer body `FFN(h)` of block `layer`, with a slot on the
 * hidden activation (for SwiGLU, on `SiLU(gate) ⊙ up`, spec §15.9).
 *
 * @param cfg the model config
 * @param layer the 0-based block index
 * @param h the sublayer input `[B, T, D]`
 * @returns the sublayer output `[B, T, D]`
 */
export function mlpBody(cfg: ResolvedConfig, layer: number, h: Expr): Expr {
  const p = `blocks.${layer}.mlp`;
  const dStream = h.shape[h.shape.length - 1]!;
  const up = linear(h, `${p}.fc1`, cfg.dFf, cfg.bias) as F;
  let hid: F;
  if (cfg.mlp === "gelu") hid = gelu(up);
  else if (cfg.mlp === "relu2") hid = square(relu(up));
  else hid = mul(silu(linear(h, `${p}.gate`, cfg.dFf, cfg.bias) as F), up);
  return linear(slot(hid, "mlp.hidden", layer), `${p}.fc2`, dStream, cfg.bias);
}

/**
 * Token (and learned positional) embeddings of integer ids.
 *
 * @param cfg the model config
 * @param ids token ids `[B, T]` (i32)
 * @param width the stream width (d_model, or d_model − 1 when compressed)
 * @returns the stream `[B, T, width]`
 */
export function embed(cfg: ResolvedConfig, ids: Expr, width: number): Expr {
  const [b, t] = ids.shape as [number, number];
  let h: Expr = gather(param("tok_emb.weight", [cfg.vocabSize, width]), ids as Expr<"i32">);
  if (cfg.positions === "learned") {
    const pos = slice(param("pos_emb.weight", [cfg.maxSeqLen, width]), 0, 0, t);
    h = add(h, broadcastTo(pos, [b, t, width]));
  }
  return h;
}
