import assert from "node:assert/strict";
import { array } from "../lib/ir/array.ts";
import {
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  readByteCorpus,
  readSafetensors,
  readSafetensorsHeader,
  saveCheckpoint,
  saveReport,
  writeFileAtomic,
  writeSafetensors,
} from "../lib/io/fs.ts";
import { decodeSafetensors } from "../lib/io/safetensors.ts";
import { createTrainingLog, recordTrain } from "../lib/report/log.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "normix_io_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("writeFileAtomic() writes bytes and text, replaces a file, and leaves no temp file", async () => {
  await withDir(async (dir) => {
    const p = `${dir}/a.bin`;
    await writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...await Deno.readFile(p)], [1, 2, 3]);
    await writeFileAtomic(p, "héllo");
    assert.equal(await Deno.readTextFile(p), "héllo");
    await writeFileAtomic(p, async () => await Promise.resolve(new Uint8Array(70_000).fill(7)));
    assert.equal((await Deno.readFile(p)).length, 70_000);
    assert.deepEqual(await listDir(dir), ["a.bin"]);
    // A file URL works too.
    const u = new URL(`file://${dir}/b.txt`);
    await writeFileAtomic(u, "url", { fsync: false });
    assert.equal(await Deno.readTextFile(u), "url");
    assert.deepEqual(await listDir(dir), ["a.bin", "b.txt"]);
  });
});

Deno.test("writeFileAtomic() keeps the existing file intact when producing the data throws", async () => {
  await withDir(async (dir) => {
    const p = `${dir}/ckpt.safetensors`;
    await Deno.writeTextFile(p, "precious");
    await assert.rejects(
      () =>
        writeFileAtomic(p, () => {
          throw new Error("out of memory while encoding");
        }),
      (e: Error) => {
        assert.match(e.message, /^Cannot write file .*ckpt\.safetensors: out of memory/);
        assert.match(e.message, /unchanged/);
        assert.equal((e.cause as Error).message, "out of memory while encoding");
        return true;
      },
    );
    assert.equal(await Deno.readTextFile(p), "precious");
    assert.deepEqual(await listDir(dir), ["ckpt.safetensors"]);
  });
});

Deno.test("writeFileAtomic() removes its temp file when the final rename fails", async () => {
  await withDir(async (dir) => {
    // The target is a non-empty directory: the data is written to the temp file, the rename fails.
    const p = `${dir}/target`;
    await Deno.mkdir(p);
    await Deno.writeTextFile(`${p}/keep.txt`, "kept");
    await assert.rejects(() => writeFileAtomic(p, "data"), /^Error: Cannot write file/);
    assert.deepEqual(await listDir(dir), ["target"]);
    assert.equal(await Deno.readTextFile(`${p}/keep.txt`), "kept");
    // A missing directory is reported, nothing created.
    await assert.rejects(() => writeFileAtomic(`${dir}/nope/x.bin`, "x"), /Cannot write file/);
    assert.deepEqual(await listDir(dir), ["target"]);
  });
});

Deno.test("writeFileAtomic() keeps the permissions of the file it replaces", async () => {
  if (Deno.build.os === "windows") return;
  await withDir(async (dir) => {
    const p = `${dir}/script.sh`;
    await Deno.writeTextFile(p, "old");
    await Deno.chmod(p, 0o750);
    await writeFileAtomic(p, "new");
    assert.equal((await Deno.stat(p)).mode! & 0o777, 0o750);
  });
});

Deno.test("saveCheckpoint()/loadCheckpoint() round-trip params, extras, config, variant and step", async () => {
  await withDir(async (dir) => {
    const p = `${dir}/model.safetensors`;
    const params = {
      "tok_emb.weight": array(Float32Array.from([1, 2, 3, 4, 5, 6]), [3, 2]),
      "blocks.0.ln_1.weight": array(Float32Array.from([1, 1]), [2]),
    };
    const extra = { "adam.m.tok_emb.weight": array(new Float32Array(6).fill(0.5), [3, 2]) };
    const config = { d_model: 2, n_layers: 1, vocab: 3, norm: "layernorm" };
    await saveCheckpoint(p, params, {
      config,
      variant: "pre_ln",
      step: 1234,
      extra,
      metadata: { note: "test" },
      dtypes: { "adam.m.tok_emb.weight": "BF16" },
    });
    const ck = await loadCheckpoint(p);
    assert.deepEqual(ck.config, config);
    assert.equal(ck.variant, "pre_ln");
    assert.equal(ck.step, 1234);
    assert.equal(ck.metadata.note, "test");
    assert.deepEqual(Object.keys(ck.params).sort(), Object.keys(params).sort());
    assert.deepEqual(Object.keys(ck.extra), ["adam.m.tok_emb.weight"]);
    assert.deepEqual([...ck.params["tok_emb.weight"]!.data], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...ck.extra["adam.m.tok_emb.weight"]!.data], new Array(6).fill(0.5));
    assert.equal(ck.dtypes["adam.m.tok_emb.weight"], "BF16");
    // The raw file carries config JSON and variant in __metadata__ for other readers.
    const raw = await readSafetensors(p);
    assert.deepEqual(JSON.parse(raw.metadata.config!), config);
    assert.equal(raw.metadata.variant, "pre_ln");
    assert.equal(raw.metadata.step, "1234");
    assert.deepEqual(await listDir(dir), ["model.safetensors"]);
  });
});

Deno.test("encodeCheckpoint()/decodeCheckpoint() reject bad checkpoint input clearly", () => {
  const w = { w: array([1]) };
  assert.throws(() => encodeCheckpoint(w, { extra: { w: array([2]) } }), /names both a parameter/);
  assert.throws(() => encodeCheckpoint(w, { metadata: { step: "3" } }), /"step" is reserved/);
  assert.throws(() => encodeCheckpoint(w, { step: -1 }), RangeError);
  assert.throws(() => encodeCheckpoint(w, { config: { n: 1n } }), /not JSON-serialisable/);
  const bytes = encodeCheckpoint(w, { step: 5 });
  const c = decodeSafetensors(bytes);
  assert.throws(
    () => decodeCheckpoint({ ...c, metadata: { ...c.metadata, config: "{" } }),
    /Cannot load checkpoint: metadata "config" is not valid JSON/,
  );
  assert.throws(
    () => decodeCheckpoint({ ...c, metadata: { ...c.metadata, step: "1e3" } }),
    /"step" is "1e3"/,
  );
  assert.throws(
    () => decodeCheckpoint({ ...c, metadata: { ...c.metadata, extra: '["zz"]' } }),
    /lists "zz", which is not in the file/,
  );
  // A plain safetensors file loads with everything as params.
  const plain = decodeCheckpoint(decodeSafetensors(encodeCheckpoint(w)));
  assert.equal(plain.config, undefined);
  assert.equal(plain.step, undefined);
  assert.deepEqual(Object.keys(plain.params), ["w"]);
});

Deno.test("readSafetensors() names the file in errors; writeSafetensors() round-trips", async () => {
  await withDir(async (dir) => {
    const p = `${dir}/bad.safetensors`;
    await Deno.writeFile(p, new Uint8Array([1, 2, 3]));
    await assert.rejects(() => readSafetensors(p), (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /^Cannot read safetensors: .*\(file .*bad\.safetensors\)$/);
      return true;
    });
    const q = `${dir}/ok.safetensors`;
    await writeSafetensors(q, { x: array([1, 2], [2], "i32") }, { a: "b" });
    const r = await readSafetensors(q);
    assert.deepEqual([...r.tensors.x!.data], [1, 2]);
    assert.deepEqual(r.metadata, { a: "b" });
    // Header only: entries and metadata without the data.
    const h = await readSafetensorsHeader(q);
    assert.deepEqual(h.metadata, { a: "b" });
    assert.deepEqual(h.entries.map((e) => [e.name, e.dtype, [...e.shape], [...e.offsets]]), [
      ["x", "I32", [2], [0, 8]],
    ]);
    assert.equal(h.dataStart + 8, (await Deno.stat(q)).size);
    await assert.rejects(() => readSafetensorsHeader(p), /fewer than the 8-byte header length/);
    const full = await Deno.readFile(q);
    await Deno.writeFile(p, full.subarray(0, 20));
    await assert.rejects(() => readSafetensorsHeader(p), /it is truncated/);
    await Deno.writeFile(p, full.subarray(0, full.length - 1));
    await assert.rejects(() => readSafetensorsHeader(p), /past the end of the 7-byte data buffer/);
  });
});

Deno.test("readByteCorpus() and saveReport() read and write through the file helpers", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/c.txt`, "hé!");
    assert.deepEqual([...await readByteCorpus(`${dir}/c.txt`)], [104, 195, 169, 33]);
    assert.deepEqual([...await readByteCorpus(`${dir}/c.txt`, 2)], [104, 195]);
    const log = createTrainingLog({ title: "t" });
    recordTrain(log, "v", { step: 0, loss: 2 });
    await saveReport(`${dir}/r.html`, log);
    await saveReport(`${dir}/r.svg`, log);
    await saveReport(`${dir}/r.json`, log);
    assert.match(await Deno.readTextFile(`${dir}/r.html`), /^<!DOCTYPE html>/);
    assert.match(await Deno.readTextFile(`${dir}/r.svg`), /^<svg xmlns/);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/r.json`)), log);
    await assert.rejects(() => saveReport(`${dir}/r.png`, log), TypeError);
    assert.deepEqual(await listDir(dir), ["c.txt", "r.html", "r.json", "r.svg"]);
  });
});
