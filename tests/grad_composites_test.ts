/**
 * Gradient checks of composites (norms of every kind, attention causal and
 * not, residual) and composite builders (softmax, logSoftmax, GELU, SiLU,
 * cross-entropy) against float64 central differences, plus the closed-form
 * norm backward against differentiating its decomposition.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../mod.ts";
import { checkVjp, grad, numericGradient, vjp } from "../lib/autodiff/mod.ts";
import { tokenCrossEntropy } from "../lib/nn/mod.ts";
import { assertClose, fcParams, rng } from "./_util.ts";

type E = nx.Expr<"f32">;

function normal(n: number, seed: number, scale = 1, shift = 0): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12), v = r();
    out[i] = Math.fround(shift + scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  }
  return out;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const seedArb = fc.integer({ min: 1, max: 1_000_000 });

function bind(vals: Record<string, [readonly number[], Float64Array]>): Record<string, nx.NDArray> {
  const b: Record<string, nx.NDArray> = {};
  for (const [k, [s, d]] of Object.entries(vals)) b[k] = nx.array(d, s);
  return b;
}

function expectVjp(
  out: nx.Expr,
  leaves: readonly nx.Expr[],
  b: Record<string, nx.NDArray>,
  seed: number,
  fusedNorm = true,
): void {
  const r = checkVjp(out, leaves, b, { seed, fusedNorm });
  const tol = 1e-7 + 1e-6 * r.scale;
  if (!(Math.abs(r.analytic - r.numeric) <= tol)) {
    throw new Error(
      `vjp ${r.analytic} vs central difference ${r.numeric} (diff ${
        Math.abs(r.analytic - r.numeric)
      } > ${tol})`,
    );
  }
}

const KINDS = ["layer", "rms", "crms", "l2", "fake"] as const;

function normOf(kind: (typeof KINDS)[number], x: E, eps: number): E {
  switch (kind) {
    case "layer":
      return nx.layerNorm(x, { eps });
    case "rms":
      return nx.rmsNorm(x, { eps });
    case "crms":
      return nx.crmsNorm(x, { eps });
    case "l2":
      return nx.l2Norm(x, { eps });
    case "fake":
      return nx.fakeNorm(x, 1.7);
  }
}

Deno.test("norm (every kind, fused and decomposed backward): vjp matches central differences", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }),
      fc.integer({ min: 2, max: 6 }),
      fc.constantFrom(...KINDS),
      fc.constantFrom(1e-5, 0.1),
      fc.boolean(),
      seedArb,
      (lead, d, kind, eps, fused, seed) => {
        const s = [...lead, d];
        const x = nx.param("x", s);
        const g = nx.param("g", [d]);
        // an affine gain after the norm, as in a real block
        const out = nx.mul(normOf(kind, x, eps), g);
        const b = bind({ x: [s, normal(numel(s), seed, 2, 0.5)], g: [[d], normal(d, seed + 1)] });
        expectVjp(out, [x, g], b, seed, fused);
      },
    ),
    fcParams(60),
  );
});

Deno.test("closed-form norm backward equals differentiating the decomposition", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 2, max: 7 }),
      fc.constantFrom(...KINDS),
      seedArb,
      (rows, d, kind, seed) => {
        const x = nx.param("x", [rows, d]);
        const c = nx.input("c", [rows, d]);
        const y = normOf(kind, x, 1e-3);
        const [fused] = vjp(y, [x], c, { fusedNorm: true });
        const [plain] = vjp(y, [x], c, { fusedNorm: false });
        assert.notEqual(fused, plain, "the two backward graphs should differ");
        const b = bind({
          x: [[rows, d], normal(rows * d, seed, 1.5)],
          c: [[rows, d], normal(rows * d, seed + 1)],
        });
        const [a, e] = nx.interpret([fused!, plain!], b);
        assertClose(a!.data, e!.data, { atol: 1e-12, rtol: 1e-9 }, `${kind} norm gradient`);
      },
    ),
    fcParams(40),
  );
});

Deno.test("attention (causal or not, Tq ≠ Tk, batch and heads): vjp matches", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 0, maxLength: 2 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      fc.boolean(),
      seedArb,
      (lead, tq, extra, dk, dv, causal, seed) => {
        const tk = tq + extra;
        const sq = [...lead, tq, dk], sk = [...lead, tk, dk], sv = [...lead, tk, dv];
        const q = nx.param("q", sq), k = nx.param("k", sk), v = nx.param("v", sv);
        const out = nx.attention(q, k, v, { causal });
        const b = bind({
          q: [sq, normal(numel(sq), seed)],
          k: [sk, normal(numel(sk), seed + 1)],
          v: [sv, normal(numel(sv), seed + 2)],
        });
        expectVjp(out, [q, k, v], b, seed);
      },
    ),
    fcParams(40),
  );
});

Deno.test("softmax, logSoftmax, GELU, SiLU, sigmoid: vjp matches", () => {
  const fs: ((x: E) => nx.Expr)[] = [
    (x) => nx.softmax(x, -1),
    (x) => nx.softmax(x, 0),
    (x) => nx.logSoftmax(x, -1),
    nx.gelu,
    nx.silu,
    nx.sigmoid,
  ];
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 0, max: fs.length - 1 }),
      seedArb,
      (s, k, seed) => {
        const x = nx.param("x", s);
        expectVjp(fs[k]!(x), [x], bind({ x: [s, normal(numel(s), seed, 2)] }), seed);
      },
    ),
    fcParams(40),
  );
});

Deno.test("softmax shift shortcut: same gradients, fewer nodes, and off when the max is reused", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 0, max: 2 }),
      seedArb,
      (n, v, k, seed) => {
        const x = nx.param("x", [n, v]);
        const c = nx.input("c", [n, v]);
        const outs = [
          nx.softmax(x, -1),
          nx.logSoftmax(x, -1),
          // the max also feeds the loss: its cotangent is not zero here
          nx.add(nx.softmax(x, -1), nx.max(x, -1, { keepdims: true })),
        ];
        const out = outs[k]!;
        const b = bind({
          x: [[n, v], normal(n * v, seed, 2)],
          c: [[n, v], normal(n * v, seed + 1)],
        });
        expectVjp(out, [x], b, seed);
        const [fast] = vjp(out, [x], c);
        const [slow] = vjp(out, [x], c, { skipSoftmaxShift: false });
        const wheres = (g: nx.Expr) => nx.toposort([g]).filter((e) => e.op === "where").length;
        assert.equal(wheres(fast!) === 0, k < 2, "the shortcut applies exactly to unshared shifts");
        const [a, e] = nx.interpret([fast!, slow!], b);
        assertClose(a!.data, e!.data, { atol: 1e-12, rtol: 1e-9 });
      },
    ),
    fcParams(30),
  );
});

Deno.test("cross-entropy through a linear layer: full gradient equals central differences", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 2, max: 4 }),
      fc.integer({ min: 1, max: 3 }),
      seedArb,
      (n, v, d, seed) => {
        const r = rng(seed);
        const h = nx.input("h", [n, d]);
        const w = nx.param("w", [d, v]);
        const bias = nx.param("bias", [v]);
        const y = nx.input("y", [n], "i32");
        const loss = tokenCrossEntropy(nx.add(nx.matmul(h, w), bias), y);
        const b = {
          ...bind({
            h: [[n, d], normal(n * d, seed)],
            w: [[d, v], normal(d * v, seed + 1)],
            bias: [[v], normal(v, seed + 2)],
          }),
          y: nx.array(Array.from({ length: n }, () => Math.floor(r() * v)), [n], "i32"),
        };
        const g = grad(loss, ["w", "bias"]);
        const [gw, gb] = nx.interpret([g.w!, g.bias!], b);
        assertClose(gw!.data, numericGradient(loss, w, b), { atol: 1e-8, rtol: 1e-6 }, "dL/dw");
        assertClose(gb!.data, numericGradient(loss, bias, b), { atol: 1e-8, rtol: 1e-6 }, "dL/db");
      },
    ),
    fcParams(25),
  );
});

Deno.test("residual sublayers with a pre-norm MLP: full gradient equals central differences", () => {
  const d = 3;
  const x = nx.param("x", [2, d]);
  const w1 = nx.param("w1", [d, 4]), w2 = nx.param("w2", [4, d]);
  const ln = nx.param("ln.weight", [d]);
  const y = nx.residual(x, (hh) => {
    const hn = nx.mul(nx.layerNorm(hh), ln);
    return nx.matmul(nx.gelu(nx.matmul(hn, w1)), w2);
  }, { role: "mlp", layer: 0 });
  const loss = nx.mean(nx.square(nx.rmsNorm(y)));
  const loss2 = nx.sum(nx.mul(y, nx.cos(y)));
  const b = bind({
    x: [[2, d], normal(2 * d, 1)],
    w1: [[d, 4], normal(d * 4, 2)],
    w2: [[4, d], normal(4 * d, 3)],
    "ln.weight": [[d], normal(d, 4, 0.2, 1)],
  });
  for (const l of [loss, loss2]) {
    const g = grad(l, [x, w1, w2, ln]);
    const got = nx.interpret([g.x!, g.w1!, g.w2!, g["ln.weight"]!], b);
    [x, w1, w2, ln].forEach((p, i) => {
      assertClose(got[i]!.data, numericGradient(l, p, b), { atol: 1e-8, rtol: 1e-6 }, `grad ${i}`);
    });
  }
});
