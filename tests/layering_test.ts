/**
 * Layering rules of the library, checked on the source text:
 *
 * - library code (mod.ts, lib/, kernels/) imports only relative `.ts` files
 *   inside the repository: no bare, `npm:`, `jsr:`, `node:` or `http(s):`
 *   specifiers, no computed dynamic imports, no `require`;
 * - lib/ imports nothing from kernels/;
 * - lib/ holds no WGSL text and no `navigator.gpu`;
 * - lib/ uses `Deno.*` only under lib/io/.
 *
 * The checker is first run on a synthetic tree with one violation of each
 * kind, to show it catches them, then on the repository.
 *
 * @module
 */
import assert from "node:assert/strict";

/** One broken rule at a file and line. */
interface Violation {
  file: string;
  line: number;
  rule: string;
}

/**
 * Blanks out comments (keeping line breaks) so rules about code are not
 * tripped by prose. With `blankStrings`, string and template text is blanked
 * too (but not `${…}` code inside templates), for rules about identifiers.
 */
function stripComments(src: string, blankStrings = false): string {
  const lit = (t: string) => (blankStrings ? t.replace(/[^\n]/g, " ") : t);
  let out = "";
  let i = 0;
  // Template nesting: each entry is the brace depth at which a `${` opened.
  const tmpl: number[] = [];
  let depth = 0;
  let prev = ""; // last significant character, to tell a regex from a division
  let word = ""; // the identifier or keyword being read
  const regexAllowed = () => prev === "" || "(,=:[!&|?{};+-*%<>~^".includes(prev);
  while (i < src.length) {
    const c = src[i]!, n = src[i + 1];
    if (c === "/" && n === "/") {
      while (i < src.length && src[i] !== "\n") i++, out += " ";
      continue;
    }
    if (c === "/" && n === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
      out += lit(src.slice(i, j + 1));
      i = j + 1;
      prev = c;
      continue;
    }
    if (c === "`" || (c === "}" && tmpl.length && tmpl[tmpl.length - 1] === depth)) {
      if (c === "}") tmpl.pop();
      let j = i + 1;
      while (j < src.length && src[j] !== "`" && !(src[j] === "$" && src[j + 1] === "{")) {
        j += src[j] === "\\" ? 2 : 1;
      }
      const head = c === "}" ? "}" : ""; // the `}` closing a `${…}` is code
      if (head) i++;
      if (src[j] === "$") {
        tmpl.push(depth);
        out += head + lit(src.slice(i, j)) + "${";
        i = j + 2;
      } else {
        out += head + lit(src.slice(i, j + 1));
        i = j + 1;
      }
      prev = "`";
      continue;
    }
    if (c === "/" && regexAllowed()) {
      let j = i + 1, cls = false;
      while (j < src.length && src[j] !== "\n" && (cls || src[j] !== "/")) {
        if (src[j] === "[") cls = true;
        else if (src[j] === "]") cls = false;
        j += src[j] === "\\" ? 2 : 1;
      }
      out += src.slice(i, j + 1);
      i = j + 1;
      prev = "/";
      continue;
    }
    if (c === "{") depth++;
    else if (c === "}") depth--;
    if (/[\w$]/.test(c)) word += c;
    else word = "";
    if (!/\s/.test(c)) prev = word ? "w" : c;
    // `return /re/` and similar keywords allow a regex next.
    if (KEYWORDS.has(word)) prev = "(";
    out += c;
    i++;
  }
  return out;
}

const KEYWORDS = new Set([
  "return",
  "typeof",
  "case",
  "do",
  "else",
  "in",
  "of",
  "void",
  "yield",
  "await",
]);

const lineAt = (text: string, index: number) => text.slice(0, index).split("\n").length;

const WGSL_MARKERS = [
  "@compute",
  "@workgroup_size",
  "@group(",
  "@binding(",
  "@builtin(",
  "var<storage",
  "var<uniform",
  "var<workgroup",
];

async function walk(dir: string, out: string[]): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) await walk(p, out);
    else if (e.isFile && /\.(ts|tsx|js|mjs)$/.test(e.name)) out.push(p);
  }
}

/**
 * Checks the layering rules on a repository tree.
 *
 * @param root the repository root (no trailing slash)
 * @returns the violations, and the files checked
 */
async function checkLayering(root: string): Promise<{ files: string[]; violations: Violation[] }> {
  const files: string[] = [];
  try {
    Deno.statSync(`${root}/mod.ts`);
    files.push(`${root}/mod.ts`);
  } catch { /* no mod.ts */ }
  await walk(`${root}/lib`, files);
  await walk(`${root}/kernels`, files);
  const violations: Violation[] = [];
  for (const abs of files) {
    const file = abs.slice(root.length + 1);
    const raw = await Deno.readTextFile(abs);
    const code = stripComments(raw);
    const bare = stripComments(raw, true); // for identifiers: no comments, no string text
    const add = (index: number, rule: string, text = code) =>
      violations.push({ file, line: lineAt(text, index), rule });
    const inLib = file.startsWith("lib/");
    const specifiers: [string, number][] = [];
    const patterns = [
      /\b(?:import|export)\s+(?:type\s+)?[\w*{}\s,$]*?\bfrom\s*(["'])([^"']*)\1/g,
      /\bimport\s*(["'])([^"']*)\1/g,
      /\bimport\s*\(\s*(["'])([^"']*)\1\s*[,)]/g,
    ];
    for (const re of patterns) {
      for (const m of code.matchAll(re)) specifiers.push([m[2]!, m.index!]);
    }
    for (const m of code.matchAll(/\bimport\s*\(\s*(?!["'][^"']*["']\s*[,)])/g)) {
      add(m.index!, "computed dynamic import");
    }
    for (const m of bare.matchAll(/\brequire\s*\(/g)) add(m.index!, "require()");
    for (const [spec, at] of specifiers) {
      if (!/^\.\.?\//.test(spec)) {
        const kind = /^(npm|jsr|node|https?|file|data):/.exec(spec)?.[1] ?? "bare";
        add(at, `${kind} specifier "${spec}"`);
        continue;
      }
      if (!spec.endsWith(".ts")) add(at, `relative import without .ts: "${spec}"`);
      const target = new URL(spec, `file://${abs}`).pathname;
      if (!target.startsWith(`${root}/`)) {
        add(at, `import leaves the repository: "${spec}"`);
        continue;
      }
      const rel = target.slice(root.length + 1);
      if (inLib && rel.startsWith("kernels/")) add(at, `lib/ imports kernels/: "${spec}"`);
      try {
        Deno.statSync(target);
      } catch {
        add(at, `import of a missing file: "${spec}"`);
      }
    }
    if (inLib) {
      for (const mark of WGSL_MARKERS) {
        // WGSL text is banned in lib/ even inside comments.
        for (let k = raw.indexOf(mark); k >= 0; k = raw.indexOf(mark, k + 1)) {
          add(k, `WGSL text "${mark}" in lib/`, raw);
        }
      }
      for (const m of bare.matchAll(/\bnavigator\s*\.\s*gpu\b/g)) {
        add(m.index!, "navigator.gpu in lib/");
      }
      if (!file.startsWith("lib/io/")) {
        for (const m of bare.matchAll(/\bDeno\s*\.\s*\w+/g)) {
          add(m.index!, `${m[0].replace(/\s/g, "")} in lib/ outside lib/io/`);
        }
      }
    }
  }
  return { files, violations };
}

const fmt = (v: Violation) => `${v.file}:${v.line}: ${v.rule}`;

Deno.test("the layering checker catches every kind of violation in a synthetic tree", async () => {
  const root = await Deno.makeTempDir({ prefix: "normix-layering-" });
  try {
    await Deno.mkdir(`${root}/lib/io`, { recursive: true });
    await Deno.mkdir(`${root}/kernels`, { recursive: true });
    const files: Record<string, string> = {
      "mod.ts": 'export * from "./lib/good.ts";\nexport * from "./kernels/k.ts";\n',
      "lib/good.ts": [
        "/**",
        ' * Prose may say Deno.readFile, navigator.gpu or import x from "npm:y".',
        ' * @example import * as nx from "jsr:@x/y";',
        " */",
        'import { helper } from "./io/files.ts";',
        'import type { T } from "./types.ts";',
        "// Deno.exit() in a line comment",
        'export const url = "http://example.com/mod.ts"; // a string, not an import',
        "export const re = /\\/\\/ not a comment/;",
        "export const t = `template ${helper('Deno.x')} text`;",
        "export const ratio = 4 / 2; // Deno.env",
        "export function f(x: T): T { return x; }",
      ].join("\n"),
      "lib/types.ts": "export type T = number;\n",
      "lib/io/files.ts":
        "export function helper(p: string): string {\n  return Deno.readTextFileSync(p);\n}\n",
      "kernels/k.ts":
        'import { f } from "../lib/good.ts";\nexport const WGSL = "@compute @workgroup_size(64) fn main() {}";\nexport const g = f;\nexport const gpu = () => navigator.gpu;\n',
      "lib/bad.ts": [
        'import fc from "fast-check";', // 1
        'import { x } from "npm:foo@1";', // 2
        'import "jsr:@std/assert";', // 3
        'export * from "node:fs";', // 4
        'import { y } from "https://example.com/mod.ts";', // 5
        'import { k } from "../kernels/k.ts";', // 6
        'import { j } from "./types.js";', // 7
        "const m = await import(name);", // 8
        'const wgsl = "var<storage, read> a: array<f32>;";', // 9
        "const adapter = await navigator.gpu.requestAdapter();", // 10
        'const text = Deno.readTextFileSync("x");', // 11
        "/* @group(0) in a comment still counts as WGSL text */", // 12
        'import { z } from "./missing.ts";', // 13
        'import { o } from "../../outside.ts";', // 14
        "export { fc, x, y, k, j, m, wgsl, adapter, text, z, o };", // 15
        'const r = require("fs");', // 16
      ].join("\n"),
    };
    for (const [p, text] of Object.entries(files)) await Deno.writeTextFile(`${root}/${p}`, text);
    const { files: checked, violations } = await checkLayering(root);
    assert.deepEqual(checked.map((f) => f.slice(root.length + 1)), [
      "mod.ts",
      "lib/bad.ts",
      "lib/good.ts",
      "lib/io/files.ts",
      "lib/types.ts",
      "kernels/k.ts",
    ]);
    assert.deepEqual(
      violations.map(fmt).sort(),
      [
        'lib/bad.ts:1: bare specifier "fast-check"',
        "lib/bad.ts:11: Deno.readTextFileSync in lib/ outside lib/io/",
        'lib/bad.ts:12: WGSL text "@group(" in lib/',
        'lib/bad.ts:13: import of a missing file: "./missing.ts"',
        'lib/bad.ts:14: import leaves the repository: "../../outside.ts"',
        "lib/bad.ts:16: require()",
        'lib/bad.ts:2: npm specifier "npm:foo@1"',
        'lib/bad.ts:3: jsr specifier "jsr:@std/assert"',
        'lib/bad.ts:4: node specifier "node:fs"',
        'lib/bad.ts:5: https specifier "https://example.com/mod.ts"',
        'lib/bad.ts:6: lib/ imports kernels/: "../kernels/k.ts"',
        'lib/bad.ts:7: import of a missing file: "./types.js"',
        'lib/bad.ts:7: relative import without .ts: "./types.js"',
        "lib/bad.ts:8: computed dynamic import",
        'lib/bad.ts:9: WGSL text "var<storage" in lib/',
        "lib/bad.ts:10: navigator.gpu in lib/",
      ].sort(),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("stripComments keeps code and strings, blanks comments, keeps line numbers", () => {
  const src =
    'a = 1; // c1\nb = "//x"; /* c2\nc2 */ d = `t ${e /* c3 */} // t`;\nf = /\\/*x/; g = 6 / 3 / 2;';
  const out = stripComments(src);
  assert.equal(out.split("\n").length, src.split("\n").length);
  assert.ok(!out.includes("c1") && !out.includes("c2") && !out.includes("c3"));
  assert.ok(out.includes('"//x"') && out.includes("// t`") && out.includes("/\\/*x/"));
  assert.ok(out.includes("g = 6 / 3 / 2;"));
  const bare = stripComments('x = "Deno.a" + `Deno.b ${Deno.c}`;', true);
  assert.ok(!bare.includes("Deno.a") && !bare.includes("Deno.b") && bare.includes("${Deno.c}"));
});

Deno.test("the repository follows the layering rules", async () => {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const { files, violations } = await checkLayering(root);
  const rel = files.map((f) => f.slice(root.length + 1));
  // Not vacuous: the core is there.
  for (const f of ["mod.ts", "lib/interpret.ts", "lib/ir/expr.ts", "lib/ir/builders.ts"]) {
    assert.ok(rel.includes(f), `${f} was checked`);
  }
  assert.deepEqual(
    violations.map(fmt),
    [],
    `layering violations:\n${violations.map(fmt).join("\n")}`,
  );
});
