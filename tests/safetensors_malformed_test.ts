import assert from "node:assert/strict";
import fc from "fast-check";
import { array } from "../lib/ir/array.ts";
import { decodeSafetensors, encodeSafetensors } from "../lib/io/safetensors.ts";
import { fcParams } from "./_util.ts";

/** A file with the given header text (unpadded) and data bytes. */
function file(header: string | Uint8Array, data: Uint8Array | number = 0, n?: bigint): Uint8Array {
  const h = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const d = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

const entry = (dtype: string, shape: unknown, offsets: unknown) =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

/**
 * Runs decode and classifies the outcome: "ok" with a consistent result, or
 * the error kind. Any other exception type or message fails the test.
 */
function outcome(bytes: Uint8Array): "ok" | "TypeError" | "RangeError" {
  let out;
  try {
    out = decodeSafetensors(bytes);
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof RangeError)) {
      throw new Error(`unexpected ${(e as Error)?.constructor?.name}: ${e}`);
    }
    if (!e.message.startsWith("Cannot read safetensors: ")) {
      throw new Error(`unclear message: ${e.message}`);
    }
    return e instanceof TypeError ? "TypeError" : "RangeError";
  }
  for (const [k, t] of Object.entries(out.tensors)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    assert.equal(t.data.length, n, `tensor ${k} is consistent`);
  }
  return "ok";
}

function expectError(bytes: Uint8Array, kind: "TypeError" | "RangeError", pattern: RegExp): void {
  try {
    decodeSafetensors(bytes);
  } catch (e) {
    assert.equal((e as Error).constructor.name, kind, (e as Error).message);
    assert.match((e as Error).message, /^Cannot read safetensors: /);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.fail(`expected a ${kind} matching ${pattern}`);
}

const good = encodeSafetensors(
  {
    w: array(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]),
    b: array([1, 2], [2], "f16"),
    m: array([1, 0, 1], [3], "bool"),
    s: array(Int32Array.from([7]), [], "i32"),
  },
  { config: '{"d":4}', variant: "pre_ln" },
);

Deno.test("decodeSafetensors() names each malformed-file case in a clear error", () => {
  const ok = entry("F32", [2], [0, 8]);
  expectError(new Uint8Array(5), "RangeError", /5 bytes, fewer than the 8-byte header length/);
  expectError(file("{}", 0, 10n ** 9n), "RangeError", /N=1000000000 exceeds the 100000000-byte/);
  expectError(file("{}", 0, 2n ** 64n - 1n), "RangeError", /exceeds/);
  expectError(
    file("{}", 0, 40n),
    "RangeError",
    /needs 48 bytes but the file has 10; it is truncated/,
  );
  expectError(file('{"a":'), "TypeError", /not valid JSON/);
  expectError(file(new Uint8Array([0x7b, 0xff, 0x7d])), "TypeError", /not valid UTF-8/);
  expectError(file("[1,2]"), "TypeError", /must be a JSON object, got an array/);
  expectError(file("null"), "TypeError", /must be a JSON object, got null/);
  expectError(file('{"__metadata__":{"a":1}}'), "TypeError", /"a" is number 1/);
  expectError(file('{"__metadata__":"x"}'), "TypeError", /__metadata__" must be an object/);
  expectError(file(`{"a":${entry("F33", [2], [0, 8])}}`, 8), "TypeError", /unknown dtype "F33"/);
  expectError(file(`{"a":${entry("F8_E4M3", [2], [0, 2])}}`, 2), "TypeError", /does not convert/);
  expectError(file(`{"a":${entry("F32", [-1], [0, 8])}}`, 8), "TypeError", /shape \[-1\]/);
  expectError(
    file(`{"a":${entry("F32", [1.5], [0, 8])}}`, 8),
    "TypeError",
    /non-negative integers/,
  );
  expectError(file(`{"a":${entry("F32", "2", [0, 8])}}`, 8), "TypeError", /expected an array/);
  expectError(file(`{"a":${entry("F32", [2], [0])}}`, 8), "TypeError", /data_offsets \[0\]/);
  expectError(file(`{"a":${entry("F32", [2], [8, 0])}}`, 8), "RangeError", /end before begin/);
  expectError(
    file(`{"a":${entry("F32", [2], [0, 8])}}`, 4),
    "RangeError",
    /past the end of the 4-byte/,
  );
  expectError(
    file(`{"a":${entry("F32", [3], [0, 8])}}`, 8),
    "RangeError",
    /needs 12 bytes.*span 8/,
  );
  expectError(
    file(`{"a":${entry("F32", [2 ** 40, 2 ** 40], [0, 8])}}`, 8),
    "RangeError",
    /too large/,
  );
  expectError(
    file(`{"a":${ok},"b":${entry("F32", [2], [4, 12])}}`, 12),
    "RangeError",
    /"a" \[0, 8\] and "b" \[4, 12\] overlap/,
  );
  expectError(
    file(`{"a":${ok},"b":${entry("F32", [2], [12, 20])}}`, 20),
    "RangeError",
    /bytes \[8, 12\) .* belong to no tensor/,
  );
  expectError(file(`{"a":${entry("F32", [2], [4, 12])}}`, 12), "RangeError", /hole/);
  expectError(file(`{"a":${ok}}`, 9), "RangeError", /1 trailing bytes/);
  expectError(file(`{"a":${ok},"a":${ok}}`, 8), "TypeError", /key "a" more than once/);
  expectError(file(`{"a":${ok},"\\u0061":${ok}}`, 8), "TypeError", /more than once/);
  expectError(file(`{"__metadata__":{"k":"1","k":"2"}}`), "TypeError", /key "k" more than once/);
  expectError(file(`{"a":[1]}`, 0), "TypeError", /must be an object \{dtype/);
  expectError(
    file(`{"a":${entry("I64", [1], [0, 8])}}`, new Uint8Array(8).fill(0x7f)),
    "RangeError",
    /outside the i32 range/,
  );
  expectError(
    file(`{"a":${entry("U64", [1], [0, 8])}}`, new Uint8Array(8).fill(0xff)),
    "RangeError",
    /outside the u32 range/,
  );
  // Not errors: an empty file body, whitespace padding, and zero-size tensors sharing an offset.
  assert.equal(outcome(file("{}      ")), "ok");
  assert.equal(
    outcome(
      file(`{"z":${entry("F32", [0], [0, 0])},"a":${ok},"y":${entry("U8", [2, 0], [8, 8])}}`, 8),
    ),
    "ok",
  );
  assert.equal(outcome(good), "ok");
});

Deno.test("decodeSafetensors() rejects every truncation with a clear error (property)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: good.length - 1 }), (len) => {
      assert.notEqual(outcome(good.slice(0, len)), "ok");
    }),
    fcParams(200),
  );
});

Deno.test("decodeSafetensors() survives random byte corruption: result or clear error (property)", () => {
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 })),
        { minLength: 1, maxLength: 6 },
      ),
      fc.boolean(),
      (edits, inHeader) => {
        const bytes = good.slice();
        for (const [i, v] of edits) {
          // Half the runs aim at the header, where corruption matters most.
          bytes[inHeader ? 8 + (i % n) : i] = v;
        }
        outcome(bytes);
      },
    ),
    fcParams(400),
  );
});

Deno.test("decodeSafetensors() survives generated malformed headers (property)", () => {
  const dtype = fc.oneof(
    fc.constantFrom("F32", "F16", "BF16", "F64", "I32", "U8", "BOOL", "I64", "U64", "F8_E5M2"),
    fc.string({ maxLength: 5 }),
  );
  const num = fc.oneof(
    fc.integer({ min: -2, max: 40 }),
    fc.constantFrom(1.5, 2 ** 53, 1e300, -0),
  );
  const jsonish = fc.oneof(
    num,
    fc.array(num, { maxLength: 4 }),
    fc.string({ maxLength: 4 }),
    fc.constant(null),
    fc.jsonValue({ maxDepth: 2 }),
  );
  const tensorEntry = fc.oneof(
    fc.record({ dtype, shape: fc.array(num, { maxLength: 3 }), data_offsets: fc.tuple(num, num) }),
    fc.record({ dtype: jsonish, shape: jsonish, data_offsets: jsonish }, { requiredKeys: [] }),
    jsonish,
  );
  const header = fc.dictionary(
    fc.oneof(fc.constant("__metadata__"), fc.string({ maxLength: 3 })),
    fc.oneof(tensorEntry, fc.dictionary(fc.string({ maxLength: 3 }), jsonish, { maxKeys: 2 })),
    { maxKeys: 4 },
  );
  let errors = 0;
  fc.assert(
    fc.property(
      header,
      fc.integer({ min: 0, max: 64 }),
      fc.integer({ min: 0, max: 7 }),
      (h, dataLen, pad) => {
        const r = outcome(file(JSON.stringify(h) + " ".repeat(pad), dataLen));
        if (r !== "ok") errors++;
      },
    ),
    fcParams(400),
  );
  assert.ok(errors > 0);
});

Deno.test("decodeSafetensors() rejects a huge claimed shape without allocating", () => {
  const t0 = performance.now();
  expectError(
    file(`{"a":${entry("F64", [2 ** 26, 2 ** 26], [0, 8])}}`, 8),
    "RangeError",
    /needs 36028797018963970 bytes|too large/,
  );
  assert.ok(performance.now() - t0 < 1000);
});
