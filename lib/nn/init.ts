/**
 * Parameter initialisation: per-parameter rules derived from the §16
 * names, and a seeded, deterministic sampler.
 *
 * - Embeddings and linear weights: N(0, σ), σ = `config.init.std` (0.02).
 * - "megatron": truncated normal at ±3σ (realised std ≈ 0.987σ, §15.4),
 *   and σ/√(2N) on the output projections `attn.o`, `mlp.fc2`.
 * - Placement factors on top (DeepNet β, Magneto γ on W_V, W_O, W_1, W_2).
 * - Biases 0; norm gains, head scale and λ 1; FakeLN σ̄ 1 (calibrate it).
 *
 * Each parameter draws from its own stream, seeded by (seed, name), so a
 * parameter's values do not change when other parameters are added.
 *
 * @module
 */

import { array, type NDArray } from "../ir/array.ts";
import { numel } from "../ir/shape.ts";
import type { ResolvedConfig } from "./config.ts";
import type { InitScale } from "./placement.ts";
import { qkGainInit } from "./placements.ts";
import { mulberry32 } from "../data/rng.ts";

/** How one parameter is filled. */
export type InitRule =
  | { readonly kind: "normal"; readonly std: number }
  | { readonly kind: "truncnormal"; readonly std: number; readonly bound: number }
  | { readonly kind: "const"; readonly value: number };

const LINEAR_WEIGHT =
  /^(tok_emb|pos_emb|unembed|head)\.weight$|^blocks\.\d+\.(attn\.(q|k|v|o)|mlp\.(fc1|gate|fc2))\.weight$/;
const LINEAR_BIAS =
  /^(unembed|head)\.bias$|^blocks\.\d+\.(attn\.(q|k|v|o)|mlp\.(fc1|gate|fc2))\.bias$/;
const OUTPUT_PROJ = /^blocks\.\d+\.(attn\.o|mlp\.fc2)\.weight$/;

/**
 * The init rule of a parameter, from its §16 name.
 *
 * @param name the parameter name
 * @param shape its shape (for error messages)
 * @param cfg the model config (σ, scheme, N)
 * @param scales placement factors
 * @returns the rule
 * @throws {RangeError} for a name with no known role
 */
export function initRuleFor(
  name: string,
  shape: readonly number[],
  cfg: ResolvedConfig,
  scales: readonly InitScale[] = [],
): InitRule {
  if (LINEAR_WEIGHT.test(name)) {
    let std = cfg.init.std;
    if (cfg.init.scheme === "megatron" && OUTPUT_PROJ.test(name)) {
      std /= Math.sqrt(2 * cfg.nLayers);
    }
    for (const s of scales) if (s.pattern.test(name)) std *= s.factor;
    return cfg.init.scheme === "megatron"
      ? { kind: "truncnormal", std, bound: 3 }
      : { kind: "normal", std };
  }
  if (LINEAR_BIAS.test(name)) return { kind: "const", value: 0 };
  if (name.endsWith(".attn.qk_gain")) return { kind: "const", value: qkGainInit(cfg.seqLen) };
  if (/\.(head_scale|resid_scale|weight|sigma)$/.test(name)) return { kind: "const", value: 1 };
  if (name.endsWith(".bias")) return { kind: "const", value: 0 };
  throw new RangeError(
    `Cannot initialise parameter "${name}" [${shape.join(",")}]: its name has no known role ` +
      `(linear weights are named as in spec §16; other ".weight" are gains, ".bias" are 0)`,
  );
}

function hash32(s: string, seed: number): number {
  // FNV-1a over the name, mixed with the seed
  let h = (0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A seeded uniform generator (mulberry32).
 *
 * @param seed a 32-bit seed
 * @returns a function giving uniform numbers in [0, 1)
 */
export function uniformStream(seed: number): () => number {
  return mulberry32(seed);
}

/**
 * Standard normal samples (Box–Muller) from a uniform stream.
 *
 * @param u a uniform stream
 * @returns a function giving N(0, 1) samples
 */
export function normalStream(u: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const a = Math.max(u(), 1e-300), b = u();
    const r = Math.sqrt(-2 * Math.log(a));
    spare = r * Math.sin(2 * Math.PI * b);
    return r * Math.cos(2 * Math.PI * b);
  };
}

/**
 * Fills one parameter by its rule, deterministically from (seed, name).
 *
 * @param name the parameter name (part of its stream's seed)
 * @param shape its shape
 * @param rule the init rule
 * @param seed the model seed
 * @returns an f32 array
 */
export function sampleParam(
  name: string,
  shape: readonly number[],
  rule: InitRule,
  seed: number,
): NDArray<"f32"> {
  const n = numel(shape);
  const data = new Float32Array(n);
  if (rule.kind === "const") data.fill(rule.value);
  else {
    const z = normalStream(uniformStream(hash32(name, seed)));
    for (let i = 0; i < n; i++) {
      let v = z();
      if (rule.kind === "truncnormal") { while (Math.abs(v) > rule.bound) v = z(); }
      data[i] = v * rule.std;
    }
  }
  return array(data, shape, "f32");
}

/**
 * Initialises every parameter of a model.
 *
 * @param model anything with parameter specs (a built model)
 * @param seed the seed (same seed, same values)
 * @returns parameters by name, f32
 */
export function initParams(
  model: { readonly params: readonly { name: string; shape: readonly number[]; init: InitRule }[] },
  seed: number,
): Record<string, NDArray> {
  const out: Record<string, NDArray> = {};
  for (const p of model.params) out[p.name] = sampleParam(p.name, p.shape, p.init, seed);
  return out;
}
