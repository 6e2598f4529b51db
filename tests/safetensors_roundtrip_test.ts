import assert from "node:assert/strict";
import fc from "fast-check";
import { array, type NDArray } from "../lib/ir/array.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsDType,
} from "../lib/io/safetensors.ts";
import { fcParams } from "./_util.ts";

/** Builds a file byte by byte from the format description (not from our writer). */
function handBuilt(headerJson: string, data: number[], pad: boolean): Uint8Array {
  let h = headerJson;
  if (pad) { while (h.length % 8 !== 0) h += " "; }
  const out = new Uint8Array(8 + h.length + data.length);
  let n = h.length;
  for (let i = 0; i < 8; i++) {
    out[i] = n & 0xff; // little-endian u64, byte by byte
    n = Math.floor(n / 256);
  }
  for (let i = 0; i < h.length; i++) out[8 + i] = h.charCodeAt(i); // ASCII header
  out.set(data, 8 + h.length);
  return out;
}

function leF64(v: number): number[] {
  return [...new Uint8Array(new Float64Array([v]).buffer)];
}

function bitsOf(a: NDArray): number[] {
  const d = a.data;
  if (d instanceof Float32Array) return [...new Uint32Array(Float32Array.from(d).buffer)];
  return [...d];
}

Deno.test("decodeSafetensors() reads a hand-built reference layout with 8-byte header padding", () => {
  // The layout the reference writer produces for the README example
  // {a: zeros((2,2)) float64, b: zeros((2,3)) uint8}, with non-zero values.
  const json = '{"a":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]},' +
    '"b":{"dtype":"U8","shape":[2,3],"data_offsets":[32,38]}}';
  const data = [
    ...leF64(1.5),
    ...leF64(-2),
    ...leF64(Math.PI),
    ...leF64(1e-300),
    1,
    2,
    3,
    4,
    5,
    255,
  ];
  const bytes = handBuilt(json, data, true);
  assert.equal((8 + json.length + (8 - json.length % 8) % 8) % 8, 0);
  const { tensors, metadata, dtypes } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, {});
  assert.deepEqual(dtypes, { a: "F64", b: "U8" });
  assert.deepEqual(tensors.a!.shape, [2, 2]);
  assert.deepEqual([...tensors.a!.data], [1.5, -2, Math.PI, 1e-300]);
  assert.ok(tensors.a!.data instanceof Float64Array);
  assert.equal(tensors.b!.dtype, "u32");
  assert.deepEqual([...tensors.b!.data], [1, 2, 3, 4, 5, 255]);
  // Our writer produces exactly these bytes for the same tensors and dtypes.
  const again = encodeSafetensors(
    { b: array(Uint32Array.from([1, 2, 3, 4, 5, 255]), [2, 3], "u32"), a: tensors.a! },
    {},
    { dtypes: { a: "F64", b: "U8" } },
  );
  assert.deepEqual([...again], [...bytes]);
});

Deno.test("decodeSafetensors() copies unaligned tensors (unpadded header, odd offsets)", () => {
  let json = '{"__metadata__":{"format":"pt"},' +
    '"x":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},' +
    '"y":{"dtype":"F32","shape":[2],"data_offsets":[3,11]},' +
    '"z":{"dtype":"I64","shape":[1],"data_offsets":[11,19]}}';
  // Leading spaces (valid JSON) shift the data until y (at data byte 3) and z are misaligned.
  while ((8 + json.length + 3) % 4 === 0 || (8 + json.length + 11) % 8 === 0) json = " " + json;
  const f32 = [...new Uint8Array(new Float32Array([0.25, -Infinity]).buffer)];
  const i64 = [...new Uint8Array(new BigInt64Array([-7n]).buffer)];
  const bytes = handBuilt(json, [9, 8, 7, ...f32, ...i64], false);
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual([...tensors.x!.data], [9, 8, 7]);
  assert.deepEqual([...tensors.y!.data], [0.25, -Infinity]);
  assert.equal(tensors.z!.dtype, "i32");
  assert.deepEqual([...tensors.z!.data], [-7]);
});

Deno.test("encodeSafetensors() pads the header with spaces and aligns every tensor", () => {
  const bytes = encodeSafetensors({
    c: array([1], [1], "bool"),
    a: array([1, 2, 3], [3], "f16"),
    b: array(Float32Array.from([1, 2]), [2]),
    d: array([5], [1], "i32"),
  }, { note: "hello" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(header, /^\{"__metadata__":\{"note":"hello"\}/);
  assert.match(header, / *$/);
  const parsed = JSON.parse(header);
  for (const [k, v] of Object.entries(parsed)) {
    if (k === "__metadata__") continue;
    const e = v as { dtype: SafetensorsDType; data_offsets: [number, number] };
    const size = { F32: 4, I32: 4, F16: 2, BOOL: 1 }[e.dtype as "F32"];
    assert.equal((8 + n + e.data_offsets[0]) % size, 0, `${k} aligned`);
  }
});

Deno.test("encodeSafetensors()/decodeSafetensors() round-trip every dtype bit-exactly", () => {
  const specials = [0, -0, 1, -1.5, NaN, Infinity, -Infinity, 65504, 6e-8, 3.4e38, 1e-45];
  const f32 = Float32Array.from(specials);
  const f16vals = Float32Array.from(specials.map((v) => Math.f16round(v)));
  const f64 = Float64Array.from([...specials, Math.PI, 1e308, 5e-324]);
  const tensors: Record<string, NDArray> = {
    f32: array(f32, [f32.length]),
    f16: array(f16vals, [f16vals.length], "f16"),
    f64: array(f64, [f64.length]),
    bf16: array(Float32Array.from([1, -2, 0.5, NaN, Infinity, -Infinity, 0, 3.140625]), [8]),
    i32: array(Int32Array.from([0, -1, 2147483647, -2147483648]), [2, 2], "i32"),
    u32: array(Uint32Array.from([0, 1, 4294967295]), [3], "u32"),
    bool: array(Uint8Array.from([1, 0, 1]), [3], "bool"),
    u8: array(Uint32Array.from([0, 255, 7]), [3], "u32"),
    i8: array(Int32Array.from([-128, 127]), [2], "i32"),
    u16: array(Uint32Array.from([0, 65535]), [2], "u32"),
    i16: array(Int32Array.from([-32768, 32767]), [2], "i32"),
    i64: array(Int32Array.from([-2147483648, 5]), [2], "i32"),
    u64: array(Uint32Array.from([4294967295, 0]), [2], "u32"),
    scalar: array(Float32Array.from([42]), []),
    empty: array(new Float32Array(0), [0, 3]),
    empty2: array(new Int32Array(0), [2, 0, 5], "i32"),
  };
  const dtypes: Record<string, SafetensorsDType> = {
    f64: "F64",
    bf16: "BF16",
    u8: "U8",
    i8: "I8",
    u16: "U16",
    i16: "I16",
    i64: "I64",
    u64: "U64",
  };
  const meta = { config: JSON.stringify({ d: 64, name: "π ü" }), variant: "pre_ln" };
  const out = decodeSafetensors(encodeSafetensors(tensors, meta, { dtypes }));
  assert.deepEqual(out.metadata, meta);
  for (const [k, a] of Object.entries(tensors)) {
    const b = out.tensors[k]!;
    assert.ok(b, k);
    assert.deepEqual(b.shape, a.shape, `${k} shape`);
    assert.equal(b.dtype, a.dtype, `${k} dtype`);
    assert.equal(
      out.dtypes[k],
      dtypes[k] ?? { f32: "F32", f16: "F16", i32: "I32", u32: "U32", bool: "BOOL" }[a.dtype],
    );
    if (k === "f64") assert.deepEqual([...b.data], [...a.data]); // Object.is: NaN, -0 kept
    else if (k === "f32" || k === "f16" || k === "bf16") {
      assert.deepEqual(
        [...b.data].map((v) => Number.isNaN(v) ? "NaN" : v),
        [...a.data].map((v) => Number.isNaN(v) ? "NaN" : v),
        k,
      );
    } else assert.deepEqual([...b.data], [...a.data], k);
  }
  // f32 keeps the exact bits (including the NaN payload and -0).
  assert.deepEqual(bitsOf(out.tensors.f32!), bitsOf(tensors.f32!));
});

Deno.test("encodeSafetensors() rounds BF16 to nearest even and keeps NaN a NaN", () => {
  const cases: [number, number][] = [
    [1, 0x3f80],
    [1 + 2 ** -8, 0x3f80], // tie → even
    [1 + 3 * 2 ** -8, 0x3f82], // tie → even (up)
    [1 + 2 ** -8 + 2 ** -20, 0x3f81], // above the tie → up
    [-2, 0xc000],
    [Infinity, 0x7f80],
    [3.4e38, 0x7f80], // rounds past the largest bf16 to Infinity
  ];
  const a = array(Float32Array.from([...cases.map((c) => c[0]), NaN]), [cases.length + 1]);
  const bytes = encodeSafetensors({ a }, {}, { dtypes: { a: "BF16" } });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const dv = new DataView(bytes.buffer, 8 + n);
  cases.forEach(([, bits], i) => assert.equal(dv.getUint16(2 * i, true), bits, `case ${i}`));
  const nan = dv.getUint16(2 * cases.length, true);
  assert.equal(nan & 0x7f80, 0x7f80);
  assert.notEqual(nan & 0x7f, 0);
  // float64 input is rounded once: just above or below a tie that f32 cannot resolve.
  const d = array(
    Float64Array.from([
      1 + 2 ** -8 + 2 ** -30,
      -(1 + 2 ** -8 + 2 ** -30),
      1 + 2 ** -8 - 2 ** -30,
      1 + 3 * 2 ** -8 - 2 ** -30,
    ]),
    [4],
  );
  const b2 = encodeSafetensors({ d }, {}, { dtypes: { d: "BF16" } });
  const n2 = Number(new DataView(b2.buffer).getBigUint64(0, true));
  const dv2 = new DataView(b2.buffer, 8 + n2);
  assert.deepEqual([0, 1, 2, 3].map((i) => dv2.getUint16(2 * i, true)), [
    0x3f81,
    0xbf81,
    0x3f80,
    0x3f81,
  ]);
});

Deno.test("encodeSafetensors() rejects values that do not fit an integer dtype, and bad input", () => {
  assert.throws(
    () => encodeSafetensors({ a: array([300], [1], "i32") }, {}, { dtypes: { a: "U8" } }),
    (e: Error) =>
      e instanceof RangeError && /Cannot write safetensors: .*"a".*300.*U8/.test(e.message),
  );
  assert.throws(
    () => encodeSafetensors({ a: array([1.5], [1], "f32") }, {}, { dtypes: { a: "I32" } }),
    RangeError,
  );
  assert.throws(() => encodeSafetensors({ __metadata__: array([1]) }), TypeError);
  assert.throws(
    () => encodeSafetensors({ a: array([1]) }, { k: 1 as unknown as string }),
    /metadata "k" is number 1; metadata values must be strings/,
  );
  assert.throws(
    () => encodeSafetensors({ a: array([1]) }, {}, { dtypes: { b: "F32" } }),
    TypeError,
  );
  assert.throws(
    () => encodeSafetensors({ a: { dtype: "f32", shape: [3], data: new Float32Array(2) } }),
    /needs 3 values, has 2/,
  );
});

Deno.test("decodeSafetensors() keeps a tensor named __proto__ as an own entry", () => {
  const t = Object.fromEntries([["__proto__", array([1, 2])], ["b", array([3])]]);
  const out = decodeSafetensors(encodeSafetensors(t));
  assert.ok(Object.hasOwn(out.tensors, "__proto__"));
  assert.deepEqual([...out.tensors["__proto__"]!.data], [1, 2]);
  assert.equal(Object.getPrototypeOf(out.tensors), Object.prototype);
});

const arbShape = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 });
const arbTensor = fc.oneof(
  arbShape.chain((s) =>
    fc.float32Array({
      minLength: s.reduce((a, b) => a * b, 1),
      maxLength: s.reduce((a, b) => a * b, 1),
    })
      .map((d) => array(d, s))
  ),
  arbShape.chain((s) =>
    fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), {
      minLength: s.reduce((a, b) => a * b, 1),
      maxLength: s.reduce((a, b) => a * b, 1),
    }).map((d) => array(Int32Array.from(d), s, "i32"))
  ),
  arbShape.chain((s) =>
    fc.array(fc.boolean(), {
      minLength: s.reduce((a, b) => a * b, 1),
      maxLength: s.reduce((a, b) => a * b, 1),
    }).map((d) => array(Uint8Array.from(d, Number), s, "bool"))
  ),
);

Deno.test("encodeSafetensors()/decodeSafetensors() round-trip random tensor sets (property)", () => {
  fc.assert(
    fc.property(
      fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== "__metadata__"), arbTensor, {
        maxKeys: 5,
      }),
      fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 10 }), { maxKeys: 3 }),
      (tensors, meta) => {
        const out = decodeSafetensors(encodeSafetensors(tensors, meta));
        assert.deepEqual(Object.keys(out.tensors).sort(), Object.keys(tensors).sort());
        assert.deepEqual({ ...out.metadata }, { ...meta });
        for (const [k, a] of Object.entries(tensors)) {
          const b = out.tensors[k]!;
          assert.deepEqual(b.shape, a.shape);
          assert.equal(b.dtype, a.dtype);
          assert.deepEqual(bitsOf(b), bitsOf(a));
        }
      },
    ),
    fcParams(150),
  );
});
