/**
 * Mathematical identities the interpreter must satisfy: linearity of sums,
 * softmax normalisation, the statistics of each normalisation, the
 * Pre-LN ≡ Pre-RMS ≡ Pre-CRMS equalities, and causal masking.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import * as nx from "../mod.ts";
import { interpret, interpretOne, type NDArray, toFloat64 } from "../mod.ts";
import { assertClose, fcParams, randn } from "./_util.ts";

// Rows of width d: [rows, d] f32 values from a seeded normal, times a scale.
const arbRows = fc.record({
  rows: fc.integer({ min: 1, max: 4 }),
  d: fc.integer({ min: 2, max: 12 }),
  seed: fc.nat(),
  scale: fc.constantFrom(1e-3, 1, 30, 1e4),
  offset: fc.constantFrom(0, 5, -300),
});

interface RowsSpec {
  rows: number;
  d: number;
  seed: number;
  scale: number;
  offset: number;
}

function rowsArray({ rows, d, seed, scale, offset }: RowsSpec): NDArray {
  const v = randn(rows * d, seed, scale).map((t) => t + offset);
  return nx.array(v, [rows, d]);
}

// Per-row mean and mean of squares of a [rows, d] float64 buffer.
function rowStats(data: Float64Array, d: number): { mean: number; ms: number; var: number }[] {
  const out = [];
  for (let r = 0; r < data.length / d; r++) {
    const row = data.subarray(r * d, r * d + d);
    const mean = row.reduce((a, b) => a + b, 0) / d;
    const ms = row.reduce((a, b) => a + b * b, 0) / d;
    const v = row.reduce((a, b) => a + (b - mean) ** 2, 0) / d;
    out.push({ mean, ms, var: v });
  }
  return out;
}

Deno.test("sum is linear: sum(a·x + b·y) = a·sum(x) + b·sum(y) over any axes", () => {
  const arb = fc.record({
    shape: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
    a: fc.double({ min: -10, max: 10, noNaN: true }),
    b: fc.double({ min: -10, max: 10, noNaN: true }),
    seed: fc.nat(),
    pick: fc.nat(),
  });
  fc.assert(
    fc.property(arb, ({ shape, a, b, seed, pick }) => {
      const axes = shape.map((_, i) => i).filter((i) => (pick >> i) & 1);
      const n = nx.numel(shape);
      const xv = nx.array(randn(n, seed), shape), yv = nx.array(randn(n, seed + 1), shape);
      const x = nx.input("x", shape), y = nx.input("y", shape);
      const [lhs, sx, sy] = interpret(
        [nx.sum(nx.add(nx.mul(x, a), nx.mul(y, b)), axes), nx.sum(x, axes), nx.sum(y, axes)],
        { x: xv, y: yv },
      );
      const rhs = sx!.data.map((v, i) => a * v + b * sy!.data[i]!);
      const mag = (Math.abs(a) + Math.abs(b)) * n * 5;
      assertClose(lhs!.data, rhs, { atol: 1e-13 * mag + 1e-300, rtol: 0 }, "sum linearity");
    }),
    fcParams(100),
  );
});

Deno.test("softmax rows sum to 1, are non-negative, and ignore a constant shift", () => {
  fc.assert(
    fc.property(arbRows, fc.double({ min: -1e3, max: 1e3, noNaN: true }), (p, c) => {
      const xv = rowsArray(p);
      const x = nx.input("x", [p.rows, p.d]);
      const [s, shifted, ls] = interpret(
        [nx.softmax(x), nx.softmax(nx.add(x, c)), nx.logSoftmax(x)],
        { x: xv },
      );
      for (let r = 0; r < p.rows; r++) {
        const row = s!.data.subarray(r * p.d, (r + 1) * p.d);
        assert.ok(row.every((v) => v >= 0 && v <= 1), "probabilities in [0, 1]");
        assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12, "row sums to 1");
      }
      assertClose(shifted!.data, s!.data, { atol: 1e-9, rtol: 1e-6 }, "shift invariance");
      // log-softmax agrees where softmax has not underflowed.
      const lsExp = s!.data.map(Math.log);
      const keep = (v: number) => v > 1e-300;
      assertClose(
        ls!.data.filter((_, i) => keep(s!.data[i]!)),
        lsExp.filter((_, i) => keep(s!.data[i]!)),
        { atol: 1e-9, rtol: 1e-9 },
        "logSoftmax",
      );
    }),
    fcParams(100),
  );
});

Deno.test("LayerNorm rows have mean 0 and variance var/(var+ε)", () => {
  fc.assert(
    fc.property(arbRows, fc.constantFrom(1e-5, 1e-6, 0.1), (p, eps) => {
      const xv = rowsArray(p);
      const y = interpretOne(nx.layerNorm(nx.input("x", [p.rows, p.d]), { eps }), { x: xv });
      const inS = rowStats(toFloat64(xv), p.d), outS = rowStats(y.data, p.d);
      outS.forEach((o, r) => {
        const want = inS[r]!.var / (inS[r]!.var + eps);
        assert.ok(Math.abs(o.mean) < 1e-9, `row ${r} mean ${o.mean}`);
        assert.ok(Math.abs(o.var - want) <= 1e-9 * (1 + want), `row ${r} var ${o.var} vs ${want}`);
        // ≈ 1 when the row's variance dominates ε
        if (inS[r]!.var > 1e3 * eps) assert.ok(Math.abs(o.var - 1) < 2e-3);
      });
    }),
    fcParams(100),
  );
});

Deno.test("RMSNorm rows have mean square ms/(ms+ε), i.e. RMS ≈ 1", () => {
  fc.assert(
    fc.property(arbRows, fc.constantFrom(1e-5, 1e-6, 0.1), (p, eps) => {
      const xv = rowsArray(p);
      const y = interpretOne(nx.rmsNorm(nx.input("x", [p.rows, p.d]), { eps }), { x: xv });
      const inS = rowStats(toFloat64(xv), p.d), outS = rowStats(y.data, p.d);
      outS.forEach((o, r) => {
        const want = inS[r]!.ms / (inS[r]!.ms + eps);
        assert.ok(Math.abs(o.ms - want) <= 1e-9 * (1 + want), `row ${r} ms ${o.ms} vs ${want}`);
      });
    }),
    fcParams(100),
  );
});

Deno.test("L2 norm gives unit rows; FakeLN is (x − μ)/σ̄", () => {
  fc.assert(
    fc.property(arbRows, fc.double({ min: 0.1, max: 10, noNaN: true }), (p, sigma) => {
      const xv = rowsArray(p);
      const x = nx.input("x", [p.rows, p.d]);
      const [l2, fake] = interpret([nx.l2Norm(x), nx.fakeNorm(x, sigma)], { x: xv });
      const xs = toFloat64(xv), st = rowStats(xs, p.d);
      for (let r = 0; r < p.rows; r++) {
        const ss = st[r]!.ms * p.d;
        const got = l2!.data.subarray(r * p.d, (r + 1) * p.d).reduce((a, b) => a + b * b, 0);
        assert.ok(Math.abs(got - ss / (ss + 1e-12)) < 1e-9);
      }
      const want = xs.map((v, i) => (v - st[Math.floor(i / p.d)]!.mean) / sigma);
      assertClose(fake!.data, want, { atol: 1e-9 * (p.scale + Math.abs(p.offset)), rtol: 1e-9 });
    }),
    fcParams(60),
  );
});

// Zero-mean integer rows: every statistic below is exact in float64.
const arbZeroMeanInts = fc.record({
  rows: fc.integer({ min: 1, max: 4 }),
  d: fc.integer({ min: 2, max: 16 }),
  vals: fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 64, maxLength: 64 }),
}).map(({ rows, d, vals }) => {
  const data: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: d - 1 }, (_, i) => vals[(r * d + i) % 64]!);
    data.push(...row, -row.reduce((a, b) => a + b, 0));
  }
  return { rows, d, x: nx.array(data, [rows, d]) };
});

Deno.test("LN equals RMSNorm on zero-mean rows, including ε", () => {
  fc.assert(
    fc.property(arbZeroMeanInts, fc.constantFrom(1e-5, 1, 100), ({ rows, d, x }, eps) => {
      const xi = nx.input("x", [rows, d]);
      const [ln, rms] = interpret([nx.layerNorm(xi, { eps }), nx.rmsNorm(xi, { eps })], { x });
      assert.deepEqual([...ln!.data], [...rms!.data]);
    }),
    fcParams(100),
  );
  // Float rows centred inside the graph: equal up to rounding of the mean.
  fc.assert(
    fc.property(arbRows, (p) => {
      const xi = nx.input("x", [p.rows, p.d]);
      const xc = nx.sub(xi, nx.mean(xi, -1, { keepdims: true }));
      const [ln, rms] = interpret([nx.layerNorm(xc), nx.rmsNorm(xc)], { x: rowsArray(p) });
      assertClose(ln!.data, rms!.data, { atol: 1e-9, rtol: 1e-9 }, "LN vs RMS");
    }),
    fcParams(60),
  );
});

Deno.test("CRMS(x[:d−1]) equals RMS(x)[:d−1] on zero-mean rows", () => {
  fc.assert(
    fc.property(arbZeroMeanInts, fc.constantFrom(1e-5, 1), ({ rows, d, x }, eps) => {
      const xi = nx.input("x", [rows, d]);
      const head = nx.slice(xi, -1, 0, d - 1);
      const c = nx.crmsNorm(head, { eps });
      assert.deepEqual((c.arg as { dim: number }).dim, d);
      const [crms, rms] = interpret([c, nx.slice(nx.rmsNorm(xi, { eps }), -1, 0, d - 1)], { x });
      assertClose(crms!.data, rms!.data, { atol: 1e-15, rtol: 1e-14 }, "CRMS vs RMS");
    }),
    fcParams(100),
  );
});

// Naive attention over [T, d] slices of [B, T, d] operands.
function naiveAttention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  [b, tq, tk, dk, dv]: number[],
  scale: number,
  causal: boolean,
): Float64Array {
  const out = new Float64Array(b! * tq! * dv!);
  for (let bi = 0; bi < b!; bi++) {
    for (let i = 0; i < tq!; i++) {
      const logits: number[] = [];
      for (let j = 0; j < tk!; j++) {
        let s = 0;
        for (let c = 0; c < dk!; c++) {
          s += q[(bi * tq! + i) * dk! + c]! * k[(bi * tk! + j) * dk! + c]!;
        }
        logits.push(causal && j > i + (tk! - tq!) ? -Infinity : s * scale);
      }
      const m = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - m));
      const z = e.reduce((a, c) => a + c, 0);
      for (let c = 0; c < dv!; c++) {
        let acc = 0;
        for (let j = 0; j < tk!; j++) acc += (e[j]! / z) * v[(bi * tk! + j) * dv! + c]!;
        out[(bi * tq! + i) * dv! + c] = acc;
      }
    }
  }
  return out;
}

Deno.test("attention matches a naive softmax(q kᵀ·scale + mask) v, causal aligned at the end", () => {
  const arb = fc.record({
    b: fc.integer({ min: 1, max: 2 }),
    tq: fc.integer({ min: 1, max: 5 }),
    extra: fc.integer({ min: 0, max: 3 }),
    dk: fc.integer({ min: 1, max: 4 }),
    dv: fc.integer({ min: 1, max: 4 }),
    causal: fc.boolean(),
    seed: fc.nat(),
  });
  fc.assert(
    fc.property(arb, ({ b, tq, extra, dk, dv, causal, seed }) => {
      const tk = tq + extra;
      const qv = nx.array(randn(b * tq * dk, seed), [b, tq, dk]);
      const kv = nx.array(randn(b * tk * dk, seed + 1), [b, tk, dk]);
      const vv = nx.array(randn(b * tk * dv, seed + 2), [b, tk, dv]);
      const y = nx.attention(
        nx.input("q", [b, tq, dk]),
        nx.input("k", [b, tk, dk]),
        nx.input("v", [b, tk, dv]),
        { causal },
      );
      const got = interpretOne(y, { q: qv, k: kv, v: vv }).data;
      const want = naiveAttention(
        toFloat64(qv),
        toFloat64(kv),
        toFloat64(vv),
        [b, tq, tk, dk, dv],
        1 / Math.sqrt(dk),
        causal,
      );
      assertClose(got, want, { atol: 1e-12, rtol: 1e-10 }, "attention");
    }),
    fcParams(80),
  );
});

Deno.test("causal attention row i ignores keys and values after i", () => {
  const arb = fc.record({
    t: fc.integer({ min: 2, max: 6 }),
    d: fc.integer({ min: 1, max: 4 }),
    seed: fc.nat(),
    pivot: fc.nat(),
  });
  fc.assert(
    fc.property(arb, ({ t, d, seed, pivot }) => {
      const p = pivot % (t - 1); // rows 0..p must not change; row p+1 sees a changed key
      const shape = [2, t, d];
      const n = 2 * t * d;
      const q = nx.input("q", shape), k = nx.input("k", shape), v = nx.input("v", shape);
      const qv = nx.array(randn(n, seed), shape);
      const kv = nx.array(randn(n, seed + 1), shape), vv = nx.array(randn(n, seed + 2), shape);
      const noise = randn(n, seed + 3, 10);
      const future = (a: NDArray) =>
        nx.array(a.data.map((x, i) => (Math.floor(i / d) % t > p ? x + noise[i]! : x)), shape);
      const run = (causal: boolean, kk: NDArray, vvv: NDArray) =>
        interpretOne(nx.attention(q, k, v, { causal }), { q: qv, k: kk, v: vvv }).data;
      const before = run(true, kv, vv), after = run(true, future(kv), future(vv));
      let changed = false;
      for (let i = 0; i < n; i++) {
        const row = Math.floor(i / d) % t;
        if (row <= p) assert.equal(after[i], before[i], `row ${row} changed`);
        else if (after[i] !== before[i]) changed = true;
      }
      assert.ok(changed, "rows after the pivot see the perturbation");
      // Without the mask, the same perturbation reaches row 0.
      const open0 = run(false, kv, vv), open1 = run(false, future(kv), future(vv));
      assert.notDeepEqual([...open1.subarray(0, d)], [...open0.subarray(0, d)]);
    }),
    fcParams(80),
  );
});

Deno.test("residual evaluates to x + body(x), nested residuals and norms included", () => {
  const x = nx.input("x", [2, 4]);
  const xv = nx.array(randn(8, 7), [2, 4]);
  const body = (h: nx.Expr<"f32">) => nx.mul(nx.rmsNorm(h), 0.5);
  const inner = nx.residual(x, body, { role: "mlp", layer: 0 });
  const outer = nx.residual(inner, (h) => nx.tanh(nx.layerNorm(h)), { role: "attn", layer: 1 });
  const [r1, r2, want1] = interpret([inner, outer, nx.add(x, body(x))], { x: xv });
  assert.deepEqual([...r1!.data], [...want1!.data]);
  const [want2] = interpret([nx.add(r1Expr(), nx.tanh(nx.layerNorm(r1Expr())))], { x: xv });
  assertClose(r2!.data, want2!.data, { atol: 0, rtol: 0 });

  function r1Expr(): nx.Expr<"f32"> {
    return nx.add(x, body(x));
  }
});
