/**
 * Turns one `deno bench --json` run of bench/ into markdown tables: matmul GFLOP/s with
 * normix's ratio to each peer; the Pre-LN block forward and forward + backward in ms per pass
 * with dispatches; and the training step in ms per step, tokens/s and dispatches.
 *
 * ```sh
 * deno bench --json --allow-read --allow-env --allow-net=127.0.0.1 --allow-sys=loadavg bench/ \
 *   > /tmp/bench.json
 * deno run --allow-read bench/table.ts /tmp/bench.json     # or pipe the JSON on stdin
 * ```
 *
 * Times are deno bench's per-iteration averages; each iteration runs the number of products,
 * passes or steps written as `(xR)` in its name.
 *
 * @module
 */

/** One bench entry of `deno bench --json` (only the fields used here). */
export interface BenchEntry {
  /** the bench name */
  name: string;
  /** its group */
  group?: string | null;
  /** results; `ok` when it ran */
  results: { ok?: { avg: number; min: number; n: number } }[];
}

/** The top level of `deno bench --json`. */
export interface BenchRun {
  /** runtime string, e.g. "Deno/2.9.6 x86_64-unknown-linux-gnu" */
  runtime: string;
  /** CPU model */
  cpu: string;
  /** all benches */
  benches: BenchEntry[];
}

const fmt = (v: number, digits = 2): string => (Number.isFinite(v) ? v.toFixed(digits) : "—");

/**
 * Renders the markdown tables for a run.
 *
 * @param run the parsed JSON of `deno bench --json`
 * @returns markdown text
 */
export function renderTables(run: BenchRun): string {
  const avgNs = (b: BenchEntry) => b.results[0]?.ok?.avg ?? NaN;
  const L: string[] = [`Deno: ${run.runtime}; CPU: ${run.cpu}`, ""];

  // matmul: GFLOP/s per participant and size
  const mm = new Map<number, Map<string, number>>();
  const mmNames = new Set<string>();
  for (const b of run.benches) {
    const m = /^matmul N=(\d+) (\S+) \(x(\d+)\)$/.exec(b.name);
    if (!m) continue;
    const n = Number(m[1]), who = m[2]!, reps = Number(m[3]);
    const gflops = (2 * n ** 3 * reps) / avgNs(b);
    if (!mm.has(n)) mm.set(n, new Map());
    mm.get(n)!.set(who, gflops);
    mmNames.add(who);
  }
  if (mm.size > 0) {
    const peers = [...mmNames].filter((w) => w !== "normix");
    L.push("fp32 matmul N×N·N×N, GFLOP/s (higher is better):", "");
    L.push(
      `| N | normix | ${peers.join(" | ")} | ${peers.map((p) => `normix / ${p}`).join(" | ")} |`,
    );
    L.push(`|---:|---:|${peers.map(() => "---:").join("|")}|${peers.map(() => "---:").join("|")}|`);
    for (const [n, row] of [...mm].sort((a, b) => a[0] - b[0])) {
      const base = row.get("normix") ?? NaN;
      L.push(
        `| ${n} | ${fmt(base)} | ${peers.map((p) => fmt(row.get(p) ?? NaN)).join(" | ")} | ${
          peers.map((p) => `${fmt(base / (row.get(p) ?? NaN))}×`).join(" | ")
        } |`,
      );
    }
    L.push("");
  }

  // block forward
  const rows: { who: string; ms: number; dispatches: number }[] = [];
  for (const b of run.benches) {
    const m = /^block fwd (.+) \(x(\d+), (\d+) dispatches\)$/.exec(b.name);
    if (!m) continue;
    rows.push({ who: m[1]!, ms: avgNs(b) / 1e6 / Number(m[2]), dispatches: Number(m[3]) });
  }
  if (rows.length > 0) {
    const base = rows.find((r) => r.who === "normix fused")?.ms ?? NaN;
    L.push("Pre-LN block forward (B 4, T 128, d 256, 4 heads, FFN 1024), ms per forward:", "");
    L.push("| participant | ms / forward | dispatches / forward | time ÷ normix fused |");
    L.push("|---|---:|---:|---:|");
    for (const r of rows) {
      L.push(`| ${r.who} | ${fmt(r.ms, 1)} | ${r.dispatches} | ${fmt(r.ms / base)}× |`);
    }
    L.push("");
  }
  // block forward + backward
  const grad: { who: string; ms: number; dispatches: number }[] = [];
  for (const b of run.benches) {
    const m = /^block fwd\+bwd (.+) \(x(\d+), (\d+) dispatches\)$/.exec(b.name);
    if (!m) continue;
    grad.push({ who: m[1]!, ms: avgNs(b) / 1e6 / Number(m[2]), dispatches: Number(m[3]) });
  }
  if (grad.length > 0) {
    const base = grad.find((r) => r.who === "normix fused")?.ms ?? NaN;
    L.push(
      "Pre-LN block forward + backward (loss and gradients of all 16 block parameters), " +
        "ms per pass:",
      "",
    );
    L.push("| participant | ms / pass | dispatches / pass | time ÷ normix fused |");
    L.push("|---|---:|---:|---:|");
    for (const r of grad) {
      L.push(`| ${r.who} | ${fmt(r.ms, 1)} | ${r.dispatches} | ${fmt(r.ms / base)}× |`);
    }
    L.push("");
  }

  // training step
  const steps: { who: string; ms: number; dispatches: number; tokens: number }[] = [];
  for (const b of run.benches) {
    const m = /^train step (.+) \(x(\d+), (\d+) dispatches, (\d+) tokens\)$/.exec(b.name);
    if (!m) continue;
    steps.push({
      who: m[1]!,
      ms: avgNs(b) / 1e6 / Number(m[2]),
      dispatches: Number(m[3]),
      tokens: Number(m[4]),
    });
  }
  if (steps.length > 0) {
    const base = steps.find((r) => r.who === "normix fused")?.ms ?? NaN;
    L.push(
      "One training step of the example's Pre-LN model (forward, backward, clipping, AdamW), " +
        "ms per step:",
      "",
    );
    L.push("| participant | ms / step | tokens / s | dispatches / step | time ÷ normix fused |");
    L.push("|---|---:|---:|---:|---:|");
    for (const r of steps) {
      L.push(
        `| ${r.who} | ${fmt(r.ms, 1)} | ${fmt((r.tokens * 1000) / r.ms, 0)} | ${r.dispatches} | ${
          fmt(r.ms / base)
        }× |`,
      );
    }
    L.push("");
  }
  if (L.length === 2) L.push("(no matmul, block or train-step benches in this run)");
  return L.join("\n");
}

if (import.meta.main) {
  const path = Deno.args[0];
  const text = path
    ? await Deno.readTextFile(path)
    : await new Response(Deno.stdin.readable).text();
  const start = text.indexOf("{");
  if (start < 0) {
    throw new TypeError(
      `Cannot render bench tables: no JSON in ${path ?? "stdin"}; ` +
        `run deno bench with --json and pass its output`,
    );
  }
  console.log(renderTables(JSON.parse(text.slice(start)) as BenchRun));
}
