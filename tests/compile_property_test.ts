/**
 * Property: compiled WebGPU programs agree with the float64 interpreter on
 * random well-typed graphs (broadcasting, reductions, matmuls, movement ops,
 * long elementwise chains, norms, softmax, attention, gather), fused and
 * unfused. Many graphs are batched into one program (one compile, one
 * submit) to keep the test fast.
 *
 * @module
 */
import fc from "fast-check";
import * as nx from "../lib/ir/mod.ts";
import { interpret } from "../lib/interpret.ts";
import { compile, createRuntime, type Runtime } from "../kernels/mod.ts";
import { assertClose, fcParams, hasGpu, randn, rng } from "./_util.ts";

type E = nx.Expr<"f32">;

interface Built {
  outputs: E[];
  bindings: Record<string, nx.NDArray>;
  params: Set<string>;
  /** longest reduction feeding the outputs (for tolerances) */
  reduceLen: number;
}

/** Builds a random graph from a seed; names are prefixed so graphs can share a program. */
function randomGraph(seed: number, prefix: string): Built {
  const r = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const bindings: Record<string, nx.NDArray> = {};
  const params = new Set<string>();
  let n = 0;
  let reduceLen = 1;
  const leaf = (shape: number[], isParam = false): E => {
    const name = `${prefix}${isParam ? "p" : "x"}${n++}`;
    const size = shape.reduce((a, b) => a * b, 1);
    bindings[name] = nx.array(Float32Array.from(randn(size, int(1, 1e9))), shape);
    if (isParam) params.add(name);
    return isParam ? nx.param(name, shape) : nx.input(name, shape);
  };
  const randShape = (): number[] => Array.from({ length: int(1, 3) }, () => int(1, 5));
  const pool: E[] = [leaf(randShape()), leaf(randShape(), true)];
  const last = () => pool[pool.length - 1]!;
  const any = () => (r() < 0.6 ? last() : pick(pool));
  // a shape that broadcasts against s
  const bshape = (s: readonly number[]) => {
    const keep = int(0, s.length);
    return s.slice(s.length - keep).map((d) => (r() < 0.3 ? 1 : d));
  };
  const steps = int(3, 9);
  const kindsUsed = new Set<number>();
  for (let st = 0; st < steps; st++) {
    const x = any();
    const s = x.shape;
    const rank = s.length;
    const kind = int(0, 20);
    kindsUsed.add(kind);
    let y: E;
    switch (kind) {
      case 0: { // long elementwise chain
        y = x;
        for (let i = int(2, 6); i > 0; i--) {
          const u = int(0, 9);
          y = u === 0
            ? nx.neg(y)
            : u === 1
            ? nx.tanh(y)
            : u === 2
            ? nx.sin(y)
            : u === 3
            ? nx.cos(y)
            : u === 4
            ? nx.abs(y)
            : u === 5
            ? nx.exp(nx.tanh(y))
            : u === 6
            ? nx.log(nx.add(nx.abs(y), 1))
            : u === 7
            ? nx.sqrt(nx.add(nx.abs(y), 0.1))
            : u === 8
            ? nx.recip(nx.add(nx.abs(y), 0.5))
            : nx.rsqrt(nx.add(nx.abs(y), 0.5));
        }
        break;
      }
      case 1:
      case 2: { // binary with broadcasting
        const other = pool.find((p) => p !== x && nx.broadcastShapes(p.shape, s)) ??
          leaf(bshape(s), r() < 0.5);
        const op = int(0, 5);
        y = op === 0
          ? nx.add(x, other)
          : op === 1
          ? nx.sub(other, x)
          : op === 2
          ? nx.mul(x, other)
          : op === 3
          ? nx.div(x, nx.add(nx.abs(other), 1))
          : op === 4
          ? nx.maximum(x, other)
          : nx.minimum(other, x);
        break;
      }
      case 3: { // compare + where, with a scalar
        const c = r() - 0.5;
        y = nx.where(nx.less(x, c), x, nx.mul(x, 0.5));
        break;
      }
      case 4: { // reduction
        const axes = [...Array(rank).keys()].filter(() => r() < 0.5);
        if (axes.length === 0) axes.push(int(0, rank - 1));
        const len = axes.reduce((a, ax) => a * s[ax]!, 1);
        reduceLen = Math.max(reduceLen, len);
        const keep = r() < 0.5;
        const op = int(0, 2);
        y = op === 0
          ? nx.sum(x, axes, { keepdims: keep })
          : op === 1
          ? nx.max(x, axes, { keepdims: keep })
          : nx.mean(x, axes, { keepdims: keep });
        if (y.shape.length === 0) y = nx.reshape(y, [1]);
        break;
      }
      case 5: { // matmul with a param (2-D) or a batched input
        const k = s[rank - 1]!;
        const nn = int(1, 5);
        const a = rank === 1 ? nx.reshape(x, [1, k]) : x;
        const b = r() < 0.6 || a.shape.length === 2
          ? leaf([k, nn], true)
          : leaf([...a.shape.slice(0, -2), k, nn]);
        reduceLen = Math.max(reduceLen, k);
        y = nx.matmul(a, b);
        if (r() < 0.5) y = nx.add(y, leaf([nn], true));
        if (r() < 0.3) y = nx.gelu(y);
        break;
      }
      case 6: { // permute
        const p = [...Array(rank).keys()].sort(() => r() - 0.5);
        y = nx.permute(x, p);
        break;
      }
      case 7: { // slice
        const ax = int(0, rank - 1);
        const d = s[ax]!;
        const a = int(0, d - 1), b = int(a + 1, d);
        y = nx.slice(x, ax, a, b);
        break;
      }
      case 8: { // pad
        y = nx.pad(x, s.map(() => int(0, 2)), s.map(() => int(0, 2)));
        break;
      }
      case 9: { // concat with a transformed copy
        const ax = int(0, rank - 1);
        y = nx.concat([x, nx.mul(x, 2), nx.tanh(x)].slice(0, int(2, 3)), ax);
        break;
      }
      case 10: { // reshape: flatten or split
        const total = s.reduce((a, b) => a * b, 1);
        y = r() < 0.5 || total < 4
          ? nx.reshape(x, [total])
          : nx.reshape(x, total % 2 === 0 ? [2, total / 2] : [1, total, 1]);
        break;
      }
      case 11: { // expand a size-1 axis
        y = nx.broadcastTo(nx.reshape(x, [1, ...s]), [int(2, 3), ...s]);
        break;
      }
      case 12: { // norm (optionally with residual-style add)
        const kind2 = int(0, 2);
        const nrm = kind2 === 0 ? nx.layerNorm(x) : kind2 === 1 ? nx.rmsNorm(x) : nx.l2Norm(x);
        reduceLen = Math.max(reduceLen, s[rank - 1]!);
        y = r() < 0.5 ? nx.add(nx.mul(nrm, 1.5), x) : nrm;
        break;
      }
      case 13: { // softmax
        const ax = int(0, rank - 1);
        reduceLen = Math.max(reduceLen, s[ax]!);
        y = nx.softmax(x, ax);
        break;
      }
      case 14: { // attention over [.., T, d]
        const a = rank === 1 ? nx.reshape(x, [s[0]!, 1]) : x;
        const q = a, k = nx.mul(a, 0.7), v = nx.tanh(a);
        reduceLen = Math.max(
          reduceLen,
          a.shape[a.shape.length - 1]! * a.shape[a.shape.length - 2]!,
        );
        y = nx.attention(q, k, v, { causal: r() < 0.5 });
        break;
      }
      case 16: { // sibling matmuls sharing an operand (horizontal fusion), combined or not
        const k = s[rank - 1]!;
        const a = rank === 1 ? nx.reshape(x, [1, k]) : x;
        const nn = int(1, 6);
        const m1 = nx.matmul(a, leaf([k, nn], true));
        const m2 = nx.add(nx.matmul(a, leaf([k, nn], true)), leaf([nn], true));
        reduceLen = Math.max(reduceLen, k);
        y = r() < 0.5 ? nx.add(m1, m2) : nx.concat([m1, nx.tanh(m2)], -1);
        break;
      }
      case 17: { // Post-LN / HybridNorm: y = Norm(x + x·W); y + y·W2 (a norm read by a matmul
        // and by that matmul's epilogue)
        const k = s[rank - 1]!;
        const a = rank === 1 ? nx.reshape(x, [1, k]) : x;
        const h = nx.add(a, nx.matmul(a, leaf([k, k], true)));
        const yn = r() < 0.5 ? nx.layerNorm(h) : nx.rmsNorm(h);
        reduceLen = Math.max(reduceLen, 2 * k);
        const z = nx.matmul(yn, leaf([k, k], true));
        y = r() < 0.5 ? nx.add(yn, z) : nx.add(nx.mul(z, nx.sum(yn, -1, { keepdims: true })), yn);
        break;
      }
      case 18: { // reductions feeding a matmul epilogue (row statistics of A, of the product)
        const k = s[rank - 1]!;
        const a = rank === 1 ? nx.reshape(x, [1, k]) : x;
        const nn = int(1, 5);
        const mm = nx.matmul(a, leaf([k, nn], true));
        reduceLen = Math.max(reduceLen, k * nn);
        const red = int(0, 2);
        const side = red === 0
          ? nx.mean(a, -1, { keepdims: true })
          : red === 1
          ? nx.max(nx.tanh(a), -1, { keepdims: true })
          : nx.sum(nx.layerNorm(a), -1, { keepdims: true });
        const e = nx.add(mm, side);
        y = r() < 0.5 ? e : nx.sub(e, nx.mean(e, -1, { keepdims: true }));
        break;
      }
      case 19: { // a norm feeding two matmuls (sibling products) and an elementwise consumer
        const k = s[rank - 1]!;
        const a = rank === 1 ? nx.reshape(x, [1, k]) : x;
        const yn = nx.layerNorm(nx.mul(a, 2));
        const m1 = nx.matmul(yn, leaf([k, k], true));
        const m2 = nx.matmul(yn, leaf([k, k], true));
        reduceLen = Math.max(reduceLen, k);
        y = nx.add(nx.add(m1, nx.tanh(m2)), yn);
        break;
      }
      case 20: { // an optimizer-like step: moments and a new value (one kernel), a scalar
        // schedule from a scalar input and a global norm (computed once, not per element)
        const g = nx.tanh(x);
        const m = nx.add(nx.mul(leaf([...s], true), 0.9), nx.mul(g, 0.1));
        const v = nx.add(nx.mul(nx.abs(leaf([...s], true)), 0.99), nx.mul(nx.square(g), 0.01));
        const t = leaf([]);
        const sched = nx.div(nx.sqrt(nx.add(nx.abs(nx.cos(t)), 0.5)), nx.add(nx.exp(nx.sin(t)), 1));
        const norm = nx.sqrt(nx.add(nx.sum(nx.square(g)), 1));
        const scale = nx.minimum(nx.div(1, norm), 1);
        reduceLen = Math.max(reduceLen, s.reduce((a, b) => a * b, 1));
        const p = nx.sub(x, nx.mul(nx.mul(sched, scale), nx.div(m, nx.add(nx.sqrt(v), 1e-3))));
        pool.push(m, v);
        y = p;
        break;
      }
      default: { // gather rows of a table by integer indices, plus iota masks
        const rows = int(2, 5);
        const table = leaf([rows, s[rank - 1]!], true);
        const m = int(1, 4);
        const iname = `${prefix}i${n++}`;
        bindings[iname] = nx.array(
          Int32Array.from({ length: m }, () => int(0, rows - 1)),
          [m],
          "i32",
        );
        const g = nx.gather(table, nx.input(iname, [m], "i32"));
        const mask = nx.less(nx.iota([m, s[rank - 1]!], 0), int(0, m));
        y = nx.where(mask, g, nx.cast(nx.iota([m, s[rank - 1]!], 1), "f32"));
        break;
      }
    }
    pool.push(y);
  }
  const outputs = [last()];
  if (r() < 0.4 && pool.length > 3) outputs.push(pool[int(2, pool.length - 2)]!);
  if (kindsUsed.has(20) && r() < 0.7) outputs.push(...pool.slice(-3, -1));
  return { outputs, bindings, params, reduceLen };
}

async function checkBatch(seeds: readonly number[], rt: Runtime, fusion: boolean): Promise<void> {
  const graphs = seeds.map((s, i) => randomGraph(s, `g${i}_`));
  const outputs = graphs.flatMap((g) => g.outputs);
  const params: Record<string, nx.NDArray> = {};
  const inputs: Record<string, nx.NDArray> = {};
  for (const g of graphs) {
    for (const [k, v] of Object.entries(g.bindings)) (g.params.has(k) ? params : inputs)[k] = v;
  }
  const prog = await compile(outputs, { runtime: rt, fusion });
  try {
    for (const k of prog.kernels) {
      if (k.buffers.length > rt.limits.maxStorageBuffers) {
        throw new Error(`${k.name} binds too many`);
      }
    }
    prog.setParams(params);
    const got = await prog.run(inputs);
    let o = 0;
    for (const [gi, g] of graphs.entries()) {
      const ref = interpret(g.outputs, g.bindings);
      for (const [j, e] of ref.entries()) {
        const a = got[o++]!;
        let scale = 1;
        for (const v of e.data) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
        const tol = { atol: 2e-5 * scale * Math.sqrt(g.reduceLen), rtol: 2e-4 };
        assertClose(a.data, e.data, tol, `graph ${gi} (seed ${seeds[gi]}) output ${j}`);
      }
    }
  } finally {
    prog[Symbol.dispose]();
  }
}

const gpu = await hasGpu();

/**
 * One GPU property: `runs` programs, each checking `graphs` random graphs at once.
 *
 * @param name the test name
 * @param o graphs per program, runs, fusion, and the runtime's storage-buffer limit
 */
function gpuProperty(
  name: string,
  o: { graphs: number; runs: number; fusion: boolean; maxStorageBuffers?: number },
): void {
  Deno.test({
    name,
    ignore: !gpu,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const rt = await createRuntime(
        o.maxStorageBuffers ? { maxStorageBuffers: o.maxStorageBuffers } : {},
      );
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.integer({ min: 1, max: 2 ** 31 - 1 }), {
              minLength: o.graphs,
              maxLength: o.graphs,
            }),
            (seeds) => checkBatch(seeds, rt, o.fusion),
          ),
          fcParams(o.runs),
        );
      } finally {
        rt.destroy();
      }
    },
  });
}

gpuProperty("compile() matches the interpreter on random fused graphs (batched programs)", {
  graphs: 24,
  runs: 12,
  fusion: true,
});
gpuProperty("compile({ fusion: false }) matches the interpreter on random graphs", {
  graphs: 12,
  runs: 3,
  fusion: false,
});
gpuProperty("compile() matches the interpreter with a forced limit of 4 storage buffers", {
  graphs: 12,
  runs: 3,
  fusion: true,
  maxStorageBuffers: 4,
});
