/**
 * Hand-written SVG charts (no dependencies): line charts with linear or
 * log-y axes, heatmaps, and tables. Each renderer returns a {@link Panel}
 * (a size plus SVG markup in its own coordinates); {@link stackPanels}
 * and {@link panelSvg} turn panels into a standalone SVG document.
 *
 * Every series is exactly one `<polyline data-series="...">`. Non-finite
 * values are left out of the line (it joins the finite neighbours) and the
 * first one is marked with a "×" at the top of the plot, titled with its x
 * (a diverged run shows where it diverged). On a log axis, values ≤ 0 are
 * left out too.
 *
 * @module
 */

/** A rendered chart: its size and its SVG markup (without a root element). */
export interface Panel {
  /** Width in px. */
  readonly width: number;
  /** Height in px. */
  readonly height: number;
  /** SVG elements drawn in [0, width] × [0, height]. */
  readonly body: string;
}

/** One line of a chart. */
export interface ChartSeries {
  /** Identifier written as `data-series` (unique within a chart). */
  readonly id: string;
  /** x values. */
  readonly x: ArrayLike<number>;
  /** y values (same length as x). */
  readonly y: ArrayLike<number>;
  /** Stroke colour. */
  readonly color: string;
  /** Stroke opacity (default 1). */
  readonly opacity?: number;
  /** Stroke width (default 1.5). */
  readonly width?: number;
  /** SVG dash pattern, e.g. "5 3". */
  readonly dash?: string;
}

/** A legend entry. */
export interface LegendEntry {
  /** Text. */
  readonly label: string;
  /** Colour. */
  readonly color: string;
  /** Dash pattern. */
  readonly dash?: string;
  /** Opacity. */
  readonly opacity?: number;
}

/** A horizontal reference line. */
export interface RefLine {
  /** Its y value. */
  readonly y: number;
  /** Its label. */
  readonly label: string;
  /** Colour (default grey). */
  readonly color?: string;
}

/** A line chart. */
export interface LineChartSpec {
  /** Title above the plot. */
  readonly title: string;
  /** x axis label. */
  readonly xLabel?: string;
  /** y axis label. */
  readonly yLabel?: string;
  /** Logarithmic y axis. */
  readonly logY?: boolean;
  /** Size (default 760 × 300). */
  readonly width?: number;
  /** Height. */
  readonly height?: number;
  /** The lines. */
  readonly series: readonly ChartSeries[];
  /** Reference lines. */
  readonly refLines?: readonly RefLine[];
  /** Legend entries (right of the plot). */
  readonly legend?: readonly LegendEntry[];
  /** Longest polyline in points; longer series are reduced to per-bucket min/max (default 1500). */
  readonly maxPoints?: number;
}

/** A heatmap of rows (e.g. layers) × columns (e.g. steps). */
export interface HeatmapSpec {
  /** Title. */
  readonly title: string;
  /** Row labels, top to bottom. */
  readonly rows: readonly string[];
  /** Column positions (e.g. steps), left to right. */
  readonly cols: readonly number[];
  /** `values[c][r]`: the value of row r in column c. */
  readonly values: readonly (readonly number[])[];
  /** Colour by log10 of the value (default true). */
  readonly log?: boolean;
  /** Column axis label (default "step"). */
  readonly colLabel?: string;
  /** Row axis label (default "layer"). */
  readonly rowLabel?: string;
  /** Width (default 760). */
  readonly width?: number;
  /** Most columns drawn; more are averaged into bins (default 100). */
  readonly maxCols?: number;
  /** A note under the title. */
  readonly note?: string;
}

/** A small table. */
export interface TableSpec {
  /** Title (optional). */
  readonly title?: string;
  /** Column headers. */
  readonly header: readonly string[];
  /** Rows of cells. */
  readonly rows: readonly (readonly string[])[];
  /** A colour swatch before each row's first cell. */
  readonly swatches?: readonly string[];
  /** Width (default 760). */
  readonly width?: number;
}

/** A categorical palette (Tableau 10), one colour per variant. */
export const PALETTE: readonly string[] = Object.freeze([
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
]);

/**
 * Escapes text for XML content and attribute values; characters XML 1.0
 * forbids (most control characters, lone surrogates) become U+FFFD.
 *
 * @param s any string
 * @returns the escaped text
 */
export function escapeXml(s: string): string {
  return String(s)
    .replace(
      // deno-lint-ignore no-control-regex
      /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
      "\ufffd",
    )
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/**
 * Formats a number compactly for axes and tables (4 significant digits,
 * exponent form for very large or small magnitudes).
 *
 * @param v a number
 * @returns text
 */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    return v.toExponential(2).replace(/\.?0+e/, "e").replace("e+", "e");
  }
  return String(Number(v.toPrecision(4)));
}

function f1(v: number): string {
  return (Math.round(v * 10) / 10).toFixed(1).replace(/\.0$/, "");
}

function text(
  x: number,
  y: number,
  s: string,
  attrs: string = "",
): string {
  return `<text x="${f1(x)}" y="${f1(y)}"${attrs ? " " + attrs : ""}>${escapeXml(s)}</text>`;
}

const MAX = Number.MAX_VALUE;
const clampF = (v: number) => Math.min(MAX, Math.max(-MAX, v));

function niceStep(range: number, target: number): number {
  const raw = range / Math.max(1, target);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/** Nice linear ticks in [lo, hi]; bounded, so any finite range terminates. */
function linearTicks(lo: number, hi: number, target = 5): number[] {
  const st = niceStep(hi / 2 - lo / 2, target / 2); // halves: the range may overflow
  const first = Math.ceil(lo / st), last = Math.floor(hi / st);
  const count = last - first + 1;
  if (!(st > 0) || !Number.isFinite(st) || !(count >= 1 && count <= 50)) {
    return [lo, hi].filter(Number.isFinite);
  }
  const out: number[] = [];
  for (let k = first; k <= last; k++) {
    const v = k * st;
    out.push(k === 0 ? 0 : Number(v.toPrecision(12)));
  }
  return out;
}

/** A y or x axis: maps values to [0, 1] and gives tick values. */
interface Axis {
  map(v: number): number;
  ticks(): number[];
}

/**
 * A linear axis over [lo, hi] (finite), widened when degenerate and padded a
 * little. Works in halves so ranges near ±MAX_VALUE do not overflow.
 */
function linearAxis(lo: number, hi: number, pad: number): Axis {
  if (!(hi / 2 - lo / 2 > Math.max(Math.abs(lo), Math.abs(hi)) * 1e-12)) {
    const c = lo / 2 + hi / 2;
    const w = Math.abs(c) > 0 ? Math.abs(c) * 0.05 : 1;
    [lo, hi] = [clampF(c - w), clampF(c + w)];
  }
  const half = hi / 2 - lo / 2;
  [lo, hi] = [clampF(lo - 2 * half * pad), clampF(hi + 2 * half * pad)];
  const h = hi / 2 - lo / 2;
  return { map: (v) => (v / 2 - lo / 2) / h, ticks: () => linearTicks(lo, hi) };
}

/** A log axis over positive finite [lo, hi], computed in log space (no under/overflow). */
function logAxis(lo: number, hi: number, pad: number): Axis {
  let L0 = Math.log(lo), L1 = Math.log(hi);
  if (!(L1 - L0 > 1e-9)) [L0, L1] = [L0 - Math.LN2, L1 + Math.LN2];
  const d = L1 - L0;
  [L0, L1] = [L0 - d * pad, L1 + d * pad];
  const ticks = () => {
    const a = Math.ceil(L0 / Math.LN10 - 1e-9), b = Math.floor(L1 / Math.LN10 + 1e-9);
    const decades = b - a + 1;
    const out: number[] = [];
    if (decades >= 1) {
      const every = Math.max(1, Math.ceil(decades / 10));
      const mults = decades <= 3 ? [1, 2, 5] : [1];
      for (let e = a - 1; e <= b; e += e < a ? 1 : every) {
        for (const m of mults) {
          const v = Number((m * Math.pow(10, e)).toPrecision(12));
          const lv = Math.log(v);
          if (v > 0 && Number.isFinite(v) && lv >= L0 - 1e-12 && lv <= L1 + 1e-12) out.push(v);
        }
      }
    }
    if (out.length >= 3) return out;
    // Less than a decade: linear ticks, still placed on the log axis.
    const lin = linearTicks(Math.exp(L0), Math.exp(L1)).filter((v) => v > 0);
    return lin.length >= 2 ? lin : out;
  };
  return { map: (v) => (Math.log(v) - L0) / (L1 - L0), ticks };
}

/** Reduces a long series to per-bucket (min, max) pairs, keeping order and shape. */
function reduce(xs: number[], ys: number[], max: number): [number[], number[]] {
  if (xs.length <= max) return [xs, ys];
  const buckets = Math.max(1, Math.floor(max / 2));
  const per = xs.length / buckets;
  const ox: number[] = [], oy: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const s = Math.floor(b * per), e = Math.min(xs.length, Math.floor((b + 1) * per));
    if (e <= s) continue;
    let iMin = s, iMax = s;
    for (let i = s; i < e; i++) {
      if (ys[i]! < ys[iMin]!) iMin = i;
      if (ys[i]! > ys[iMax]!) iMax = i;
    }
    const pick = iMin === iMax ? [iMin] : iMin < iMax ? [iMin, iMax] : [iMax, iMin];
    for (const i of pick) {
      ox.push(xs[i]!);
      oy.push(ys[i]!);
    }
  }
  return [ox, oy];
}

/**
 * Renders a line chart.
 *
 * @param spec title, axes, series, reference lines, legend
 * @returns the panel
 */
export function lineChartPanel(spec: LineChartSpec): Panel {
  const W = spec.width ?? 760, H = spec.height ?? 300;
  const hasLegend = (spec.legend?.length ?? 0) > 0;
  const L = 64, R = hasLegend ? 170 : 20, T = 34, B = 44;
  const pw = W - L - R, ph = H - T - B;
  const logY = spec.logY ?? false;
  const ok = (v: number) => Number.isFinite(v) && (!logY || v > 0);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of spec.series) {
    const n = Math.min(s.x.length, s.y.length);
    for (let i = 0; i < n; i++) {
      const x = s.x[i]!, y = s.y[i]!;
      if (!Number.isFinite(x) || !ok(y)) continue;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  for (const r of spec.refLines ?? []) {
    if (ok(r.y)) {
      y0 = Math.min(y0, r.y);
      y1 = Math.max(y1, r.y);
    }
  }
  const empty = !(x0 <= x1 && y0 <= y1);
  if (empty) [x0, x1, y0, y1] = [0, 1, logY ? 1 : 0, logY ? 10 : 1];
  const ax = linearAxis(x0, x1, 0);
  const ay = logY ? logAxis(y0, y1, 0.04) : linearAxis(y0, y1, 0.04);
  const px = (x: number) => L + ax.map(x) * pw;
  const py = (y: number) => T + ph - ay.map(y) * ph;

  const out: string[] = [];
  out.push(text(L, 20, spec.title, `class="title" font-size="14" font-weight="bold"`));
  out.push(
    `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="#fff" stroke="#999" ` +
      `stroke-width="0.8"/>`,
  );
  // Axes ticks and grid.
  for (const v of ay.ticks()) {
    const y = py(v);
    out.push(
      `<line x1="${L}" y1="${f1(y)}" x2="${L + pw}" y2="${f1(y)}" stroke="#e5e5e5" ` +
        `stroke-width="0.8"/>`,
    );
    out.push(text(L - 6, y + 4, formatNumber(v), `font-size="10" text-anchor="end"`));
  }
  for (const v of ax.ticks()) {
    const x = px(v);
    out.push(
      `<line x1="${f1(x)}" y1="${T + ph}" x2="${f1(x)}" y2="${T + ph + 4}" stroke="#999"/>`,
    );
    out.push(text(x, T + ph + 16, formatNumber(v), `font-size="10" text-anchor="middle"`));
  }
  if (spec.xLabel) {
    out.push(text(L + pw / 2, H - 6, spec.xLabel, `font-size="11" text-anchor="middle"`));
  }
  if (spec.yLabel) {
    out.push(
      `<text x="14" y="${f1(T + ph / 2)}" font-size="11" text-anchor="middle" ` +
        `transform="rotate(-90 14 ${f1(T + ph / 2)})">${escapeXml(spec.yLabel)}</text>`,
    );
  }
  if (empty) {
    out.push(text(
      L + pw / 2,
      T + ph / 2,
      "no data",
      `font-size="12" fill="#999" ` +
        `text-anchor="middle"`,
    ));
  }
  for (const r of spec.refLines ?? []) {
    if (!ok(r.y)) continue;
    const y = py(r.y);
    const c = r.color ?? "#555";
    out.push(
      `<line class="ref" x1="${L}" y1="${f1(y)}" x2="${L + pw}" y2="${f1(y)}" stroke="${
        escapeXml(c)
      }" stroke-dasharray="6 4" stroke-width="1"/>`,
    );
    out.push(
      text(L + 4, y - 4, r.label, `font-size="10" fill="${escapeXml(c)}"`),
    );
  }
  const max = spec.maxPoints ?? 1500;
  for (const s of spec.series) {
    const n = Math.min(s.x.length, s.y.length);
    const xs: number[] = [], ys: number[] = [];
    let firstBad = -1;
    for (let i = 0; i < n; i++) {
      const x = s.x[i]!, y = s.y[i]!;
      if (!Number.isFinite(x)) continue;
      if (!Number.isFinite(y)) {
        if (firstBad < 0) firstBad = i;
        continue;
      }
      if (!ok(y)) continue;
      xs.push(x);
      ys.push(y);
    }
    const [rx, ry] = reduce(xs, ys, max);
    const pts = rx.map((x, i) => `${f1(px(x))},${f1(py(ry[i]!))}`).join(" ");
    const c = escapeXml(s.color);
    out.push(
      `<polyline data-series="${escapeXml(s.id)}" points="${pts}" fill="none" stroke="${c}" ` +
        `stroke-width="${s.width ?? 1.5}" stroke-opacity="${s.opacity ?? 1}" ` +
        `stroke-linejoin="round"${s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : ""}/>`,
    );
    if (firstBad >= 0) {
      const x = s.x[firstBad]!;
      out.push(
        `<text class="nonfinite" x="${f1(px(x))}" y="${T + 12}" fill="${c}" font-size="14" ` +
          `text-anchor="middle">×<title>${escapeXml(s.id)}: ${
            escapeXml(String(s.y[firstBad]))
          } at x=${escapeXml(formatNumber(x))}</title></text>`,
      );
    }
  }
  if (hasLegend) {
    let y = T + 8;
    for (const e of spec.legend!) {
      const c = escapeXml(e.color);
      out.push(
        `<line x1="${L + pw + 12}" y1="${y}" x2="${L + pw + 36}" y2="${y}" stroke="${c}" ` +
          `stroke-width="2" stroke-opacity="${e.opacity ?? 1}"${
            e.dash ? ` stroke-dasharray="${escapeXml(e.dash)}"` : ""
          }/>`,
      );
      out.push(text(L + pw + 42, y + 4, e.label, `font-size="11"`));
      y += 16;
    }
  }
  return { width: W, height: H, body: out.join("\n") };
}

const VIRIDIS: readonly [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/**
 * Maps t in [0, 1] to a viridis-like colour.
 *
 * @param t position on the scale
 * @returns a `#rrggbb` colour
 */
export function viridis(t: number): string {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(u)), f = u - i;
  const a = VIRIDIS[i]!, b = VIRIDIS[i + 1]!;
  const h = (k: number) => Math.round(a[k]! + (b[k]! - a[k]!) * f).toString(16).padStart(2, "0");
  return `#${h(0)}${h(1)}${h(2)}`;
}

/**
 * Renders a heatmap (colour = log10 of the value by default; NaN/Inf cells
 * are red, non-positive cells on a log scale are black).
 *
 * @param spec rows, columns, values
 * @returns the panel
 */
export function heatmapPanel(spec: HeatmapSpec): Panel {
  const W = spec.width ?? 760;
  const logScale = spec.log ?? true;
  const rows = spec.rows, R = rows.length;
  const L = 110, Rm = 90, T = spec.note ? 48 : 34, B = 40;
  const cellH = R === 0 ? 0 : Math.max(4, Math.min(22, 260 / R));
  const ph = Math.max(cellH * R, 20);
  const H = T + ph + B;
  const pw = W - L - Rm;
  const out: string[] = [];
  out.push(text(L, 20, spec.title, `class="title" font-size="14" font-weight="bold"`));
  if (spec.note) out.push(text(L, 36, spec.note, `font-size="10" fill="#555"`));
  // Bin columns: mean of the (log) values, non-finite if any member is.
  const C = Math.min(spec.values.length, spec.cols.length);
  const maxCols = Math.max(1, spec.maxCols ?? 100);
  const nb = Math.min(C, maxCols);
  const tf = (v: number) => logScale ? (v > 0 ? Math.log10(v) : -Infinity) : v;
  const bins: { col: number; vals: number[] }[] = [];
  for (let b = 0; b < nb; b++) {
    const s = Math.floor((b * C) / nb), e = Math.max(s + 1, Math.floor(((b + 1) * C) / nb));
    const vals: number[] = [];
    for (let r = 0; r < R; r++) {
      let sum = 0, cnt = 0, bad = false, nonpos = false;
      for (let c = s; c < e; c++) {
        const v = spec.values[c]?.[r];
        if (v === undefined || !Number.isFinite(v)) bad = true;
        else {
          const t = tf(v);
          if (t === -Infinity) nonpos = true;
          else {
            sum += t;
            cnt++;
          }
        }
      }
      vals.push(bad ? NaN : cnt > 0 ? sum / cnt : nonpos ? -Infinity : NaN);
    }
    bins.push({ col: spec.cols[s]!, vals });
  }
  let lo = Infinity, hi = -Infinity;
  for (const b of bins) {
    for (const v of b.vals) {
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  if (!(lo <= hi)) [lo, hi] = [0, 1];
  if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
  const cw = nb > 0 ? pw / nb : pw;
  for (let b = 0; b < bins.length; b++) {
    const x = L + b * cw;
    for (let r = 0; r < R; r++) {
      const v = bins[b]!.vals[r]!;
      const fill = Number.isNaN(v) ? "#e41a1c" : v === -Infinity ? "#000" : viridis(
        (v - lo) / (hi - lo),
      );
      const shown = Number.isNaN(v)
        ? "non-finite"
        : v === -Infinity
        ? "≤ 0"
        : formatNumber(logScale ? Math.pow(10, v) : v);
      out.push(
        `<rect x="${f1(x)}" y="${f1(T + r * cellH)}" width="${f1(cw + 0.3)}" height="${
          f1(cellH + 0.3)
        }" fill="${fill}"><title>${escapeXml(`${rows[r]} @ ${bins[b]!.col}: ${shown}`)}</title>` +
          `</rect>`,
      );
    }
  }
  if (C === 0 || R === 0) {
    out.push(text(
      L + pw / 2,
      T + ph / 2 + 4,
      "no data",
      `font-size="12" fill="#999" ` +
        `text-anchor="middle"`,
    ));
  }
  out.push(
    `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#999" ` +
      `stroke-width="0.8"/>`,
  );
  const every = Math.max(1, Math.ceil(R / 24));
  for (let r = 0; r < R; r += every) {
    out.push(text(
      L - 6,
      T + (r + 0.5) * cellH + 3.5,
      rows[r]!,
      `font-size="10" ` +
        `text-anchor="end"`,
    ));
  }
  if (nb > 0) {
    const ticks = nb === 1 ? [0] : [0, Math.floor((nb - 1) / 2), nb - 1];
    for (const b of [...new Set(ticks)]) {
      out.push(text(
        L + (b + 0.5) * cw,
        T + ph + 14,
        formatNumber(bins[b]!.col),
        `font-size="10" ` +
          `text-anchor="middle"`,
      ));
    }
  }
  out.push(text(
    L + pw / 2,
    T + ph + 32,
    spec.colLabel ?? "step",
    `font-size="11" ` +
      `text-anchor="middle"`,
  ));
  out.push(
    `<text x="14" y="${f1(T + ph / 2)}" font-size="11" text-anchor="middle" ` +
      `transform="rotate(-90 14 ${f1(T + ph / 2)})">${escapeXml(spec.rowLabel ?? "layer")}</text>`,
  );
  // Colour bar.
  const bx = L + pw + 16, steps = 24, bh = Math.max(ph, 60) / steps;
  for (let i = 0; i < steps; i++) {
    out.push(
      `<rect x="${bx}" y="${f1(T + i * bh)}" width="12" height="${f1(bh + 0.3)}" fill="${
        viridis(1 - i / (steps - 1))
      }"/>`,
    );
  }
  const lab = (v: number) => formatNumber(logScale ? Math.pow(10, v) : v);
  out.push(text(bx + 16, T + 8, lab(hi), `font-size="10"`));
  out.push(text(bx + 16, T + Math.max(ph, 60), lab(lo), `font-size="10"`));
  return { width: W, height: Math.max(H, T + 60 + B), body: out.join("\n") };
}

/**
 * Renders a small table.
 *
 * @param spec header, rows, swatches
 * @returns the panel
 */
export function tablePanel(spec: TableSpec): Panel {
  const W = spec.width ?? 760;
  const rowH = 20, T = spec.title ? 30 : 8;
  const cols = spec.header.length;
  // Column widths follow the longest text in each column (≈6.5 px per character).
  const chars = spec.header.map((h, c) =>
    Math.max(h.length, ...spec.rows.map((r) => (r[c] ?? "").length)) + (c === 0 ? 3 : 0)
  );
  const need = chars.reduce((a, b) => a + b + 3, 0) * 6.5;
  const scale = need > W - 20 ? (W - 20) / need : 1;
  const starts: number[] = [];
  let acc = 10;
  for (const n of chars) {
    starts.push(acc);
    acc += (n + 3) * 6.5 * scale;
  }
  const colX = (c: number) => starts[c]!;
  const out: string[] = [];
  if (spec.title) {
    out.push(text(10, 20, spec.title, `class="title" font-size="14" font-weight="bold"`));
  }
  const y0 = T + 14;
  spec.header.forEach((h, c) => {
    out.push(text(colX(c) + (c === 0 ? 16 : 0), y0, h, `font-size="11" font-weight="bold"`));
  });
  out.push(
    `<line x1="10" y1="${y0 + 6}" x2="${W - 10}" y2="${y0 + 6}" stroke="#999" ` +
      `stroke-width="0.8"/>`,
  );
  spec.rows.forEach((row, r) => {
    const y = y0 + (r + 1) * rowH;
    const sw = spec.swatches?.[r];
    if (sw) {
      out.push(`<rect x="10" y="${y - 9}" width="10" height="10" fill="${escapeXml(sw)}"/>`);
    }
    row.slice(0, cols).forEach((cell, c) => {
      out.push(text(colX(c) + (c === 0 ? 16 : 0), y, cell, `font-size="11"`));
    });
  });
  return { width: W, height: y0 + (spec.rows.length + 1) * rowH, body: out.join("\n") };
}

/**
 * Wraps one panel as a standalone SVG document.
 *
 * @param p a panel
 * @returns SVG text
 */
export function panelSvg(p: Panel): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${p.width}" height="${p.height}" ` +
    `viewBox="0 0 ${p.width} ${p.height}" font-family="system-ui, sans-serif">\n` +
    `<rect width="${p.width}" height="${p.height}" fill="#fff"/>\n${p.body}\n</svg>`;
}

/**
 * Stacks panels vertically into one panel.
 *
 * @param panels panels, top to bottom
 * @param gap vertical space between them (default 12)
 * @returns the combined panel
 */
export function stackPanels(panels: readonly Panel[], gap = 12): Panel {
  let y = 0, w = 0;
  const parts: string[] = [];
  for (const p of panels) {
    parts.push(`<g transform="translate(0 ${y})">\n${p.body}\n</g>`);
    y += p.height + gap;
    w = Math.max(w, p.width);
  }
  return { width: w, height: Math.max(0, y - gap), body: parts.join("\n") };
}

/**
 * Renders a line chart as a standalone SVG document.
 *
 * @param spec the chart
 * @returns SVG text
 */
export function lineChartSvg(spec: LineChartSpec): string {
  return panelSvg(lineChartPanel(spec));
}

/**
 * Renders a heatmap as a standalone SVG document.
 *
 * @param spec the heatmap
 * @returns SVG text
 */
export function heatmapSvg(spec: HeatmapSpec): string {
  return panelSvg(heatmapPanel(spec));
}
