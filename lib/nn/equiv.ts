/**
 * Equivalence transforms: pure functions on parameter maps that turn one
 * variant into another computing the same function (spec §4, §12).
 *
 * - §4 (Jiang et al. 2023): Pre-LN → zero-mean Pre-LN → Pre-RMSNorm →
 *   Pre-CRMSNorm ({@link toZeroMeanPreLn}, {@link toPreRms},
 *   {@link toPreCrms}), built from {@link foldPreLnAffine},
 *   {@link recenterWriters} and {@link compressStream}; and the
 *   training-equivalent graph {@link centerOnTheFly}.
 * - §12 folds: FakeLN into the next linear ({@link foldFakeLn}), head scale
 *   into W_O ({@link foldHeadScale}), γ_v into W_O ({@link foldVNormGain}),
 *   LNS into γ ({@link foldLnScaling}), DeepNorm's α into ε
 *   ({@link foldDeepNormAlpha}).
 *
 * Each returns the target's config, placement and parameters; the values
 * are computed in float64 (the arrays are typed f32 and hold float64 data,
 * so a float32 consumer rounds them once).
 *
 * @module
 */

import { array, type NDArray, toFloat64 } from "../ir/array.ts";
import { broadcastTo, gather, mean, sub } from "../ir/builders.ts";
import type { FloatDType } from "../ir/dtype.ts";
import { type Expr, mk, type OpArgs, toposort, withSrc } from "../ir/expr.ts";
import { interpret } from "../interpret.ts";
import { rewrite } from "../rewrite/driver.ts";
import { pat } from "../rewrite/pattern.ts";
import { rule, ruleSet } from "../rewrite/rules.ts";
import { type ModelConfig, resolveConfig } from "./config.ts";
import { type Model, tokenCrossEntropy } from "./model.ts";
import type { Placement } from "./placement.ts";
import { normFormer, postLn, preCrms, preLn } from "./placements.ts";

/** Parameters by name. */
export type ParamMap = Record<string, NDArray>;

/** The result of a conversion: build `buildModel(config, placement)` and bind `params`. */
export interface Converted {
  /** The target config (e.g. biases on, untied, for folded models). */
  readonly config: ModelConfig;
  /** The target placement. */
  readonly placement: Placement;
  /** The target parameters. */
  readonly params: ParamMap;
}

interface M {
  d: Float64Array;
  shape: number[];
}

function get(p: ParamMap, name: string, what: string): M {
  const a = p[name];
  if (!a) {
    throw new TypeError(`Cannot ${what}: parameter "${name}" is missing from the parameter map`);
  }
  return { d: toFloat64(a), shape: [...a.shape] };
}

function opt(p: ParamMap, name: string): M | undefined {
  const a = p[name];
  return a ? { d: toFloat64(a), shape: [...a.shape] } : undefined;
}

function out(m: M): NDArray {
  return array(m.d, m.shape, "f32");
}

function filled(n: number, v: number): M {
  return { d: new Float64Array(n).fill(v), shape: [n] };
}

// diag(g) W: scale row i of W [r, c] by g[i]
function scaleRows(w: M, g: Float64Array): M {
  const [r, c] = w.shape as [number, number];
  const d = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) d[i * c + j] = g[i]! * w.d[i * c + j]!;
  return { d, shape: [r, c] };
}

// W diag(g): scale column j of W [r, c] by g[j]
function scaleCols(w: M, g: Float64Array): M {
  const [r, c] = w.shape as [number, number];
  const d = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) d[i * c + j] = w.d[i * c + j]! * g[j]!;
  return { d, shape: [r, c] };
}

// v W + b: [r] · [r, c] + [c]
function vecMat(v: Float64Array, w: M, b?: M): M {
  const [r, c] = w.shape as [number, number];
  const d = new Float64Array(c);
  if (b) d.set(b.d);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) d[j]! += v[i]! * w.d[i * c + j]!;
  return { d, shape: [c] };
}

// x P on each row: subtract the mean over the last axis
function centerLast(m: M): M {
  const c = m.shape[m.shape.length - 1]!;
  const d = new Float64Array(m.d);
  for (let o = 0; o < d.length; o += c) {
    let s = 0;
    for (let j = 0; j < c; j++) s += d[o + j]!;
    const mu = s / c;
    for (let j = 0; j < c; j++) d[o + j]! -= mu;
  }
  return { d, shape: m.shape };
}

// P W: subtract the mean over the first (input) axis from each column
function centerFirst(w: M): M {
  const [r, c] = w.shape as [number, number];
  const d = new Float64Array(w.d);
  for (let j = 0; j < c; j++) {
    let s = 0;
    for (let i = 0; i < r; i++) s += d[i * c + j]!;
    for (let i = 0; i < r; i++) d[i * c + j]! -= s / r;
  }
  return { d, shape: [r, c] };
}

function transpose(w: M): M {
  const [r, c] = w.shape as [number, number];
  const d = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) d[j * r + i] = w.d[i * c + j]!;
  return { d, shape: [c, r] };
}

function scale(m: M, s: number): M {
  return { d: m.d.map((v) => v * s), shape: m.shape };
}

// [..., D] → [..., D−1]: keep the first D−1 entries of the last axis
function dropLast(m: M): M {
  const c = m.shape[m.shape.length - 1]!;
  const rows = m.d.length / c;
  const d = new Float64Array(rows * (c - 1));
  for (let i = 0; i < rows; i++) d.set(m.d.subarray(i * c, i * c + c - 1), i * (c - 1));
  return { d, shape: [...m.shape.slice(0, -1), c - 1] };
}

// a reader W [D, c] of a zero-mean stream: W[:D−1] − W[D−1]
function compressReader(w: M): M {
  const [r, c] = w.shape as [number, number];
  const d = new Float64Array((r - 1) * c);
  for (let i = 0; i < r - 1; i++) {
    for (let j = 0; j < c; j++) d[i * c + j] = w.d[i * c + j]! - w.d[(r - 1) * c + j]!;
  }
  return { d, shape: [r - 1, c] };
}

function readersOf(cfg: ReturnType<typeof resolveConfig>, layer: number, role: "attn" | "mlp") {
  const b = `blocks.${layer}`;
  if (role === "attn") return ["q", "k", "v"].map((t) => `${b}.attn.${t}`);
  return cfg.mlp === "swiglu" ? [`${b}.mlp.fc1`, `${b}.mlp.gate`] : [`${b}.mlp.fc1`];
}

// Folds a norm site's (γ, β) into the linear layers that read it.
function foldInto(
  p: ParamMap,
  outp: ParamMap,
  site: string,
  readers: readonly string[],
  width: number,
  what: string,
  divide = 1,
  center = false,
): void {
  const g = opt(p, `${site}.weight`)?.d ?? new Float64Array(width).fill(1);
  const beta = opt(p, `${site}.bias`)?.d ?? new Float64Array(width);
  const gs = g.map((v) => v / divide);
  for (const r of readers) {
    const w = r === "tok_emb^T"
      ? transpose(get(p, "tok_emb.weight", what))
      : get(p, `${r}.weight`, what);
    const name = r === "tok_emb^T" ? "unembed" : r;
    const b = opt(p, `${name}.bias`);
    outp[`${name}.bias`] = out(vecMat(beta, w, b ?? filled(w.shape[1]!, 0)));
    const wg = scaleRows(w, gs);
    outp[`${name}.weight`] = out(center ? centerFirst(wg) : wg);
  }
}

function copyExcept(p: ParamMap, drop: (name: string) => boolean): ParamMap {
  const o: ParamMap = {};
  for (const [k, v] of Object.entries(p)) if (!drop(k)) o[k] = v;
  return o;
}

function zeroBiases(cfg: ReturnType<typeof resolveConfig>, p: ParamMap, o: ParamMap): void {
  // a folded model has biases everywhere; missing writer biases are 0
  for (let i = 0; i < cfg.nLayers; i++) {
    for (const w of [`blocks.${i}.attn.o`, `blocks.${i}.mlp.fc2`]) {
      if (!o[`${w}.bias`]) {
        o[`${w}.bias`] = out(filled(get(p, `${w}.weight`, "fold").shape[1]!, 0));
      }
    }
  }
}

/**
 * §4 step 1: folds every Pre-LN norm's (γ, β) into the linear layers that
 * read it (W_QKV, W_1 and the SwiGLU gate, the unembedding), so the norms
 * become affine-free. The target has biases everywhere, an untied
 * unembedding and an unembedding bias.
 *
 * @param cfg the Pre-LN model's config
 * @param params its parameters (missing γ/β count as 1/0)
 * @returns a Pre-LN model with affine-free LayerNorms
 */
export function foldPreLnAffine(cfg: ModelConfig, params: ParamMap): Converted {
  const c = resolveConfig(cfg);
  const what = "fold the Pre-LN affine parameters";
  const o = copyExcept(params, (n) => /(^|\.)ln_(1|2|f)\.(weight|bias)$/.test(n));
  for (let i = 0; i < c.nLayers; i++) {
    foldInto(params, o, `blocks.${i}.ln_1`, readersOf(c, i, "attn"), c.dModel, what);
    foldInto(params, o, `blocks.${i}.ln_2`, readersOf(c, i, "mlp"), c.dModel, what);
  }
  foldInto(params, o, "ln_f", [c.tieEmbeddings ? "tok_emb^T" : "unembed"], c.dModel, what);
  zeroBiases(c, params, o);
  return {
    config: { ...cfg, bias: true, tieEmbeddings: false, unembedBias: true },
    placement: preLn({ norm: "layer", affine: false, eps: c.eps }),
    params: o,
  };
}

/**
 * §4 step 2: recentres every writer to the residual stream (token and
 * learned position rows, W_O/b_O, W_2/b_2), so the stream is zero-mean at
 * every depth. Needs an untied model (centring E would change a tied
 * unembedding); {@link foldPreLnAffine} unties.
 *
 * @param cfg the model config
 * @param params its parameters
 * @returns the recentred parameters
 * @throws {TypeError} for a tied model
 */
export function recenterWriters(cfg: ModelConfig, params: ParamMap): ParamMap {
  const c = resolveConfig(cfg);
  const what = "recenter the residual writers";
  if (c.tieEmbeddings) {
    throw new TypeError(`Cannot ${what}: the embeddings are tied; untie them (foldPreLnAffine)`);
  }
  const o: ParamMap = { ...params };
  const names = ["tok_emb.weight", ...(c.positions === "learned" ? ["pos_emb.weight"] : [])];
  for (let i = 0; i < c.nLayers; i++) {
    for (const w of [`blocks.${i}.attn.o`, `blocks.${i}.mlp.fc2`]) {
      names.push(`${w}.weight`);
      if (params[`${w}.bias`]) names.push(`${w}.bias`);
    }
  }
  for (const n of names) o[n] = out(centerLast(get(params, n, what)));
  return o;
}

/**
 * §4 steps 1–2: the zero-mean Pre-LN model (affine folded, writers
 * recentred, affine-free LayerNorm), exactly equal to the original.
 *
 * @param cfg the Pre-LN config
 * @param params the Pre-LN parameters
 * @returns the zero-mean Pre-LN model
 */
export function toZeroMeanPreLn(cfg: ModelConfig, params: ParamMap): Converted {
  const f = foldPreLnAffine(cfg, params);
  return { ...f, params: recenterWriters(f.config, f.params) };
}

/**
 * §4 step 3: Pre-RMSNorm (affine-free RMSNorm everywhere, same ε), exact
 * because the stream is zero-mean.
 *
 * @param cfg the Pre-LN config
 * @param params the Pre-LN parameters
 * @returns the Pre-RMSNorm model
 */
export function toPreRms(cfg: ModelConfig, params: ParamMap): Converted {
  const z = toZeroMeanPreLn(cfg, params);
  const eps = resolveConfig(cfg).eps;
  return { ...z, placement: preLn({ norm: "rms", affine: false, eps }) };
}

/**
 * §4 step 4: compresses a zero-mean stream to its first d−1 coordinates:
 * writers keep their first d−1 output columns, readers become
 * `W[:d−1] − W[d−1]`.
 *
 * @param cfg the (folded, untied) config
 * @param params zero-mean parameters (from {@link toZeroMeanPreLn})
 * @returns parameters for a d−1 stream
 */
export function compressStream(cfg: ModelConfig, params: ParamMap): ParamMap {
  const c = resolveConfig(cfg);
  const what = "compress the stream";
  if (c.tieEmbeddings) throw new TypeError(`Cannot ${what}: untie the embeddings first`);
  const o: ParamMap = { ...params };
  const writers = ["tok_emb.weight", ...(c.positions === "learned" ? ["pos_emb.weight"] : [])];
  const readers = ["unembed.weight"];
  for (let i = 0; i < c.nLayers; i++) {
    for (const w of [`blocks.${i}.attn.o`, `blocks.${i}.mlp.fc2`]) {
      writers.push(`${w}.weight`);
      if (params[`${w}.bias`]) writers.push(`${w}.bias`);
    }
    for (const r of [...readersOf(c, i, "attn"), ...readersOf(c, i, "mlp")]) {
      readers.push(`${r}.weight`);
    }
  }
  for (const n of writers) o[n] = out(dropLast(get(params, n, what)));
  for (const n of readers) o[n] = out(compressReader(get(params, n, what)));
  return o;
}

/**
 * §4: Pre-LN → Pre-CRMSNorm on a d−1 stream, exactly equal.
 *
 * @param cfg the Pre-LN config
 * @param params the Pre-LN parameters
 * @returns the Pre-CRMSNorm model
 */
export function toPreCrms(cfg: ModelConfig, params: ParamMap): Converted {
  const z = toZeroMeanPreLn(cfg, params);
  const eps = resolveConfig(cfg).eps;
  return {
    config: z.config,
    placement: preCrms({ affine: false, eps }),
    params: compressStream(z.config, z.params),
  };
}

function centered(x: Expr): Expr {
  return sub(x, broadcastTo(mean(x as Expr<FloatDType>, -1, { keepdims: true }), x.shape));
}

const WRITER = /^blocks\.\d+\.(attn\.o|mlp\.fc2)\.(weight|bias)$|^pos_emb\.weight$/;

function isWriter(e: Expr): boolean {
  return e.op === "param" && WRITER.test((e.arg as OpArgs["param"]).name);
}

/**
 * The training-equivalent form of §4: the raw Pre-LN parameters, with the
 * writers centred in the forward pass (E and position rows at the lookup,
 * W_O/b_O and W_2/b_2 where they are used) and every LayerNorm replaced by
 * RMSNorm. The stream is then zero-mean, so the function, and hence every
 * gradient with respect to the raw parameters, equals Pre-LN's. The
 * affine (γ, β) stays after each RMSNorm, which is the folded computation
 * `n·(diag γ W) + (β W + b)` reassociated.
 *
 * @param model a Pre-LN model (`preLn()` with LayerNorm)
 * @returns the on-the-fly logits and loss over the same parameters
 * @throws {TypeError} for another placement
 */
export function centerOnTheFly(model: Model): { logits: Expr<"f32">; loss: Expr<"f32"> } {
  const p = model.placement;
  if (p.name !== "pre-ln" || p.norm.kind !== "layer") {
    throw new TypeError(
      `Cannot centre "${p.name}" (${p.norm.kind}) on the fly: it needs a Pre-LN model with LayerNorm`,
    );
  }
  const rules = ruleSet(
    "center-on-the-fly",
    rule(
      "ln→rms",
      pat.op("norm", { arg: (a) => a.kind === "layer" }),
      (_b, e) => mk("norm", e.src, { ...(e.arg as OpArgs["norm"]), kind: "rms" }),
    ),
    rule(
      "center tok_emb",
      pat.op("gather", { src: [pat.param("tok_emb.weight", "E"), pat.any("ids")] }),
      (b) => gather(centered(b.E!) as Expr<"f32">, b.ids as Expr<"i32">),
    ),
    // every use of a writer parameter (W_O, W_2 in a dot; b_O, b_2 and the
    // position table through movement ops) reads its centred value
    rule(
      "center writers",
      pat.op(["dot", "reshape", "expand", "slice"], { where: (e) => e.src.some(isWriter) }),
      (_b, e) => withSrc(e, e.src.map((s) => isWriter(s) ? centered(s) : s)),
    ),
  );
  const [logits] = rewrite([model.logits], rules, { verify: false }) as [Expr<"f32">];
  return { logits, loss: tokenCrossEntropy(logits, model.targets) };
}

/**
 * §12 item 9 / §7: folds every FakeLN `γ ⊙ (x − μ)/σ̄ + β` into the linear
 * layers that read it: `W ← P diag(γ) W / σ̄`, `b ← β W + b`. The target
 * has no norms at all (identity), biases everywhere and an untied
 * unembedding with a bias.
 *
 * @param cfg the LN-free model's config
 * @param params its parameters (with `<site>.sigma`)
 * @returns the norm-free model
 */
export function foldFakeLn(cfg: ModelConfig, params: ParamMap): Converted {
  const c = resolveConfig(cfg);
  const what = "fold FakeLN";
  const o = copyExcept(params, (n) => /(^|\.)ln_(1|2|f)\.(weight|bias|sigma)$/.test(n));
  const sig = (site: string) => get(params, `${site}.sigma`, what).d[0]!;
  for (let i = 0; i < c.nLayers; i++) {
    for (const [site, role] of [["ln_1", "attn"], ["ln_2", "mlp"]] as const) {
      const s = `blocks.${i}.${site}`;
      foldInto(params, o, s, readersOf(c, i, role), c.dModel, what, sig(s), true);
    }
  }
  foldInto(
    params,
    o,
    "ln_f",
    [c.tieEmbeddings ? "tok_emb^T" : "unembed"],
    c.dModel,
    what,
    sig("ln_f"),
    true,
  );
  zeroBiases(c, params, o);
  return {
    config: { ...cfg, bias: true, tieEmbeddings: false, unembedBias: true },
    placement: preLn({ norm: "identity" }),
    params: o,
  };
}

// repeat(v, n): v's entries each n times ([a, b] → [a, a, b, b] for n = 2)
function repeatEach(v: Float64Array, n: number): Float64Array {
  const d = new Float64Array(v.length * n);
  for (let i = 0; i < v.length; i++) d.fill(v[i]!, i * n, i * n + n);
  return d;
}

// tile(v, n): v repeated n times ([a, b] → [a, b, a, b])
function tile(v: Float64Array, n: number): Float64Array {
  const d = new Float64Array(v.length * n);
  for (let i = 0; i < n; i++) d.set(v, i * v.length);
  return d;
}

/**
 * §2 / §12 item 10: folds NormFormer's head scale into W_O when LN_post is
 * off: before W_O (paper) `W_O ← diag(s) W_O`; after W_O (fairseq)
 * `W_O ← W_O diag(s)`, `b_O ← b_O ⊙ s`, with `s = repeat(γ, d_h)`. The
 * target has no head scale.
 *
 * @param cfg the config
 * @param params NormFormer parameters (with `attn.head_scale`)
 * @param o the NormFormer options the model was built with (`postAttnNorm: false`)
 * @returns the NormFormer model without head scale
 * @throws {TypeError} when LN_post is on (then only a uniform scale folds)
 */
export function foldHeadScale(
  cfg: ModelConfig,
  params: ParamMap,
  o: Parameters<typeof normFormer>[0] = {},
): Converted {
  const c = resolveConfig(cfg);
  const what = "fold the head scale";
  if (o.postAttnNorm !== false) {
    throw new TypeError(
      `Cannot ${what} with LN_post on: build NormFormer with postAttnNorm: false`,
    );
  }
  const mode = o.headScale ?? "pre_WO";
  const out2 = copyExcept(params, (n) => n.endsWith(".attn.head_scale"));
  for (let i = 0; i < c.nLayers; i++) {
    const s = repeatEach(get(params, `blocks.${i}.attn.head_scale`, what).d, c.dHead);
    const w = get(params, `blocks.${i}.attn.o.weight`, what);
    if (mode === "pre_WO") out2[`blocks.${i}.attn.o.weight`] = out(scaleRows(w, s));
    else {
      out2[`blocks.${i}.attn.o.weight`] = out(scaleCols(w, s));
      const b = opt(params, `blocks.${i}.attn.o.bias`);
      if (b) {
        out2[`blocks.${i}.attn.o.bias`] = out({ d: b.d.map((v, j) => v * s[j]!), shape: b.shape });
      }
    }
  }
  return { config: cfg, placement: normFormer({ ...o, headScale: "none" }), params: out2 };
}

/**
 * §6 / §12 item 13: folds HybridNorm's V-norm gain into W_O:
 * `W_O ← diag(repeat(γ_v)) W_O` (γ_v over d_h, shared by the heads), and
 * sets γ_v to 1. The placement is unchanged.
 *
 * @param cfg the config
 * @param params HybridNorm(*) parameters (with `attn.v_norm.weight`)
 * @returns the parameters with γ_v = 1
 */
export function foldVNormGain(cfg: ModelConfig, params: ParamMap): ParamMap {
  const c = resolveConfig(cfg);
  const what = "fold the V-norm gain";
  const o: ParamMap = { ...params };
  for (let i = 0; i < c.nLayers; i++) {
    const g = get(params, `blocks.${i}.attn.v_norm.weight`, what);
    const w = get(params, `blocks.${i}.attn.o.weight`, what);
    o[`blocks.${i}.attn.o.weight`] = out(scaleRows(w, tile(g.d, c.nHeads)));
    o[`blocks.${i}.attn.v_norm.weight`] = out(filled(g.d.length, 1));
  }
  return o;
}

/**
 * §5 / §12 item 8: LayerNorm Scaling equals Pre-LN with each sublayer
 * norm's γ (and β for LayerNorm, §15.2) divided by √l; the final norm is
 * unchanged. Function-equal, not training-equal.
 *
 * @param cfg the config
 * @param params LNS parameters
 * @param norm the norm kind the LNS model used (default "rms")
 * @returns the Pre-LN (same kind) model
 */
export function foldLnScaling(
  cfg: ModelConfig,
  params: ParamMap,
  norm: "layer" | "rms" = "rms",
): Converted {
  const c = resolveConfig(cfg);
  const o: ParamMap = { ...params };
  for (let i = 0; i < c.nLayers; i++) {
    for (const site of ["ln_1", "ln_2"]) {
      for (const part of ["weight", "bias"]) {
        const n = `blocks.${i}.${site}.${part}`;
        const m = opt(params, n);
        if (m) o[n] = out(scale(m, 1 / Math.sqrt(i + 1)));
      }
    }
  }
  return { config: cfg, placement: preLn({ norm, eps: c.eps }), params: o };
}

/**
 * §12 item 7: DeepNorm `LN(α·x + G)` equals Post-LN `LN(x + G/α)` with
 * ε → ε/α²; the branch scaling 1/α goes into W_O, b_O, W_2, b_2.
 *
 * @param cfg the config
 * @param params DeepNorm parameters
 * @param alpha the α the DeepNorm model used
 * @returns the Post-LN model with ε/α²
 */
export function foldDeepNormAlpha(cfg: ModelConfig, params: ParamMap, alpha: number): Converted {
  const c = resolveConfig(cfg);
  if (!(alpha > 0)) {
    throw new RangeError(`Cannot fold DeepNorm's alpha: it must be > 0, got ${alpha}`);
  }
  const o: ParamMap = { ...params };
  for (let i = 0; i < c.nLayers; i++) {
    for (const w of [`blocks.${i}.attn.o`, `blocks.${i}.mlp.fc2`]) {
      for (const part of ["weight", "bias"]) {
        const m = opt(params, `${w}.${part}`);
        if (m) o[`${w}.${part}`] = out(scale(m, 1 / alpha));
      }
    }
  }
  return { config: cfg, placement: postLn({ eps: c.eps / (alpha * alpha) }), params: o };
}

/**
 * Measures FakeLN's σ̄ for every norm of a Pre-LN model: the average, over
 * the rows of a calibration batch, of the standard deviation of that norm's
 * input (Heimersheim 2024, spec §7). Bind the result with an LN-free model
 * (`lnFree()`) built from the same config, with the Pre-LN γ/β.
 *
 * @param model a Pre-LN model with affine LayerNorms (sites are read from γ)
 * @param params its parameters
 * @param inputs a calibration batch (`ids`)
 * @returns `<site>.sigma` scalars (f32, shape `[]`) for every norm site
 * @throws {TypeError} when a norm has no γ to name its site
 */
export function calibrateFakeLn(
  model: Pick<Model, "logits">,
  params: ParamMap,
  inputs: Readonly<Record<string, NDArray>>,
): ParamMap {
  const sites: { site: string; x: Expr }[] = [];
  const norms = new Set<Expr>();
  for (const e of toposort([model.logits])) {
    if (e.op === "norm") norms.add(e);
    if (e.op !== "mul" || e.src[0]!.op !== "norm") continue;
    let g = e.src[1]!;
    while (g.op === "reshape" || g.op === "expand") g = g.src[0]!;
    const name = g.op === "param" ? (g.arg as OpArgs["param"]).name : "";
    if (!name.endsWith(".weight")) continue;
    sites.push({ site: name.slice(0, -".weight".length), x: e.src[0]!.src[0]! });
    norms.delete(e.src[0]!);
  }
  if (norms.size) {
    throw new TypeError(
      `Cannot calibrate FakeLN: ${norms.size} norm(s) have no γ parameter to name their site`,
    );
  }
  const vals = interpret(sites.map((s) => s.x), { ...params, ...inputs });
  const o: ParamMap = {};
  sites.forEach((s, i) => {
    const v = vals[i]!.data, d = s.x.shape[s.x.shape.length - 1]!;
    let acc = 0;
    for (let r = 0; r < v.length; r += d) {
      let m = 0, q = 0;
      for (let j = 0; j < d; j++) m += v[r + j]!;
      m /= d;
      for (let j = 0; j < d; j++) q += (v[r + j]! - m) ** 2;
      acc += Math.sqrt(q / d);
    }
    o[`${s.site}.sigma`] = array([acc / (v.length / d)], [], "f32");
  });
  return o;
}
