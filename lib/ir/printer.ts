/**
 * A readable let-form printer: one line per node, shapes shown.
 *
 * ```
 * %0: f32[2,3] = input "x"
 * %1: f32[2,3] = const 1
 * %2: f32[2,3] = add %0 %1
 * ```
 *
 * Numbering is local to the printed graph (depth-first topological order
 * from the roots, not creation order or node ids), so output is
 * deterministic and fit for golden tests.
 *
 * @module
 */

import { type Expr, stableKey, toposort } from "./expr.ts";
import { fmtShape } from "./shape.ts";

function fmtArg(e: Expr): string {
  const a = e.arg as Record<string, unknown> | null;
  if (a === null) return "";
  if (e.op === "input" || e.op === "param" || e.op === "hole") {
    return ` ${JSON.stringify(a["name"])}`;
  }
  if (e.op === "const") return ` ${stableKey(a["value"])}`;
  const parts = Object.keys(a).filter((k) => a[k] !== undefined).sort().map((k) =>
    `${k}=${stableKey(a[k])}`
  );
  return parts.length ? ` {${parts.join(", ")}}` : "";
}

/**
 * Prints expressions in let-form.
 *
 * @param roots expressions to print
 * @returns one line per node, then a line naming the outputs
 */
export function printExpr(roots: Expr | readonly Expr[]): string {
  const rs = Array.isArray(roots) ? roots as readonly Expr[] : [roots as Expr];
  const order = toposort(rs);
  const num = new Map<Expr, number>();
  const lines: string[] = [];
  for (const e of order) {
    const n = num.size;
    num.set(e, n);
    const srcs = e.src.map((s) => ` %${num.get(s)}`).join("");
    lines.push(`%${n}: ${e.dtype}${fmtShape(e.shape)} = ${e.op}${fmtArg(e)}${srcs}`);
  }
  lines.push(`return ${rs.map((r) => `%${num.get(r)}`).join(", ")}`);
  return lines.join("\n");
}
