/**
 * Symbolic index expressions: the integer arithmetic a kernel uses to find an
 * element of a buffer, kept in a canonical linear form so that views compose
 * and simplify (a reshape followed by its inverse becomes the identity, a
 * broadcast axis disappears, a contiguous load becomes one variable).
 *
 * A {@link Lin} is `Σ cᵢ·atomᵢ + k` over atoms: loop/invocation variables,
 * floor divisions, remainders, clamps and opaque values (gathered indices).
 * Every atom has a known integer range; the simplifier uses the ranges, so
 * all values are non-negative and fit u32 arithmetic.
 *
 * This module is pure: it knows no WGSL; kernels/ prints these trees.
 *
 * @module
 */

/** One indivisible part of an index expression. */
export type Atom =
  | { readonly t: "var"; readonly name: string; readonly n: number; readonly key: string }
  | { readonly t: "div"; readonly x: Lin; readonly d: number; readonly key: string }
  | { readonly t: "mod"; readonly x: Lin; readonly d: number; readonly key: string }
  | {
    readonly t: "clamp";
    readonly x: Lin;
    readonly lo: number;
    readonly hi: number;
    readonly key: string;
  }
  | {
    readonly t: "ext";
    readonly name: string;
    readonly lo: number;
    readonly hi: number;
    readonly key: string;
  };

/** A coefficient times an atom. */
export interface Term {
  /** the atom */
  readonly a: Atom;
  /** a non-zero integer coefficient */
  readonly c: number;
}

/** A canonical linear combination of atoms plus a constant. */
export interface Lin {
  /** terms, sorted by atom key, no two with the same atom */
  readonly terms: readonly Term[];
  /** the constant */
  readonly k: number;
  /** canonical text, equal for equal expressions */
  readonly key: string;
}

function mkLin(terms: Term[], k: number): Lin {
  // merge equal atoms, drop zeros, sort
  const merged = pairRule(mergeTerms(terms), k);
  const ts = merged.ts;
  ts.sort((a, b) => (a.a.key < b.a.key ? -1 : a.a.key > b.a.key ? 1 : 0));
  const key = ts.map((t) => `${t.c}*${t.a.key}`).join("+") + `+${merged.k}`;
  return { terms: ts, k: merged.k, key };
}

function mergeTerms(terms: readonly Term[]): Term[] {
  const m = new Map<string, Term>();
  for (const t of terms) {
    const prev = m.get(t.a.key);
    m.set(t.a.key, { a: t.a, c: (prev?.c ?? 0) + t.c });
  }
  return [...m.values()].filter((t) => t.c !== 0);
}

// c·m·(x/(d·m)) + c·((x/d) % m)  ==  c·(x/d): a delinearise followed by a
// linearise collapses back to the variable it started from.
function pairRule(ts: Term[], k: number): { ts: Term[]; k: number } {
  let changed = true;
  while (changed) {
    changed = false;
    outer: for (let i = 0; i < ts.length; i++) {
      const tm = ts[i]!;
      if (tm.a.t !== "mod") continue;
      const m = tm.a.d;
      const y = tm.a.x;
      // y is x/d2 (a single div atom) or x itself (d2 = 1)
      let base: Lin, d2: number;
      if (y.k === 0 && y.terms.length === 1 && y.terms[0]!.c === 1 && y.terms[0]!.a.t === "div") {
        const at = y.terms[0]!.a as Extract<Atom, { t: "div" }>;
        base = at.x;
        d2 = at.d;
      } else {
        base = y;
        d2 = 1;
      }
      for (let j = 0; j < ts.length; j++) {
        const td = ts[j]!;
        if (j === i || td.a.t !== "div") continue;
        if (td.a.d !== d2 * m || td.a.x.key !== base.key) continue;
        if (td.c !== tm.c * m) continue;
        const rest = ts.filter((_, q) => q !== i && q !== j);
        const repl = d2 === 1 ? scale(base, tm.c) : scale(div(base, d2), tm.c);
        ts = mergeTerms([...rest, ...repl.terms]);
        k += repl.k;
        changed = true;
        break outer;
      }
    }
  }
  return { ts, k };
}

/**
 * A constant index.
 *
 * @param k an integer
 * @returns the expression `k`
 */
export function lit(k: number): Lin {
  return mkLin([], k);
}

/**
 * A variable ranging over `[0, n)`.
 *
 * @param name its unique name
 * @param n its extent (≥ 1)
 * @returns the expression `name`
 */
export function ivar(name: string, n: number): Lin {
  if (n <= 1) return lit(0);
  return mkLin([{ a: { t: "var", name, n, key: name }, c: 1 }], 0);
}

/**
 * An opaque value with a known range (e.g. a gathered, clamped index).
 *
 * @param name the name it is bound to
 * @param lo its smallest value
 * @param hi its largest value
 * @returns the expression `name`
 */
export function ext(name: string, lo: number, hi: number): Lin {
  if (lo === hi) return lit(lo);
  return mkLin([{ a: { t: "ext", name, lo, hi, key: name }, c: 1 }], 0);
}

/**
 * Sum of index expressions.
 *
 * @param xs expressions or integers
 * @returns their sum
 */
export function add(...xs: (Lin | number)[]): Lin {
  const terms: Term[] = [];
  let k = 0;
  for (const x of xs) {
    if (typeof x === "number") k += x;
    else {
      terms.push(...x.terms);
      k += x.k;
    }
  }
  return mkLin(terms, k);
}

/**
 * Product of an index expression and an integer.
 *
 * @param x an expression
 * @param c an integer
 * @returns `c·x`
 */
export function scale(x: Lin, c: number): Lin {
  if (c === 0) return lit(0);
  return mkLin(x.terms.map((t) => ({ a: t.a, c: t.c * c })), x.k * c);
}

function atomRange(a: Atom): [number, number] {
  switch (a.t) {
    case "var":
      return [0, a.n - 1];
    case "ext":
    case "clamp":
      return [a.lo, a.hi];
    case "div": {
      const [lo, hi] = range(a.x);
      return [Math.floor(lo / a.d), Math.floor(hi / a.d)];
    }
    case "mod": {
      const [lo, hi] = range(a.x);
      if (lo >= 0 && hi < a.d) return [lo, hi];
      return [0, a.d - 1];
    }
  }
}

/**
 * The smallest and largest value an expression takes.
 *
 * @param x an expression
 * @returns `[lo, hi]`
 */
export function range(x: Lin): [number, number] {
  let lo = x.k, hi = x.k;
  for (const t of x.terms) {
    const [a, b] = atomRange(t.a);
    if (t.c > 0) {
      lo += t.c * a;
      hi += t.c * b;
    } else {
      lo += t.c * b;
      hi += t.c * a;
    }
  }
  return [lo, hi];
}

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

// Splits x into (q·d + r) with q from terms whose coefficient d divides, and
// r the rest (including the constant's remainder when it stays non-negative).
function splitBy(x: Lin, d: number): { q: Lin; r: Lin } {
  const qt: Term[] = [], rt: Term[] = [];
  for (const t of x.terms) {
    if (t.c % d === 0) qt.push({ a: t.a, c: t.c / d });
    else rt.push(t);
  }
  const kq = Math.floor(x.k / d), kr = x.k - kq * d;
  let q = mkLin(qt, kq), r = mkLin(rt, kr);
  if (range(r)[0] < 0) {
    // keep the constant whole so the rest never goes negative
    q = mkLin(qt, 0);
    r = mkLin(rt, x.k);
  }
  return { q, r };
}

function divisorsDesc(x: Lin, d: number): number[] {
  const gs = new Set<number>();
  for (const t of x.terms) {
    const g = gcd(t.c, d);
    if (g > 1 && g < d) gs.add(g);
  }
  return [...gs].sort((a, b) => b - a);
}

/**
 * Floor division by a positive integer, simplified with ranges.
 *
 * @param x a non-negative expression
 * @param d a positive integer
 * @returns `⌊x / d⌋`
 */
export function div(x: Lin, d: number): Lin {
  if (d === 1) return x;
  const [lo, hi] = range(x);
  if (lo >= 0 && Math.floor(lo / d) === Math.floor(hi / d)) return lit(Math.floor(lo / d));
  const { q, r } = splitBy(x, d);
  const [rlo, rhi] = range(r);
  if (rlo < 0 || range(q)[0] < 0) return atomLin({ t: "div", x, d, key: "" });
  if (q.terms.length || q.k) return add(q, div(r, d));
  if (rhi < d) return lit(0);
  for (const g of divisorsDesc(r, d)) {
    const s = splitBy(r, g);
    const [slo, shi] = range(s.r);
    if (slo >= 0 && shi < g && range(s.q)[0] >= 0) return div(s.q, d / g);
  }
  // (x / a) / d == x / (a·d)
  if (r.terms.length === 1 && r.k === 0 && r.terms[0]!.c === 1 && r.terms[0]!.a.t === "div") {
    const inner = r.terms[0]!.a;
    return div(inner.x, inner.d * d);
  }
  return atomLin({ t: "div", x: r, d, key: "" });
}

/**
 * Remainder by a positive integer, simplified with ranges.
 *
 * @param x a non-negative expression
 * @param d a positive integer
 * @returns `x mod d`
 */
export function mod(x: Lin, d: number): Lin {
  if (d === 1) return lit(0);
  const [lo, hi] = range(x);
  if (lo >= 0 && hi < d) return x;
  const { r } = splitBy(x, d);
  const [rlo, rhi] = range(r);
  if (rlo < 0) return atomLin({ t: "mod", x, d, key: "" });
  if (rhi < d) return r;
  for (const g of divisorsDesc(r, d)) {
    const s = splitBy(r, g);
    const [slo, shi] = range(s.r);
    if (slo >= 0 && shi < g && range(s.q)[0] >= 0) return add(scale(mod(s.q, d / g), g), s.r);
  }
  // (x % (a·d)) % d == x % d
  if (r.terms.length === 1 && r.k === 0 && r.terms[0]!.c === 1 && r.terms[0]!.a.t === "mod") {
    const inner = r.terms[0]!.a;
    if (inner.d % d === 0) return mod(inner.x, d);
  }
  return atomLin({ t: "mod", x: r, d, key: "" });
}

/**
 * Clamp to `[lo, hi]` (for padded and concatenated views, so that loads stay
 * in bounds while a condition selects zero).
 *
 * @param x an expression
 * @param lo the lower bound
 * @param hi the upper bound
 * @returns `clamp(x, lo, hi)`
 */
export function clamp(x: Lin, lo: number, hi: number): Lin {
  const [a, b] = range(x);
  if (a >= lo && b <= hi) return x;
  if (b <= lo) return lit(lo);
  if (a >= hi) return lit(hi);
  return atomLin({ t: "clamp", x, lo, hi, key: "" });
}

function atomKey(a: Atom): string {
  switch (a.t) {
    case "var":
    case "ext":
      return a.name;
    case "div":
      return `(${a.x.key})/${a.d}`;
    case "mod":
      return `(${a.x.key})%${a.d}`;
    case "clamp":
      return `clamp(${a.x.key},${a.lo},${a.hi})`;
  }
}

function atomLin(a: Atom): Lin {
  const withKey = { ...a, key: atomKey(a) } as Atom;
  return mkLin([{ a: withKey, c: 1 }], 0);
}

/**
 * Row-major linear offset of a multi-index.
 *
 * @param idx one expression per axis
 * @param shape the shape indexed
 * @returns `Σ idxᵢ·strideᵢ`
 */
export function linearize(idx: readonly Lin[], shape: readonly number[]): Lin {
  let acc = lit(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! !== 1) acc = add(acc, scale(idx[i]!, stride));
    stride *= shape[i]!;
  }
  return acc;
}

/**
 * Multi-index of a row-major linear offset.
 *
 * @param x a linear offset in `[0, numel(shape))`
 * @param shape the shape
 * @returns one expression per axis
 */
export function delinearize(x: Lin, shape: readonly number[]): Lin[] {
  const out = new Array<Lin>(shape.length);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const n = shape[i]!;
    out[i] = n === 1 ? lit(0) : i === 0 ? div(x, stride) : mod(div(x, stride), n);
    stride *= n;
  }
  return out;
}

/**
 * Maps an index of a reshaped view to the index of its source, working on
 * groups of axes whose sizes multiply to the same product (so unrelated axes
 * never mix in divisions).
 *
 * @param idx an index of the new shape
 * @param to the new shape
 * @param from the source shape
 * @returns the source index
 */
export function reshapeIndex(
  idx: readonly Lin[],
  to: readonly number[],
  from: readonly number[],
): Lin[] {
  const out: Lin[] = new Array(from.length);
  let i = 0, j = 0;
  while (i < to.length || j < from.length) {
    // one group: smallest prefix of each with equal products
    const gi = [i], gj = [j];
    let pi = to[i] ?? 1, pj = from[j] ?? 1;
    i++;
    j++;
    while (pi !== pj) {
      if (pi < pj) {
        gi.push(i);
        pi *= to[i] ?? 1;
        i++;
      } else {
        gj.push(j);
        pj *= from[j] ?? 1;
        j++;
      }
    }
    // absorb trailing size-1 axes into this group
    while (i < to.length && to[i] === 1 && !(j < from.length && from[j] === 1)) gi.push(i++);
    while (j < from.length && from[j] === 1 && !(i < to.length && to[i] === 1)) gj.push(j++);
    const vi = gi.filter((a) => a < to.length);
    const vj = gj.filter((a) => a < from.length);
    const lin = linearize(vi.map((a) => idx[a]!), vi.map((a) => to[a]!));
    const parts = delinearize(lin, vj.map((a) => from[a]!));
    vj.forEach((a, q) => (out[a] = parts[q]!));
  }
  return out;
}

/**
 * The variables and opaque values an expression depends on.
 *
 * @param x an expression
 * @param into a set to add the names to
 * @returns the set
 */
export function freeVars(x: Lin, into: Set<string> = new Set()): Set<string> {
  for (const t of x.terms) atomVars(t.a, into);
  return into;
}

function atomVars(a: Atom, into: Set<string>): void {
  if (a.t === "var" || a.t === "ext") into.add(a.name);
  else freeVars(a.x, into);
}

/**
 * Whether an expression is a constant.
 *
 * @param x an expression
 * @returns its value, or undefined
 */
export function constOf(x: Lin): number | undefined {
  return x.terms.length === 0 ? x.k : undefined;
}
