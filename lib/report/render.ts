/**
 * The training report: a summary table, loss curves (train raw + EMA and
 * validation, log-y, one colour per variant, the optimum as a reference
 * line), learning rate and throughput, layer × step heatmaps of gradient
 * norms and update/weight ratios, and activation RMS / attention entropy
 * per depth. Rendered as one SVG, or as a self-contained HTML page that
 * embeds the SVGs and the log as JSON. Pure: returns text.
 *
 * @example
 * ```ts
 * const html = renderReportHtml(log, { optimum: markovOptimalLoss(chain, 64) });
 * await saveReport("report.html", log); // lib/io/fs.ts: atomic write
 * ```
 *
 * @module
 */

import type { LayerSeries, TrainingLog, VariantLog } from "./log.ts";
import { smoothEma } from "./log.ts";
import {
  type ChartSeries,
  escapeXml,
  formatNumber,
  heatmapPanel,
  lineChartPanel,
  PALETTE,
  type Panel,
  panelSvg,
  stackPanels,
  tablePanel,
} from "./svg.ts";
import { formatCount } from "./progress.ts";

/** Options of the report renderers. */
export interface ReportOptions {
  /** Title (default: the log's). */
  readonly title?: string;
  /** Best achievable loss (default: the log's `optimum`). */
  readonly optimum?: number;
  /** EMA smoothing of the training loss in (0, 1) (default 0.9). */
  readonly emaAlpha?: number;
  /** Panel width in px (default 760). */
  readonly width?: number;
}

/** One row of the summary table. */
export interface VariantSummary {
  /** Variant name. */
  readonly variant: string;
  /** Last logged step (NaN when none). */
  readonly lastStep: number;
  /** Last finite EMA of the training loss (NaN when none). */
  readonly finalTrain: number;
  /** Lowest finite validation loss (NaN when none). */
  readonly bestVal: number;
  /** Best val loss (or final train loss) minus the optimum (NaN without an optimum). */
  readonly gap: number;
  /** Median throughput (NaN when not logged). */
  readonly tokensPerSec: number;
  /** Step of the first non-finite training loss, if any. */
  readonly divergedAt?: number;
}

function lastFinite(xs: readonly number[]): number {
  for (let i = xs.length - 1; i >= 0; i--) if (Number.isFinite(xs[i]!)) return xs[i]!;
  return NaN;
}

function median(xs: readonly number[]): number {
  const f = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (f.length === 0) return NaN;
  const m = f.length >> 1;
  return f.length % 2 ? f[m]! : (f[m - 1]! + f[m]!) / 2;
}

/**
 * Summarises each variant of a log (the report's table).
 *
 * @param log the training log
 * @param options optimum and EMA smoothing
 * @returns one summary per variant
 */
export function summarizeLog(log: TrainingLog, options: ReportOptions = {}): VariantSummary[] {
  const opt = options.optimum ?? log.optimum;
  return log.variants.map((v) => {
    const ema = smoothEma(v.trainLoss, options.emaAlpha ?? 0.9);
    const finalTrain = lastFinite(ema);
    let bestVal = NaN;
    for (const x of v.valLoss) if (Number.isFinite(x) && !(x >= bestVal)) bestVal = x;
    const ref = Number.isFinite(bestVal) ? bestVal : finalTrain;
    const bad = v.trainLoss.findIndex((x) => !Number.isFinite(x));
    return {
      variant: v.variant,
      lastStep: v.steps.length > 0 ? v.steps[v.steps.length - 1]! : NaN,
      finalTrain,
      bestVal,
      gap: opt !== undefined && Number.isFinite(opt) ? ref - opt : NaN,
      tokensPerSec: median(v.tokensPerSec),
      ...(bad >= 0 ? { divergedAt: v.steps[bad] ?? bad } : {}),
    };
  });
}

function colorOf(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

function cell(v: number, digits = 4): string {
  return Number.isFinite(v) ? formatNumber(Number(v.toPrecision(digits))) : "–";
}

function summaryRows(log: TrainingLog, options: ReportOptions): string[][] {
  return summarizeLog(log, options).map((s) => [
    s.variant,
    Number.isFinite(s.lastStep) ? String(s.lastStep) : "–",
    cell(s.finalTrain),
    cell(s.bestVal),
    cell(s.gap, 3),
    Number.isFinite(s.tokensPerSec) ? formatCount(s.tokensPerSec) : "–",
    s.divergedAt !== undefined ? `diverged @ ${s.divergedAt}` : "ok",
  ]);
}

const TABLE_HEADER = [
  "variant",
  "steps",
  "train (EMA)",
  "best val",
  "gap to optimum",
  "tok/s",
  "status",
];

function finalRow(s: LayerSeries): number[] | undefined {
  return s.values.length > 0 ? s.values[s.values.length - 1] : undefined;
}

/**
 * Builds the report's panels, top to bottom (table, loss, learning rate,
 * throughput, heatmaps, per-depth charts). Panels for quantities nobody
 * logged are left out; the table and loss chart are always there.
 *
 * @param log the training log
 * @param options title, optimum, smoothing, width
 * @returns the panels with a short name each
 */
export function reportPanels(
  log: TrainingLog,
  options: ReportOptions = {},
): { name: string; panel: Panel }[] {
  const width = options.width ?? 760;
  const opt = options.optimum ?? log.optimum;
  const alpha = options.emaAlpha ?? 0.9;
  const vs = log.variants;
  const out: { name: string; panel: Panel }[] = [];
  out.push({
    name: "summary",
    panel: tablePanel({
      title: options.title ?? log.title,
      header: TABLE_HEADER,
      rows: summaryRows(log, options),
      swatches: vs.map((_, i) => colorOf(i)),
      width,
    }),
  });

  // Loss: raw faint, EMA solid, validation dashed.
  const series = vs.flatMap((v, i) => {
    const c = colorOf(i);
    const s: ChartSeries[] = [
      { id: `${v.variant}/train`, x: v.steps, y: v.trainLoss, color: c, opacity: 0.25, width: 1 },
      { id: `${v.variant}/train-ema`, x: v.steps, y: smoothEma(v.trainLoss, alpha), color: c },
    ];
    if (v.valSteps.length > 0) {
      s.push(
        {
          id: `${v.variant}/val`,
          x: v.valSteps,
          y: v.valLoss,
          color: c,
          width: 2,
          dash: "6 3",
        } as typeof s[number],
      );
    }
    return s;
  });
  const legend = [
    ...vs.map((v, i) => ({ label: v.variant, color: colorOf(i) })),
    { label: "train (raw)", color: "#333", opacity: 0.25 },
    { label: "train (EMA)", color: "#333" },
    { label: "validation", color: "#333", dash: "6 3" },
  ];
  out.push({
    name: "loss",
    panel: lineChartPanel({
      title: "Loss (nats/token, log scale)",
      xLabel: "step",
      yLabel: "loss",
      logY: true,
      width,
      series,
      legend,
      refLines: opt !== undefined && Number.isFinite(opt)
        ? [{ y: opt, label: `optimum ${formatNumber(opt)}` }]
        : [],
    }),
  });

  const simple = (
    name: string,
    title: string,
    yLabel: string,
    pick: (v: VariantLog) => number[],
    logY: boolean,
  ) => {
    const with_ = vs.map((v, i) => ({ v, i })).filter(({ v }) => pick(v).length > 0);
    if (with_.length === 0) return;
    out.push({
      name,
      panel: lineChartPanel({
        title,
        xLabel: "step",
        yLabel,
        logY,
        width,
        height: 220,
        series: with_.map(({ v, i }) => ({
          id: `${v.variant}/${name}`,
          x: v.steps.slice(0, pick(v).length),
          y: pick(v),
          color: colorOf(i),
        })),
        legend: with_.map(({ v, i }) => ({ label: v.variant, color: colorOf(i) })),
      }),
    });
  };
  simple("lr", "Learning rate", "lr", (v) => v.lr, false);
  simple("throughput", "Throughput (tokens/s)", "tok/s", (v) => v.tokensPerSec, false);

  const heat = (
    name: string,
    title: string,
    note: string,
    pick: (v: VariantLog) => LayerSeries,
  ) => {
    for (const v of vs) {
      const s = pick(v);
      if (s.values.length === 0) continue;
      out.push({
        name: `${name}:${v.variant}`,
        panel: heatmapPanel({
          title: `${title}: ${v.variant}`,
          note,
          rows: s.layers,
          cols: s.steps,
          values: s.values,
          width,
        }),
      });
    }
  };
  heat(
    "gradNorm",
    "Gradient norm per layer",
    "colour: log10 ‖g‖; red = NaN/Inf",
    (v) => v.gradNorm,
  );
  heat(
    "updateRatio",
    "Update/weight ratio per layer",
    "colour: log10 ‖ΔW‖/‖W‖ (≈1e-3 is typical); red = NaN/Inf",
    (v) => v.updateRatio,
  );

  const depth = (
    name: string,
    title: string,
    yLabel: string,
    pick: (v: VariantLog) => LayerSeries,
    logY: boolean,
  ) => {
    const with_ = vs.map((v, i) => ({ v, i, row: finalRow(pick(v)) })).filter((x) => x.row);
    if (with_.length === 0) return;
    out.push({
      name,
      panel: lineChartPanel({
        title,
        xLabel: "depth (layer index)",
        yLabel,
        logY,
        width,
        height: 240,
        series: with_.map(({ v, i, row }) => ({
          id: `${v.variant}/${name}`,
          x: row!.map((_, k) => k),
          y: row!,
          color: colorOf(i),
          width: 2,
        })),
        legend: with_.map(({ v, i }) => ({ label: v.variant, color: colorOf(i) })),
      }),
    });
  };
  depth("actRms", "Activation RMS per depth (last record)", "RMS", (v) => v.actRms, true);
  depth(
    "attnEntropy",
    "Attention entropy per layer (last record)",
    "nats",
    (v) => v.attnEntropy,
    false,
  );
  return out;
}

/**
 * Renders the whole report as one standalone SVG.
 *
 * @param log the training log
 * @param options title, optimum, smoothing, width
 * @returns SVG text
 */
export function renderReportSvg(log: TrainingLog, options: ReportOptions = {}): string {
  return panelSvg(stackPanels(reportPanels(log, options).map((p) => p.panel), 16));
}

/** JSON with non-finite numbers kept as strings ("NaN", "Infinity") and `<` escaped for HTML. */
function jsonForHtml(v: unknown): string {
  return JSON.stringify(v, (_k, x) => typeof x === "number" && !Number.isFinite(x) ? String(x) : x)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function escapeHtml(s: string): string {
  return escapeXml(s);
}

/**
 * Renders the report as one self-contained HTML page: a table, each chart
 * as inline SVG, and the full log as JSON in
 * `<script type="application/json" id="normix-training-log">` (non-finite
 * numbers as the strings "NaN"/"Infinity").
 *
 * @param log the training log
 * @param options title, optimum, smoothing, width
 * @returns HTML text
 */
export function renderReportHtml(log: TrainingLog, options: ReportOptions = {}): string {
  const title = options.title ?? log.title;
  const sums = summaryRows(log, options);
  const rows = sums.map((r, i) =>
    `<tr><td><span class="sw" style="background:${colorOf(i)}"></span>${escapeHtml(r[0]!)}</td>` +
    r.slice(1).map((c) => `<td>${escapeHtml(c)}</td>`).join("") + `</tr>`
  ).join("\n");
  const meta = Object.entries(log.meta ?? {}).map(([k, v]) =>
    `<li><b>${escapeHtml(k)}</b>: ${escapeHtml(String(v))}</li>`
  ).join("");
  const figures = reportPanels(log, options).slice(1).map((p) =>
    `<figure data-panel="${escapeHtml(p.name)}">${panelSvg(p.panel)}</figure>`
  ).join("\n");
  const opt = options.optimum ?? log.optimum;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
.sw { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
figure { margin: 8px 0; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${meta ? `<ul class="meta">${meta}</ul>` : ""}
${
    opt !== undefined && Number.isFinite(opt)
      ? `<p>Optimum (best achievable loss): ${escapeHtml(formatNumber(opt))} nats/token.</p>`
      : ""
  }
<table>
<thead><tr>${TABLE_HEADER.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
${figures}
<script type="application/json" id="normix-training-log">${jsonForHtml(log)}</script>
</body>
</html>
`;
}

/** An object Deno's Jupyter kernel displays as a rich HTML report. */
export interface ReportDisplay {
  /**
   * The MIME bundle (`Symbol.for("Jupyter.display")` is `Deno.jupyter.$display`).
   *
   * @returns `{"text/html": ..., "text/plain": ...}`
   */
  [key: symbol]: () => Record<string, string>;
}

/**
 * Wraps a log so that a `deno jupyter` notebook cell shows it as the HTML
 * report (make it the cell's last expression).
 *
 * @param log the training log
 * @param options title, optimum, smoothing, width
 * @returns a displayable object
 */
export function displayReport(log: TrainingLog, options: ReportOptions = {}): ReportDisplay {
  return {
    [Symbol.for("Jupyter.display")]: () => ({
      "text/html": renderReportHtml(log, options),
      "text/plain": summarizeLog(log, options).map((s) =>
        `${s.variant}: step ${s.lastStep}, train ${formatNumber(s.finalTrain)}, ` +
        `best val ${formatNumber(s.bestVal)}`
      ).join("\n"),
    }),
  };
}
