/**
 * Decompositions of composite ops (`norm`, `attention`, `residual`) into
 * primitives. The table is typed over every composite op, so a new
 * composite without a decomposition does not compile.
 *
 * The interpreter, autodiff and the unfused compiler path all use these,
 * which makes them the definition of each composite's meaning.
 *
 * @module
 */

import {
  add,
  fill,
  greaterEqual,
  hole,
  iota,
  matmul,
  mul,
  rsqrt,
  softmax,
  square,
  sub,
  sum,
  transpose,
  where,
} from "./builders.ts";
import type { FloatDType } from "./dtype.ts";
import { type CompositeOp, type Expr, type ExprOf, OP_KIND, toposort, withSrc } from "./expr.ts";

type F = Expr<FloatDType>;

function meanLast(x: F): F {
  const d = x.shape[x.shape.length - 1]!;
  return mul(sum(x, -1, { keepdims: true }), 1 / d) as F;
}

/**
 * One rule per composite: given the node's (already decomposed) sources
 * and the node itself, return an equivalent expression of primitives.
 */
export const DECOMPOSE: {
  readonly [K in CompositeOp]: (src: readonly Expr[], e: ExprOf<K>) => Expr;
} = {
  norm: (src, e) => {
    const x = src[0] as F;
    const { kind, eps } = e.arg;
    switch (kind) {
      case "layer": {
        const xc = sub(x, meanLast(x)) as F;
        return mul(xc, rsqrt(add(meanLast(square(xc)), eps) as F));
      }
      case "rms":
        return mul(x, rsqrt(add(meanLast(square(x)), eps) as F));
      case "crms": {
        const dim = e.arg.dim!;
        const s2 = sum(square(x), -1, { keepdims: true });
        const s1 = sum(x, -1, { keepdims: true });
        return mul(x, rsqrt(add(mul(add(s2, square(s1)), 1 / dim), eps) as F));
      }
      case "l2":
        return mul(x, rsqrt(add(sum(square(x), -1, { keepdims: true }), eps) as F));
      case "fake":
        return mul(sub(x, meanLast(x)), 1 / e.arg.sigma!);
      default:
        throw new TypeError(`Cannot decompose norm of unknown kind "${kind as string}"`);
    }
  },
  attention: (src, e) => {
    const [q, k, v] = src as [F, F, F];
    let s = mul(matmul(q, transpose(k)), e.arg.scale) as F;
    if (e.arg.causal) {
      const r = s.shape.length;
      const tq = s.shape[r - 2]!, tk = s.shape[r - 1]!;
      const rows = iota([tq, tk], 0), cols = iota([tq, tk], 1);
      // query i sees key j when j <= i + (tk - tq) (aligned at the end)
      const keep = greaterEqual(add(rows, tk - tq), cols);
      s = where(keep, s, -Infinity) as F;
    }
    return matmul(softmax(s, -1), v);
  },
  residual: (src, e) => {
    const [x, body] = src as [F, F];
    const h = hole(e.arg.hole, x.shape, x.dtype);
    return add(x, fill(body, h, x));
  },
};

/**
 * Rewrites every composite node reachable from the roots into primitives.
 *
 * @param roots expressions
 * @returns equivalent expressions with no composite nodes
 */
export function decompose(roots: readonly Expr[]): Expr[] {
  const memo = new Map<Expr, Expr>();
  // Residual bodies may contain further composites; decomposing bottom-up
  // and re-running on each result handles nesting.
  const run = (e: Expr): Expr => {
    const hit = memo.get(e);
    if (hit) return hit;
    for (const n of toposort([e])) {
      if (memo.has(n)) continue;
      const src = n.src.map((s) => memo.get(s)!);
      if (OP_KIND[n.op] === "composite") {
        const rule = DECOMPOSE[n.op as CompositeOp] as (s: readonly Expr[], e: Expr) => Expr;
        const d = rule(src, n);
        memo.set(n, d === n ? d : run(d));
      } else {
        memo.set(n, n.src.length ? withSrc(n, src) : n);
      }
    }
    return memo.get(e)!;
  };
  return roots.map(run);
}
