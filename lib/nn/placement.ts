/**
 * Placements: where norms go, as rewrite rule sets over a neutral model.
 *
 * A neutral model has a `residual(x, body)` node per sublayer (role
 * "attn" or "mlp", 0-based layer) and slot nodes (see `layers.ts`). A
 * {@link Placement} is a rule set over those nodes, built per config with
 * {@link definePlacement}: `k.sublayer(fn)` rewrites residual sublayers
 * (`fn(x, f, site)` gets the stream `x` and the body as a function `f`),
 * `k.slot(names, fn)` rewrites slots, and `k.norm(x, site)` adds a norm
 * with named affine parameters of the placement's kind.
 *
 * Rules consume the nodes they match, and {@link finalizeRules} turns what
 * is left (unfilled slots, untouched sublayers) into plain `x` and
 * `x + f(x)`. A placed graph therefore has no residual or slot node, so
 * applying a placement again changes nothing (the fixed point is reached
 * at once), and {@link applyPlacement} always starts from the neutral
 * model.
 *
 * @example Pre-LN in three rules
 * ```ts
 * import { add } from "../ir/builders.ts";
 * import { definePlacement } from "./placement.ts";
 * const myPreLn = definePlacement("my-pre-ln", { norm: { kind: "layer" } }, (k) => [
 *   k.sublayer((x, f, s) => add(x, f(k.norm(x, s.inNorm)))),
 *   k.slot("final", (x) => k.norm(x, "ln_f")),
 * ]);
 * ```
 *
 * @module
 */

import { add, fill, hole } from "../ir/builders.ts";
import type { Expr, OpArgs } from "../ir/expr.ts";
import { rewrite, type RewriteOptions } from "../rewrite/driver.ts";
import { pat } from "../rewrite/pattern.ts";
import { type RewriteRule, rule, type RuleSet, ruleSet } from "../rewrite/rules.ts";
import type { ResolvedConfig } from "./config.ts";
import { SLOT_ROLE_PREFIX, type SlotName } from "./layers.ts";
import { normLayer, type NormSpec } from "./norms.ts";

/** A factor on the init of the parameters whose names match (e.g. DeepNet β). */
export interface InitScale {
  /** Which parameters. */
  readonly pattern: RegExp;
  /** The factor. */
  readonly factor: number;
  /** Where it comes from, for reports. */
  readonly why: string;
}

/** A placement: a rule set per config, plus what it needs from the builder. */
export interface Placement {
  /** Command-line style name, e.g. "pre-ln". */
  readonly name: string;
  /** The norm its stream norms use. */
  readonly norm: NormSpec;
  /** The stream is d_model − 1 wide (Pre-CRMSNorm). */
  readonly compressed: boolean;
  /** The rule set for a config. */
  rules(cfg: ResolvedConfig): RuleSet;
  /** Init factors the method prescribes (DeepNet β, Magneto γ). */
  initScales(cfg: ResolvedConfig): readonly InitScale[];
}

/** Where a sublayer rule is applied. */
export interface SublayerSite {
  /** "attn" or "mlp". */
  readonly role: "attn" | "mlp";
  /** 0-based block index. */
  readonly layer: number;
  /** 1-based block index l (spec notation). */
  readonly l: number;
  /** The model config. */
  readonly cfg: ResolvedConfig;
  /** `blocks.{layer}.{suffix}`. */
  name(suffix: string): string;
  /** The sublayer's norm name: `blocks.{i}.ln_1` (attn) or `blocks.{i}.ln_2` (mlp). */
  readonly inNorm: string;
  /** The output norm name: `blocks.{i}.ln_attn_out` or `blocks.{i}.ln_mlp_out`. */
  readonly outNorm: string;
}

/** Where a slot rule is applied. */
export interface SlotSite {
  /** Which slot. */
  readonly slot: SlotName;
  /** 0-based block index (−1 for "emb" and "final"). */
  readonly layer: number;
  /** The model config. */
  readonly cfg: ResolvedConfig;
  /** `blocks.{layer}.{suffix}`, or `suffix` outside blocks. */
  name(suffix: string): string;
}

/** The toolkit a placement's rules are written with. */
export interface PlaceKit {
  /** The model config. */
  readonly cfg: ResolvedConfig;
  /** The placement's norm. */
  readonly spec: NormSpec;
  /**
   * A norm of the placement's kind (or `override`) with affine params under `site`.
   * @param x the input
   * @param site the parameter prefix, e.g. `blocks.0.ln_1`
   * @param override fields replacing the placement's spec
   * @returns the normalised input
   */
  norm(x: Expr, site: string, override?: Partial<NormSpec>): Expr;
  /**
   * A rule on residual sublayers.
   * @param fn the new value from the stream `x` and the body `f`
   * @param where restrict to one role and/or some layers
   * @returns the rule
   */
  sublayer(
    fn: (x: Expr, f: (v: Expr) => Expr, s: SublayerSite) => Expr,
    where?: { role?: "attn" | "mlp"; layers?: (layer: number) => boolean },
  ): RewriteRule;
  /**
   * A rule on slots.
   * @param names one slot or several
   * @param fn the new value from the slot's input
   * @param layers restrict to some layers
   * @returns the rule
   */
  slot(
    names: SlotName | readonly SlotName[],
    fn: (x: Expr, s: SlotSite) => Expr,
    layers?: (layer: number) => boolean,
  ): RewriteRule;
}

/** What {@link definePlacement} needs besides the rules. */
export interface PlacementDef {
  /** The default norm (kind, ε, affine). */
  readonly norm: NormSpec;
  /** The stream is d_model − 1 wide (CRMS). */
  readonly compressed?: boolean;
  /** Init factors the method prescribes. */
  readonly initScales?: (cfg: ResolvedConfig) => readonly InitScale[];
}

function bodyFn(x: Expr, body: Expr, holeName: string): (v: Expr) => Expr {
  const h = hole(holeName, x.shape, x.dtype);
  return (v: Expr) => fill(body, h, v);
}

/**
 * Defines a placement from rules written with a {@link PlaceKit}.
 *
 * @param name the placement's name
 * @param def its default norm and builder needs
 * @param build the rules, given the toolkit (called once per config)
 * @returns the placement
 */
export function definePlacement(
  name: string,
  def: PlacementDef,
  build: (k: PlaceKit) => readonly (RewriteRule | RuleSet)[],
): Placement {
  const spec = Object.freeze({ ...def.norm });
  const cache = new WeakMap<ResolvedConfig, RuleSet>();
  return Object.freeze({
    name,
    norm: spec,
    compressed: def.compressed ?? false,
    initScales: (cfg: ResolvedConfig) => def.initScales?.(cfg) ?? [],
    rules(cfg: ResolvedConfig): RuleSet {
      const hit = cache.get(cfg);
      if (hit) return hit;
      const kit: PlaceKit = {
        cfg,
        spec,
        norm: (x, site, override) => normLayer(x, site, { ...spec, ...override }, cfg.eps),
        sublayer(fn, where = {}) {
          const roles = where.role ? [where.role] : ["attn", "mlp"];
          const p = pat.residual((r) => roles.includes(r), where.layers);
          return rule(`${name}/${where.role ?? "sublayer"}`, p, (b, e) => {
            const a = e.arg as OpArgs["residual"];
            const role = a.role as "attn" | "mlp";
            const site: SublayerSite = {
              role,
              layer: a.layer,
              l: a.layer + 1,
              cfg,
              name: (s) => `blocks.${a.layer}.${s}`,
              inNorm: `blocks.${a.layer}.${role === "attn" ? "ln_1" : "ln_2"}`,
              outNorm: `blocks.${a.layer}.${role === "attn" ? "ln_attn_out" : "ln_mlp_out"}`,
            };
            return fn(b.x!, bodyFn(b.x!, b.body!, a.hole), site);
          });
        },
        slot(names, fn, layers) {
          const list: readonly string[] = typeof names === "string" ? [names] : names;
          const roles = list.map((n) => `${SLOT_ROLE_PREFIX}${n}`);
          const p = pat.residual((r) => roles.includes(r), layers);
          return rule(`${name}/slot:${list.join(",")}`, p, (b, e) => {
            const a = e.arg as OpArgs["residual"];
            const site: SlotSite = {
              slot: a.role.slice(SLOT_ROLE_PREFIX.length) as SlotName,
              layer: a.layer,
              cfg,
              name: (s) => (a.layer >= 0 ? `blocks.${a.layer}.${s}` : s),
            };
            return fn(b.x!, site);
          });
        },
      };
      const rs = ruleSet(name, ...build(kit));
      cache.set(cfg, rs);
      return rs;
    },
  });
}

/**
 * Combines placements: their rules in order (earlier wins where two
 * match the same node), the first one's norm, and all init factors.
 *
 * @param name the combined name
 * @param parts placements, highest priority first
 * @returns the combined placement
 */
export function composePlacements(name: string, ...parts: readonly Placement[]): Placement {
  if (parts.length === 0) {
    throw new TypeError(`Cannot compose placement "${name}": give at least one placement`);
  }
  return Object.freeze({
    name,
    norm: parts[0]!.norm,
    compressed: parts.some((p) => p.compressed),
    rules: (cfg: ResolvedConfig) => ruleSet(name, ...parts.map((p) => p.rules(cfg))),
    initScales: (cfg: ResolvedConfig) => parts.flatMap((p) => p.initScales(cfg)),
  });
}

/** Unfilled slots become their input; untouched sublayers become `x + f(x)`. */
export const finalizeRules: RuleSet = ruleSet(
  "finalize",
  rule(
    "finalize/slot",
    pat.residual((r) => r.startsWith(SLOT_ROLE_PREFIX)),
    (b) => b.x,
  ),
  rule("finalize/sublayer", pat.residual(() => true), (b, e) => {
    const a = e.arg as OpArgs["residual"];
    return add(b.x!, bodyFn(b.x!, b.body!, a.hole)(b.x!));
  }),
);

/**
 * Applies a placement to a neutral graph, then {@link finalizeRules}.
 *
 * @param roots neutral expressions (with residual and slot nodes)
 * @param placement the placement
 * @param cfg the config the graph was built with
 * @param opts rewrite options (e.g. `verify: true` in tests)
 * @returns the placed expressions (no residual or slot nodes left)
 */
export function applyPlacement(
  roots: readonly Expr[],
  placement: Placement,
  cfg: ResolvedConfig,
  opts: RewriteOptions = {},
): Expr[] {
  const set = ruleSet(placement.name, placement.rules(cfg), finalizeRules);
  return rewrite(roots, set, opts);
}
