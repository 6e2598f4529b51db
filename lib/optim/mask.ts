/**
 * Parameter masks: which parameters a train step updates (the rest stay
 * frozen) and which get weight decay.
 *
 * @module
 */

import type { Expr } from "../ir/expr.ts";

/** A predicate over parameter names. */
export type ParamPredicate = (name: string) => boolean;

/** A parameter selection: names, name patterns, or a predicate. */
export type ParamSelection = readonly (string | RegExp)[] | ParamPredicate;

/**
 * Turns a selection into a predicate.
 *
 * @param sel exact names and/or regular expressions, or a predicate
 * @returns a predicate over names
 */
export function selectParams(sel: ParamSelection): ParamPredicate {
  if (typeof sel === "function") return sel;
  const names = new Set(sel.filter((s): s is string => typeof s === "string"));
  const res = sel.filter((s): s is RegExp => s instanceof RegExp);
  return (name) => names.has(name) || res.some((r) => r.test(name));
}

/**
 * Whether a parameter is a constant that is never trained: FakeLN's frozen
 * σ̄, named `<site>.sigma` (spec §16).
 *
 * @param name a parameter name
 * @returns true for names ending in `.sigma`
 */
export function isConstantParam(name: string): boolean {
  return name.endsWith(".sigma");
}

/**
 * The default trainable set: every parameter but constants
 * ({@link isConstantParam}).
 *
 * @param name a parameter name
 * @returns true when the parameter is trained by default
 */
export function defaultTrainable(name: string): boolean {
  return !isConstantParam(name);
}

/**
 * Whether a parameter belongs to a normalisation layer, judged by its name
 * (spec §16 naming): some dotted segment other than the last starts with
 * `ln` (`ln_1`, `ln_f`, `ln_inner`, `ln_attn_out`) or contains `norm`
 * (`q_norm`, `final_norm`), case-insensitive; FakeLN's constant `.sigma`
 * is excluded. Examples: `blocks.0.ln_1.weight`, `ln_f.bias`,
 * `blocks.3.attn.q_norm.weight`.
 *
 * @param name a parameter name
 * @returns true for trainable normalisation parameters (γ, β)
 */
export function isNormParam(name: string): boolean {
  if (isConstantParam(name)) return false;
  const seg = name.split(".").slice(0, -1);
  return seg.some((s) => /^ln/i.test(s) || /norm/i.test(s));
}

/**
 * A predicate keeping only normalisation parameters trainable (LayerNorm-only
 * fine-tuning), optionally plus other parameters such as a task head.
 *
 * @param extra more parameters to train, e.g. `[/^unembed\./]`
 * @returns a predicate over names
 *
 * @example
 * ```ts
 * import { onlyNormParams } from "./mask.ts";
 * const train = onlyNormParams([/^unembed\./]);
 * train("blocks.0.ln_2.bias"); // true
 * train("blocks.0.mlp.fc1.weight"); // false
 * ```
 */
export function onlyNormParams(extra?: ParamSelection): ParamPredicate {
  if (extra === undefined) return isNormParam;
  const more = selectParams(extra);
  return (name) => isNormParam(name) || more(name);
}

/**
 * The complement of a selection.
 *
 * @param sel a selection
 * @returns a predicate true where `sel` is false
 */
export function exceptParams(sel: ParamSelection): ParamPredicate {
  const p = selectParams(sel);
  return (name) => !p(name);
}

/**
 * The default weight-decay rule (GPT-2 practice): decay matrices and
 * embeddings (rank ≥ 2), not biases, gains or other vectors.
 *
 * @param p a parameter leaf
 * @returns true when `p` should be decayed
 */
export function decayMatrices(p: Expr): boolean {
  return p.shape.length >= 2;
}
