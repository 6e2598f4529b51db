/**
 * Terminal progress lines (pure formatting; the caller writes them, e.g.
 * to stderr with a leading `\r`).
 *
 * @example
 * ```ts
 * const line = formatProgress({ step: 250, total: 1000, loss: 2.31, tokensPerSec: 15300,
 *   elapsedSec: 12 });
 * // "[######--------------]  250/1000  25% loss 2.310 15.3k tok/s 12s ETA 36s"
 * ```
 *
 * @module
 */

/** What a progress line shows. */
export interface ProgressState {
  /** Steps done. */
  readonly step: number;
  /** Total steps (0 or absent: no bar, no ETA). */
  readonly total?: number;
  /** Current training loss. */
  readonly loss?: number;
  /** Latest validation loss. */
  readonly valLoss?: number;
  /** Throughput. */
  readonly tokensPerSec?: number;
  /** Seconds since the start. */
  readonly elapsedSec?: number;
  /** A label shown first (e.g. the variant). */
  readonly label?: string;
  /** Bar width in characters (default 20). */
  readonly barWidth?: number;
}

/**
 * Formats a count with an SI suffix: 950, 15.3k, 2.10M.
 *
 * @param n a number
 * @returns a short text
 */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a < 1000) return a >= 100 || Number.isInteger(n) ? n.toFixed(0) : n.toPrecision(3);
  for (const [d, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]] as const) {
    if (a >= d) return (n / d).toPrecision(3) + s;
  }
  return String(n);
}

/**
 * Formats seconds as `45s`, `3m07s` or `2h05m`.
 *
 * @param sec seconds
 * @returns a short text (`?` when not finite or negative)
 */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "?";
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function fmtLoss(v: number): string {
  return Number.isFinite(v) ? v.toFixed(3) : String(v);
}

/**
 * Formats one progress line: label, bar, step/total, percent, loss, val
 * loss, tokens/s, elapsed time and ETA. Missing fields are left out; NaN
 * loss prints as `NaN`.
 *
 * @param p the state
 * @returns one line without a newline
 */
export function formatProgress(p: ProgressState): string {
  const parts: string[] = [];
  if (p.label) parts.push(p.label);
  const total = p.total ?? 0;
  if (total > 0) {
    const frac = Math.min(1, Math.max(0, p.step / total));
    const w = Math.max(1, Math.floor(p.barWidth ?? 20));
    const full = Math.floor(frac * w);
    parts.push(`[${"#".repeat(full)}${"-".repeat(w - full)}]`);
    const digits = String(total).length;
    parts.push(`${String(p.step).padStart(digits)}/${total}`);
    parts.push(`${String(Math.floor(frac * 100)).padStart(3)}%`);
  } else {
    parts.push(`step ${p.step}`);
  }
  if (p.loss !== undefined) parts.push(`loss ${fmtLoss(p.loss)}`);
  if (p.valLoss !== undefined) parts.push(`val ${fmtLoss(p.valLoss)}`);
  if (p.tokensPerSec !== undefined) parts.push(`${formatCount(p.tokensPerSec)} tok/s`);
  if (p.elapsedSec !== undefined) {
    parts.push(formatDuration(p.elapsedSec));
    if (total > 0 && p.step > 0 && p.step < total) {
      parts.push(`ETA ${formatDuration((p.elapsedSec / p.step) * (total - p.step))}`);
    }
  }
  return parts.join(" ");
}
