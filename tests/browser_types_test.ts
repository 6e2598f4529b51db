/**
 * The library type-checks against the browsers' WebGPU and DOM types
 * (`@webgpu/types`, no `Deno` namespace), so it stays portable beyond Deno.
 * Only `lib/io/fs.ts` (files) is Deno-specific, by design.
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

Deno.test("kernels/ and lib/ (except lib/io/fs.ts) type-check with browser WebGPU types", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/deno.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        compilerOptions: {
          lib: ["dom", "esnext"],
          types: ["npm:@webgpu/types@0.1"],
          strict: true,
          noUncheckedIndexedAccess: true,
        },
      }),
    );
    const entries: string[] = ["kernels/mod.ts"];
    const walk = async (rel: string): Promise<void> => {
      for await (const e of Deno.readDir(new URL(rel, root))) {
        const path = `${rel}${e.name}`;
        if (e.isDirectory) await walk(`${path}/`);
        else if (path.endsWith(".ts") && path !== "lib/io/fs.ts" && path !== "lib/io/mod.ts") {
          entries.push(path);
        }
      }
    };
    await walk("lib/");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", "--config", config, ...entries],
      cwd: root,
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `browser-typed check failed:\n${text}`);
    // The check must be able to fail: a file using the Deno namespace is rejected.
    const bad = `${dir}/bad.ts`;
    await Deno.writeTextFile(bad, "export const cwd: string = Deno.cwd();\n");
    const neg = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", "--config", config, bad],
      env: { NO_COLOR: "1" },
    }).output();
    assert.notEqual(neg.code, 0, "a Deno-only file must fail the browser-typed check");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
