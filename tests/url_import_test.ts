/**
 * normix works when imported by URL, with no config, import map or
 * dependency: the repository is served on 127.0.0.1 and a script in a temp
 * directory outside the repository imports `http://127.0.0.1:PORT/mod.ts`,
 * builds a LayerNorm → matmul → residual block and evaluates it on the
 * interpreter. Its checksum must equal the same computation done here. The
 * script runs with `--check=all`, so the library also type-checks as a remote
 * module under Deno's default compiler options.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as nx from "../mod.ts";

const ROOT = new URL("../", import.meta.url);

// The block, written once and used by both sides (the script gets this text).
const BLOCK = `
const x = nx.input("x", [2, 4, 8]);
const w = nx.param("w", [8, 8]);
const y = nx.residual(x, (h) => nx.matmul(nx.layerNorm(h), w), { role: "mlp", layer: 0 });
const xs = Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.37) * 2);
const ws = Array.from({ length: 64 }, (_, i) => Math.cos(i * 0.11) / 3);
const [out] = nx.interpret([y], { x: nx.array(xs, [2, 4, 8]), w: nx.array(ws, [8, 8]) });
let sum = 0, wsum = 0;
out.data.forEach((v, i) => { sum += v; wsum += v * ((i % 7) + 1); });
const result = { shape: [...out.shape], sum, wsum, text: nx.printExpr(y) };
`;

function localResult(): { shape: number[]; sum: number; wsum: number; text: string } {
  // Same statements as BLOCK, against the in-process module.
  return new Function("nx", `${BLOCK}\nreturn result;`)(nx);
}

Deno.test("mod.ts imports by URL with --no-config from outside the repository", async () => {
  const requested: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      requested.push(path);
      if (!path.endsWith(".ts") || path.split("/").includes("..")) {
        return new Response("not found", { status: 404 });
      }
      try {
        const body = await Deno.readFile(new URL(`.${path}`, ROOT));
        return new Response(body, { headers: { "content-type": "application/typescript" } });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  const dir = await Deno.makeTempDir({ prefix: "normix-url-import-" });
  try {
    const port = server.addr.port;
    assert.ok(!dir.startsWith(new URL(ROOT).pathname), "the script runs outside the repo");
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `import * as nx from "http://127.0.0.1:${port}/mod.ts";\n${BLOCK}\n` +
        `console.log(JSON.stringify(result));\n`,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--check=all",
        "--no-config",
        "--no-lock",
        `--allow-import=127.0.0.1:${port}`,
        "main.ts",
      ],
      cwd: dir,
      // A private cache: nothing from an earlier run (or another port) is reused.
      env: { DENO_DIR: `${dir}/deno_dir`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `subprocess failed:\n${err}`);
    const remote = JSON.parse(new TextDecoder().decode(stdout).trim());
    const local = localResult();
    assert.deepEqual(remote.shape, [2, 4, 8]);
    // Same code, same float64 operations: the checksums agree exactly.
    assert.equal(remote.sum, local.sum);
    assert.equal(remote.wsum, local.wsum);
    assert.equal(remote.text, local.text);
    assert.ok(Number.isFinite(local.wsum) && local.wsum !== 0);
    // Only library modules were fetched: mod.ts, lib/ and kernels/, nothing else.
    assert.ok(requested.includes("/mod.ts"));
    for (const p of requested) assert.match(p, /^\/(mod\.ts|(lib|kernels)\/.+\.ts)$/, p);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
