import assert from "node:assert/strict";
import fc from "fast-check";
import {
  createTrainingLog,
  displayReport,
  escapeXml,
  formatCount,
  formatDuration,
  formatProgress,
  heatmapSvg,
  lineChartSvg,
  recordLayers,
  recordTrain,
  recordVal,
  renderReportHtml,
  renderReportSvg,
  smoothEma,
  summarizeLog,
  type TrainingLog,
  variantLog,
} from "../lib/report/mod.ts";
import { fcParams } from "./_util.ts";

/**
 * A small XML well-formedness check: one root element, properly nested and
 * closed tags, quoted unique attributes, no raw `<` or stray `&` in text or
 * attribute values. Returns the element names in document order.
 */
function checkXml(xml: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const ent = /&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/y;
  const checkText = (s: string, where: string) => {
    for (let i = 0; i < s.length; i++) {
      if (s[i] === "<") throw new Error(`raw < in ${where}`);
      if (s[i] === "&") {
        ent.lastIndex = i;
        if (!ent.test(s)) throw new Error(`bad entity in ${where}: ${s.slice(i, i + 10)}`);
      }
      const c = s.charCodeAt(i);
      if (c < 0x20 && c !== 0x9 && c !== 0xa && c !== 0xd) {
        throw new Error(`control character ${c} in ${where}`);
      }
    }
  };
  let i = 0, roots = 0;
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const textPart = xml.slice(i, lt < 0 ? xml.length : lt);
    if (stack.length === 0 && textPart.trim() !== "") throw new Error("text outside the root");
    checkText(textPart, "text");
    if (lt < 0) break;
    const gt = xml.indexOf(">", lt);
    if (gt < 0) throw new Error("unclosed tag");
    const tag = xml.slice(lt + 1, gt);
    if (tag.startsWith("/")) {
      const name = tag.slice(1).trim();
      if (stack.pop() !== name) throw new Error(`mismatched </${name}>`);
    } else {
      const selfClose = tag.endsWith("/");
      const body = selfClose ? tag.slice(0, -1) : tag;
      const m = /^([A-Za-z_][\w:.-]*)/.exec(body);
      if (!m) throw new Error(`bad tag <${tag.slice(0, 20)}>`);
      const name = m[1]!;
      if (stack.length === 0 && ++roots > 1) throw new Error("more than one root");
      const attrRe = /\s+([A-Za-z_][\w:.-]*)="([^"]*)"/y;
      let j = name.length;
      const seen = new Set<string>();
      while (j < body.length) {
        if (/^\s*$/.test(body.slice(j))) break;
        attrRe.lastIndex = j;
        const a = attrRe.exec(body);
        if (!a) throw new Error(`bad attribute in <${name}>: ${body.slice(j, j + 30)}`);
        if (seen.has(a[1]!)) throw new Error(`duplicate attribute ${a[1]} in <${name}>`);
        seen.add(a[1]!);
        checkText(a[2]!, `attribute ${a[1]}`);
        j = attrRe.lastIndex;
      }
      names.push(name);
      if (!selfClose) stack.push(name);
    }
    i = gt + 1;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join(" ")}>`);
  if (roots !== 1) throw new Error("no root element");
  return names;
}

function polylines(svg: string): { id: string; points: string }[] {
  return [...svg.matchAll(/<polyline data-series="([^"]*)" points="([^"]*)"/g)].map((m) => ({
    id: m[1]!,
    points: m[2]!,
  }));
}

function sampleLog(): TrainingLog {
  const log = createTrainingLog({ title: "pre vs post", optimum: 1.1, meta: { seed: 1 } });
  for (const [vi, v] of ["pre_ln", "post_ln"].entries()) {
    for (let t = 0; t < 300; t++) {
      const loss = vi === 1 && t >= 200 ? NaN : 1.1 + 2 * Math.exp(-t / 80) + 0.05 * Math.sin(t);
      recordTrain(log, v, { step: t, loss, tokensPerSec: 1000 + t, lr: 1e-3 });
      if (t % 50 === 0) {
        recordVal(log, v, t, 1.15 + 2 * Math.exp(-t / 80));
        recordLayers(log, v, "gradNorm", t, [1, 0.5, vi === 1 && t >= 200 ? Infinity : 0.1]);
        recordLayers(log, v, "updateRatio", t, [1e-3, 2e-3, 0]);
        recordLayers(log, v, "actRms", t, [1, 2, 3, 4]);
        recordLayers(log, v, "attnEntropy", t, [2, 1.5, 1]);
      }
    }
  }
  return log;
}

Deno.test("checkXml() itself rejects malformed markup", () => {
  assert.deepEqual(checkXml('<a x="1"><b/>t &amp; u</a>'), ["a", "b"]);
  for (
    const bad of ["<a><b></a></b>", "<a>", '<a x="1" x="2"/>', "<a>&</a>", "<a/><b/>", "<a x=1/>"]
  ) {
    assert.throws(() => checkXml(bad), Error, bad);
  }
});

Deno.test("renderReportSvg() is well-formed with one polyline per loss series", () => {
  const log = sampleLog();
  const svg = renderReportSvg(log);
  const names = checkXml(svg);
  assert.equal(names[0], "svg");
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  const ids = polylines(svg).map((p) => p.id);
  for (const v of ["pre_ln", "post_ln"]) {
    for (const s of ["train", "train-ema", "val", "lr", "throughput", "actRms", "attnEntropy"]) {
      assert.equal(ids.filter((x) => x === `${v}/${s}`).length, 1, `${v}/${s}`);
    }
  }
  assert.equal(ids.length, 14);
  // No NaN reaches the coordinates; the diverged run is marked.
  for (const p of polylines(svg)) assert.doesNotMatch(p.points, /NaN|Infinity/);
  assert.match(svg, /class="nonfinite"[^>]*>×<title>post_ln\/train: NaN at x=200<\/title>/);
  assert.match(svg, /optimum 1\.1/);
  // Heatmaps: one per variant per quantity, infinite cells drawn red.
  assert.equal((svg.match(/Gradient norm per layer: /g) ?? []).length, 2);
  assert.match(svg, /fill="#e41a1c"><title>2 @ 2\d\d: non-finite/);
  assert.match(svg, /diverged @ 200/);
});

Deno.test("renderReportSvg() handles empty logs, empty and all-NaN series", () => {
  const empty = createTrainingLog();
  const s0 = renderReportSvg(empty);
  checkXml(s0);
  assert.equal(polylines(s0).length, 0);
  assert.match(s0, /no data/);

  const log = createTrainingLog({ optimum: NaN });
  variantLog(log, "nothing");
  recordTrain(log, "nan", { step: 0, loss: NaN });
  recordTrain(log, "nan", { step: 1, loss: Infinity });
  recordLayers(log, "nan", "gradNorm", 0, [NaN, NaN]);
  recordTrain(log, "one", { step: 5, loss: 2 });
  const svg = renderReportSvg(log);
  checkXml(svg);
  const lines = polylines(svg);
  assert.equal(lines.filter((p) => p.id.endsWith("/train")).length, 3);
  assert.equal(lines.find((p) => p.id === "nan/train")!.points, "");
  assert.equal(lines.find((p) => p.id === "nothing/train-ema")!.points, "");
  assert.equal(lines.find((p) => p.id === "one/train")!.points.split(" ").length, 1);
  for (const p of lines) assert.doesNotMatch(p.points, /NaN|Infinity/);
  checkXml(renderReportHtml(log).match(/<svg[\s\S]*?<\/svg>/)![0]);
});

Deno.test("report renderers escape hostile names and stay well-formed (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ maxLength: 12 }), { minLength: 1, maxLength: 3 }),
      fc.array(fc.oneof(fc.double(), fc.constantFrom(NaN, 0, -1, Infinity)), { maxLength: 30 }),
      (names, losses) => {
        const log = createTrainingLog({ title: names.join("<&>") });
        for (const n of names) {
          losses.forEach((l, t) => recordTrain(log, n, { step: t, loss: l }));
          recordLayers(log, n, "gradNorm", 0, losses.slice(0, 3));
        }
        log.meta["k<"] = names[0]!;
        const svg = renderReportSvg(log);
        checkXml(svg);
        for (const p of polylines(svg)) assert.doesNotMatch(p.points, /NaN|Infinity/);
        const html = renderReportHtml(log);
        for (const m of html.matchAll(/<svg[\s\S]*?<\/svg>/g)) checkXml(m[0]);
        const json = html.match(
          /<script type="application\/json" id="normix-training-log">([\s\S]*?)<\/script>/,
        )!;
        assert.equal(JSON.parse(json[1]!).title, log.title);
        assert.equal(html.match(/<\/script>/g)!.length, 1);
      },
    ),
    fcParams(60),
  );
  assert.equal(escapeXml("a<b>&\"'\u0001"), "a&lt;b&gt;&amp;&quot;&apos;\ufffd");
});

Deno.test("renderReportHtml() embeds the SVG panels, a table and the JSON series", () => {
  const log = sampleLog();
  const html = renderReportHtml(log);
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<td><span class="sw" style="background:#4e79a7"><\/span>pre_ln<\/td>/);
  assert.ok((html.match(/<figure data-panel=/g) ?? []).length >= 7);
  const json = html.match(/id="normix-training-log">([\s\S]*?)<\/script>/)![1]!;
  const back = JSON.parse(json);
  assert.equal(back.variants.length, 2);
  assert.equal(back.variants[1].trainLoss[250], "NaN");
  assert.equal(back.variants[0].trainLoss[3], log.variants[0]!.trainLoss[3]);
  const bundle = displayReport(log)[Symbol.for("Jupyter.display")]!();
  assert.equal(bundle["text/html"], html);
  assert.match(bundle["text/plain"]!, /^pre_ln: step 299, train 1\.\d+/);
});

Deno.test("lineChartSvg() and heatmapSvg() bound their output size and skip unplottable values", () => {
  const n = 20_000;
  const x = Array.from({ length: n }, (_, i) => i);
  const y = x.map((i) => 1 + Math.abs(Math.sin(i / 100)));
  y[10] = -1; // not plottable on a log axis
  const svg = lineChartSvg({
    title: "t",
    logY: true,
    series: [{ id: "s", x, y, color: "#000" }],
    maxPoints: 500,
  });
  checkXml(svg);
  const pts = polylines(svg)[0]!.points.split(" ");
  assert.ok(pts.length <= 500 && pts.length > 200, `${pts.length} points`);
  const hm = heatmapSvg({
    title: "h",
    rows: ["a", "b"],
    cols: x.slice(0, 1000),
    values: x.slice(0, 1000).map((i) => [i + 1, i === 500 ? NaN : 1]),
    maxCols: 50,
  });
  checkXml(hm);
  assert.equal((hm.match(/<rect [^>]*><title>/g) ?? []).length, 100);
  // Extreme magnitudes and degenerate ranges neither hang nor produce NaN coordinates.
  for (const ys of [[1e308, -1e308], [5e-324, 1e308], [1e300, 1e300], [7, 7], [0, 0]]) {
    for (const logY of [false, true]) {
      const c = lineChartSvg({
        title: "x",
        logY,
        series: [{ id: "e", x: [0, 1e308], y: ys, color: "#000" }],
      });
      checkXml(c);
      assert.doesNotMatch(c, /NaN|Infinity/);
    }
  }
  assert.equal((hm.match(/non-finite/g) ?? []).length, 1);
});

Deno.test("summarizeLog() and smoothEma() compute the table values", () => {
  const s = summarizeLog(sampleLog());
  assert.equal(s[0]!.variant, "pre_ln");
  assert.equal(s[0]!.divergedAt, undefined);
  assert.equal(s[1]!.divergedAt, 200);
  assert.ok(Math.abs(s[0]!.gap - (s[0]!.bestVal - 1.1)) < 1e-12);
  assert.equal(s[0]!.tokensPerSec, 1149.5);
  assert.deepEqual(smoothEma([2, 2, 2]), [2, 2, 2]); // bias-corrected
  const e = smoothEma([1, NaN, 3], 0.5);
  assert.equal(e[0], 1);
  assert.ok(Number.isNaN(e[1]!));
  assert.ok(Math.abs(e[2]! - (0.25 * 1 + 0.5 * 3) / 0.75) < 1e-12);
});

Deno.test("formatProgress() formats a progress line with tokens/s and ETA", () => {
  assert.equal(
    formatProgress({
      step: 250,
      total: 1000,
      loss: 2.3104,
      valLoss: 2.4,
      tokensPerSec: 15300,
      elapsedSec: 12,
      label: "pre_ln",
    }),
    "pre_ln [#####---------------]  250/1000  25% loss 2.310 val 2.400 15.3k tok/s 12s ETA 36s",
  );
  assert.equal(formatProgress({ step: 3, loss: NaN }), "step 3 loss NaN");
  assert.equal(formatProgress({ step: 5, total: 5, elapsedSec: 3725 }).slice(-12), "5 100% 1h02m");
  assert.equal(formatDuration(187), "3m07s");
  assert.equal(formatCount(950), "950");
  assert.equal(formatCount(2_100_000), "2.10M");
  assert.equal(formatCount(12.5), "12.5");
  assert.throws(
    () => recordLayers(createTrainingLog(), "v", "gradNorm", 0, [1], ["a", "b"]),
    /got 1 values, the log has 2 layers/,
  );
});
