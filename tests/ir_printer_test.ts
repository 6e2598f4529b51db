/**
 * The let-form printer: golden output, determinism, one line per node, and
 * a round trip (parsing the text rebuilds the very same interned graph).
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../mod.ts";
import { type DType, type Expr, mk, mkLeaf, printExpr, toposort } from "../mod.ts";
import { fcParams } from "./_util.ts";
import { arbRecipe, buildRecipe } from "./fixtures/graphs.ts";

Deno.test("printExpr() golden output for a small graph", () => {
  const x = nx.input("x", [2, 3]);
  const y = nx.sum(nx.mul(nx.add(x, 1), nx.scalar(-0)), -1);
  assert.equal(
    printExpr(y),
    [
      '%0: f32[2,3] = input "x"',
      "%1: f32[2,3] = const 1",
      "%2: f32[2,3] = add %0 %1",
      "%3: f32[] = const -0",
      "%4: f32[1,1] = reshape {shape=[1,1]} %3",
      "%5: f32[2,3] = expand {shape=[2,3]} %4",
      "%6: f32[2,3] = mul %2 %5",
      "%7: f32[2,1] = sum {axes=[1]} %6",
      "%8: f32[2] = reshape {shape=[2]} %7",
      "return %8",
    ].join("\n"),
  );
  assert.equal(
    printExpr([nx.layerNorm(x), x]),
    [
      '%0: f32[2,3] = input "x"',
      '%1: f32[2,3] = norm {eps=0.00001, kind="layer"} %0',
      "return %1, %0",
    ]
      .join("\n"),
  );
});

Deno.test("printExpr() is deterministic and lists each node exactly once", () => {
  fc.assert(
    fc.property(arbRecipe, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), (r, picks) => {
      const roots = picks.map((p) => buildRecipe(r)[p % (r.leaves.length + r.steps.length)]!);
      const text = printExpr(roots);
      // Rebuilding the graph (same interned nodes) prints the same text.
      const again = picks.map((p) => buildRecipe(r)[p % (r.leaves.length + r.steps.length)]!);
      assert.equal(printExpr(again), text);
      const lines = text.split("\n");
      const nodes = toposort(roots);
      assert.equal(lines.length, nodes.length + 1);
      lines.slice(0, -1).forEach((l, i) => assert.ok(l.startsWith(`%${i}: `), l));
      assert.match(lines.at(-1)!, /^return %\d+(, %\d+)*$/);
    }),
    fcParams(100),
  );
});

// ---------------------------------------------------------------------------
// A parser for the printed form, used only to prove the text is complete.

// Values are written by stableKey: JSON plus NaN, Infinity, -Infinity and -0.
function parseValue(s: string, at: { i: number }): unknown {
  const ch = s[at.i]!;
  if (ch === "[") {
    at.i++;
    const out: unknown[] = [];
    while (s[at.i] !== "]") {
      out.push(parseValue(s, at));
      if (s[at.i] === ",") at.i++;
    }
    at.i++;
    return out;
  }
  if (ch === "{") {
    at.i++;
    const out: Record<string, unknown> = {};
    while (s[at.i] !== "}") {
      const k = parseValue(s, at) as string;
      assert.equal(s[at.i++], ":");
      out[k] = parseValue(s, at);
      if (s[at.i] === ",") at.i++;
    }
    at.i++;
    return out;
  }
  if (ch === '"') {
    let j = at.i + 1;
    while (s[j] !== '"') j += s[j] === "\\" ? 2 : 1;
    const str = JSON.parse(s.slice(at.i, j + 1));
    at.i = j + 1;
    return str;
  }
  const m = /^(-?Infinity|NaN|true|false|null|-?[0-9.eE+-]+)/.exec(s.slice(at.i))!;
  at.i += m[0].length;
  if (m[0] === "true" || m[0] === "false") return m[0] === "true";
  if (m[0] === "null") return null;
  return Number(m[0]);
}

function parseProgram(text: string): Expr[] {
  const nodes: Expr[] = [];
  const lines = text.split("\n");
  for (const line of lines.slice(0, -1)) {
    const m = /^%(\d+): (\w+)\[([\d,]*)\] = (\w+)(.*)$/.exec(line);
    assert.ok(m, `unparsable line ${line}`);
    const [, , dtype, shapeText, op, rest0] = m;
    const shape = shapeText ? shapeText.split(",").map(Number) : [];
    let rest = rest0!;
    let arg: unknown = null;
    if (op === "input" || op === "param" || op === "hole" || op === "const") {
      const at = { i: 1 };
      const v = parseValue(rest, at);
      rest = rest.slice(at.i);
      arg = op === "const" ? { value: v } : { name: v };
    } else if (rest.startsWith(" {")) {
      const at = { i: 2 };
      const o: Record<string, unknown> = {};
      while (rest[at.i] !== "}") {
        const eq = rest.indexOf("=", at.i);
        const k = rest.slice(at.i, eq);
        at.i = eq + 1;
        o[k] = parseValue(rest, at);
        if (rest.startsWith(", ", at.i)) at.i += 2;
      }
      rest = rest.slice(at.i + 1);
      arg = o;
    }
    const src = [...rest.matchAll(/ %(\d+)/g)].map((s) => nodes[Number(s[1])]!);
    const e = nx.OP_KIND[op as nx.Op] === "leaf"
      ? mkLeaf(op as "input", dtype as DType, shape, arg as { name: string })
      : mk(op as "add", src, arg as null);
    assert.deepEqual(e.shape, shape, line);
    assert.equal(e.dtype, dtype, line);
    nodes.push(e);
  }
  const ret = /^return (.*)$/.exec(lines.at(-1)!)!;
  return ret[1]!.split(", ").map((r) => nodes[Number(r.slice(1))]!);
}

Deno.test("printExpr() round-trips: parsing the text rebuilds the same interned nodes", () => {
  fc.assert(
    fc.property(arbRecipe, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), (r, picks) => {
      const ns = buildRecipe(r);
      const roots = picks.map((p) => ns[p % ns.length]!);
      const back = parseProgram(printExpr(roots));
      back.forEach((e, i) => assert.equal(e, roots[i]));
    }),
    fcParams(100),
  );
  // Every kind of argument: strings with quotes, arrays, optional fields, booleans.
  const x = nx.input('we"ird\\name', [2, 4, 6], "f32");
  const roots = [
    nx.slice(nx.pad(x, [0, 1, 0], [1, 0, 2]), 2, 1, 7),
    nx.crmsNorm(x),
    nx.fakeNorm(x, 3),
    nx.attention(x, x, x, { causal: true, scale: 0.1 }),
    nx.residual(x, (h) => nx.tanh(h), { role: "at|tn", layer: 3 }),
    nx.concat([x, x], 1),
    nx.gather(nx.param("emb", [5, 6]), nx.input("ids", [2, 3], "u32")),
    nx.cast(nx.iota([2, 4], 1, "f32"), "i32"),
    nx.permute(x, [2, 0, 1]),
    nx.full([2], NaN),
    nx.full([2], -Infinity),
  ];
  const back = parseProgram(printExpr(roots));
  back.forEach((e, i) => assert.equal(e, roots[i], `root ${i}`));
});
