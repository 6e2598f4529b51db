/**
 * A safetensors reader and writer (pure: bytes in, bytes out).
 *
 * Layout (huggingface/safetensors): bytes 0–7 hold `N`, a little-endian u64;
 * bytes 8..8+N hold a UTF-8 JSON object mapping each tensor name to
 * `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to byte
 * 8+N), plus an optional `__metadata__` string→string map; the rest is the
 * data buffer, row-major and little-endian. The writer pads the header with
 * spaces so the data starts 8-byte aligned and orders tensors by element
 * size, so every tensor is aligned; the reader copies, so it also accepts
 * unaligned files.
 *
 * The reader validates the whole header before it materialises any tensor
 * and rejects every malformed file with a `TypeError` (wrong kind of value)
 * or `RangeError` (sizes, offsets) whose message starts with
 * `Cannot read safetensors:`. It never returns a partial result.
 *
 * @example
 * ```ts
 * import { array } from "../ir/array.ts";
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 *
 * const bytes = encodeSafetensors({ w: array([1, 2, 3, 4], [2, 2]) }, { step: "10" });
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * console.log(tensors.w.shape, metadata.step); // [2, 2] "10"
 * ```
 *
 * @module
 */

import type { ArrayData, NDArray } from "../ir/array.ts";
import type { DType } from "../ir/dtype.ts";
import { fmtShape } from "../ir/shape.ts";

/** The element types a safetensors file may name that this module reads and writes. */
export type SafetensorsDType =
  | "BOOL"
  | "U8"
  | "I8"
  | "U16"
  | "I16"
  | "F16"
  | "BF16"
  | "U32"
  | "I32"
  | "F32"
  | "U64"
  | "I64"
  | "F64";

/** Bytes per element of each supported safetensors dtype. */
export const SAFETENSORS_DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
});

/** dtypes the format defines that this reader knows but cannot convert (8/6/4-bit floats). */
const UNSUPPORTED = new Set(["F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"]);

/** The largest header the reader accepts, as in the reference implementation. */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

/** The key of the string→string metadata map in the header. */
const META = "__metadata__";

/** One tensor's header entry, validated. */
export interface SafetensorsEntry {
  /** Tensor name. */
  readonly name: string;
  /** Element type in the file. */
  readonly dtype: SafetensorsDType;
  /** Shape (`[]` for a scalar). */
  readonly shape: readonly number[];
  /** Byte range `[begin, end)` relative to the start of the data buffer. */
  readonly offsets: readonly [number, number];
}

/** A parsed, validated header. */
export interface SafetensorsHeader {
  /** Byte offset of the data buffer in the file (8 + N). */
  readonly dataStart: number;
  /** Tensor entries in header order. */
  readonly entries: readonly SafetensorsEntry[];
  /** The `__metadata__` map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** The result of {@link decodeSafetensors}. */
export interface SafetensorsContents {
  /** Tensors by name, converted to host arrays (see {@link decodeSafetensors}). */
  readonly tensors: Record<string, NDArray>;
  /** The `__metadata__` map (empty when absent). */
  readonly metadata: Record<string, string>;
  /** The element type each tensor had in the file (pass back to the writer to round-trip). */
  readonly dtypes: Record<string, SafetensorsDType>;
}

/** Options of {@link encodeSafetensors}. */
export interface EncodeSafetensorsOptions {
  /**
   * File dtype per tensor name, overriding the default (f32→F32, f16→F16,
   * i32→I32, u32→U32, bool→BOOL). Values are converted: floats are rounded,
   * integers are range-checked.
   */
  readonly dtypes?: Readonly<Record<string, SafetensorsDType>>;
}

const READ = "Cannot read safetensors";
const WRITE = "Cannot write safetensors";

function isSafetensorsDType(s: string): s is SafetensorsDType {
  return Object.hasOwn(SAFETENSORS_DTYPE_SIZE, s);
}

const DEFAULT_FILE_DTYPE: Readonly<Record<DType, SafetensorsDType>> = Object.freeze({
  f32: "F32",
  f16: "F16",
  i32: "I32",
  u32: "U32",
  bool: "BOOL",
});

const INT_RANGE: Readonly<Partial<Record<SafetensorsDType, readonly [number, number]>>> = Object
  .freeze({
    U8: [0, 255],
    I8: [-128, 127],
    U16: [0, 65535],
    I16: [-32768, 32767],
    U32: [0, 4294967295],
    I32: [-2147483648, 2147483647],
    U64: [0, Number.MAX_SAFE_INTEGER],
    I64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  });

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function quote(s: string): string {
  const j = JSON.stringify(s);
  return j.length > 80 ? j.slice(0, 77) + '..."' : j;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `the string ${quote(v)}`;
  return `${typeof v} ${String(v)}`;
}

// ---------------------------------------------------------------------------
// Float conversions without a native type

/** A number → bf16 bits, rounded to nearest even (once); NaN stays a (quiet) NaN. */
function bf16Bits(v: number, scratch: DataView): number {
  scratch.setFloat32(0, v, true);
  const b = scratch.getUint32(0, true);
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) {
    return ((b >>> 16) | 0x0040) & 0xffff; // keep sign and payload top, force quiet
  }
  const f = scratch.getFloat32(0, true);
  if ((b & 0xffff) === 0x8000 && f !== v && Number.isFinite(f)) {
    // v rounded to f32 landed on a bf16 tie: decide by where v itself lies
    // (rounding twice, f64 → f32 → bf16, would otherwise break such ties wrongly).
    return (Math.abs(v) > Math.abs(f) ? (b >>> 16) + 1 : b >>> 16) & 0xffff;
  }
  const lsb = (b >>> 16) & 1;
  return ((b + 0x7fff + lsb) >>> 16) & 0xffff;
}

function bf16Value(bits: number, scratch: DataView): number {
  scratch.setUint32(0, bits << 16, true);
  return scratch.getFloat32(0, true);
}

// ---------------------------------------------------------------------------
// Duplicate-key scan (JSON.parse silently keeps the last duplicate)

/**
 * Finds the first duplicate key in any object of already-valid JSON text.
 * Iterative, so deep nesting cannot overflow the stack.
 */
function findDuplicateKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // '"'
      const start = i;
      i++;
      while (i < text.length && text.charCodeAt(i) !== 0x22) {
        if (text.charCodeAt(i) === 0x5c) i++; // skip the escaped char
        i++;
      }
      const top = stack[stack.length - 1];
      if (top && expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
    } else if (c === 0x7b) { // '{'
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) { // '['
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) { // '}' ']'
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) { // ','
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Reading

/**
 * Reads the header length `N` from the first 8 bytes of a file.
 *
 * @param prefix at least the first 8 bytes of the file
 * @returns N, checked against the 100 MB limit
 * @throws {RangeError} when there are fewer than 8 bytes or N is too large
 */
export function safetensorsHeaderLength(prefix: Uint8Array): number {
  if (prefix.length < 8) {
    throw new RangeError(
      `${READ}: the file has ${prefix.length} bytes, fewer than the 8-byte header length; ` +
        `it is truncated or not a safetensors file`,
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(SAFETENSORS_MAX_HEADER)) {
    throw new RangeError(
      `${READ}: header length N=${n} exceeds the ${SAFETENSORS_MAX_HEADER}-byte limit; ` +
        `the file is corrupt or not a safetensors file`,
    );
  }
  return Number(n);
}

/**
 * Parses and validates a header: JSON syntax, no duplicate keys, the
 * metadata map, every entry's dtype, shape and size, and that the entries'
 * byte ranges tile the data buffer exactly (no overlap, hole, or trailing
 * bytes).
 *
 * @param header the N header bytes (bytes 8..8+N of the file)
 * @param dataLength the length of the data buffer (file length − 8 − N)
 * @returns the validated header (`dataStart` is 8 + N)
 * @throws {TypeError} for bad UTF-8/JSON, wrong value kinds, unknown dtypes, bad shapes
 * @throws {RangeError} for size mismatches and offsets that do not tile the buffer
 */
export function parseSafetensorsHeader(header: Uint8Array, dataLength: number): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(header);
  } catch {
    throw new TypeError(`${READ}: the ${header.length}-byte header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TypeError(
      `${READ}: the header is not valid JSON (${(e as Error).message}); ` +
        `it starts with ${quote(text.slice(0, 40))}`,
    );
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new TypeError(`${READ}: the header must be a JSON object, got ${describe(json)}`);
  }
  const dup = findDuplicateKey(text);
  if (dup !== undefined) {
    throw new TypeError(`${READ}: the header has the key ${quote(dup)} more than once`);
  }
  const obj = json as Record<string, unknown>;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const name of Object.keys(obj)) {
    const v = obj[name];
    if (name === META) {
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        throw new TypeError(`${READ}: "${META}" must be an object of strings, got ${describe(v)}`);
      }
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== "string") {
          throw new TypeError(
            `${READ}: "${META}" must map strings to strings, but ${quote(k)} is ${describe(s)}`,
          );
        }
        Object.defineProperty(metadata, k, {
          value: s,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      continue;
    }
    entries.push(parseEntry(name, v, dataLength));
  }
  checkTiling(entries, dataLength);
  return { dataStart: 8 + header.length, entries, metadata };
}

function parseEntry(name: string, v: unknown, dataLength: number): SafetensorsEntry {
  const at = `tensor ${quote(name)}`;
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new TypeError(
      `${READ}: ${at} must be an object {dtype, shape, data_offsets}, got ${describe(v)}`,
    );
  }
  const e = v as Record<string, unknown>;
  const dtype = e.dtype;
  if (typeof dtype !== "string") {
    throw new TypeError(`${READ}: ${at} has dtype ${describe(dtype)}; expected a string`);
  }
  if (!isSafetensorsDType(dtype)) {
    if (UNSUPPORTED.has(dtype)) {
      throw new TypeError(
        `${READ}: ${at} has dtype ${dtype}, which this reader does not convert; ` +
          `supported: ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(", ")}`,
      );
    }
    throw new TypeError(
      `${READ}: ${at} has unknown dtype ${quote(dtype)}; ` +
        `expected one of ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(", ")}`,
    );
  }
  const shape = e.shape;
  if (!Array.isArray(shape)) {
    throw new TypeError(`${READ}: ${at} has shape ${describe(shape)}; expected an array`);
  }
  let count = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new TypeError(
        `${READ}: ${at} has shape ${JSON.stringify(shape).slice(0, 80)}; ` +
          `sizes must be non-negative integers`,
      );
    }
    count *= d;
  }
  const size = SAFETENSORS_DTYPE_SIZE[dtype];
  const bytes = count * size;
  if (!Number.isSafeInteger(bytes)) {
    throw new RangeError(
      `${READ}: ${at} of shape ${fmtShape(shape)} is too large (${count} elements)`,
    );
  }
  const off = e.data_offsets;
  if (
    !Array.isArray(off) || off.length !== 2 ||
    !off.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0)
  ) {
    throw new TypeError(
      `${READ}: ${at} has data_offsets ${JSON.stringify(off)?.slice(0, 80)}; ` +
        `expected [begin, end] with non-negative integers`,
    );
  }
  const [b, end] = off as [number, number];
  if (end < b) {
    throw new RangeError(`${READ}: ${at} has data_offsets [${b}, ${end}] with end before begin`);
  }
  if (end > dataLength) {
    throw new RangeError(
      `${READ}: ${at} has data_offsets [${b}, ${end}] past the end of the ${dataLength}-byte ` +
        `data buffer; the file is truncated or corrupt`,
    );
  }
  if (end - b !== bytes) {
    throw new RangeError(
      `${READ}: ${at} is ${dtype} of shape ${fmtShape(shape)}, which needs ${bytes} bytes, ` +
        `but its data_offsets [${b}, ${end}] span ${end - b}`,
    );
  }
  return Object.freeze({
    name,
    dtype,
    shape: Object.freeze([...shape as number[]]),
    offsets: Object.freeze([b, end] as [number, number]),
  });
}

function checkTiling(entries: readonly SafetensorsEntry[], dataLength: number): void {
  const sorted = [...entries].sort((x, y) =>
    x.offsets[0] - y.offsets[0] || x.offsets[1] - y.offsets[1]
  );
  let pos = 0;
  let prev: SafetensorsEntry | undefined;
  for (const e of sorted) {
    const [b, end] = e.offsets;
    if (b > pos) {
      throw new RangeError(
        `${READ}: bytes [${pos}, ${b}) of the data buffer belong to no tensor ` +
          `(a hole before ${quote(e.name)}); files must have no unused bytes`,
      );
    }
    if (b < pos) {
      throw new RangeError(
        `${READ}: tensors ${quote(prev!.name)} [${prev!.offsets.join(", ")}] and ` +
          `${quote(e.name)} [${b}, ${end}] overlap`,
      );
    }
    pos = end;
    prev = e;
  }
  if (pos !== dataLength) {
    throw new RangeError(
      `${READ}: ${dataLength - pos} trailing bytes after the last tensor ` +
        `(tensors end at ${pos}, the data buffer has ${dataLength} bytes)`,
    );
  }
}

/**
 * Validates a whole file's header without converting its tensors.
 *
 * @param bytes the file's bytes
 * @returns the header, with `dataStart` set to 8 + N
 * @throws {TypeError|RangeError} for any malformed file (see {@link decodeSafetensors})
 */
export function decodeSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  const n = safetensorsHeaderLength(bytes);
  if (8 + n > bytes.length) {
    throw new RangeError(
      `${READ}: header length N=${n} needs ${8 + n} bytes but the file has ${bytes.length}; ` +
        `it is truncated`,
    );
  }
  return parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n);
}

/**
 * Converts one tensor's raw little-endian bytes to a host array.
 *
 * @param entry the tensor's validated header entry
 * @param raw exactly its bytes (`offsets[1] − offsets[0]` of them)
 * @returns the host array (see {@link decodeSafetensors} for the dtype mapping)
 * @throws {RangeError} when a U64/I64 value does not fit u32/i32
 */
export function decodeSafetensorsTensor(entry: SafetensorsEntry, raw: Uint8Array): NDArray {
  const { name, dtype, shape } = entry;
  const size = SAFETENSORS_DTYPE_SIZE[dtype];
  if (raw.length !== entry.offsets[1] - entry.offsets[0]) {
    throw new RangeError(
      `${READ}: tensor ${quote(name)} needs ${entry.offsets[1] - entry.offsets[0]} bytes, ` +
        `got ${raw.length}`,
    );
  }
  const n = raw.length / size;
  // Copy into a fresh, aligned buffer: the tensor may start at any byte.
  const copy = raw.slice();
  const dv = new DataView(copy.buffer);
  const native = LITTLE_ENDIAN;
  let data: ArrayData;
  let dt: DType;
  switch (dtype) {
    case "F32":
      dt = "f32";
      data = native ? new Float32Array(copy.buffer) : Float32Array.from(
        { length: n },
        (_, i) => dv.getFloat32(4 * i, true),
      );
      break;
    case "F64":
      dt = "f32"; // no f64 dtype: keep the exact values in a Float64Array
      data = native ? new Float64Array(copy.buffer) : Float64Array.from(
        { length: n },
        (_, i) => dv.getFloat64(8 * i, true),
      );
      break;
    case "F16": {
      dt = "f16";
      const d = new Float32Array(n);
      for (let i = 0; i < n; i++) d[i] = dv.getFloat16(2 * i, true);
      data = d;
      break;
    }
    case "BF16": {
      dt = "f32";
      const d = new Float32Array(n);
      const s = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) d[i] = bf16Value(dv.getUint16(2 * i, true), s);
      data = d;
      break;
    }
    case "I32":
      dt = "i32";
      data = native
        ? new Int32Array(copy.buffer)
        : Int32Array.from({ length: n }, (_, i) => dv.getInt32(4 * i, true));
      break;
    case "I16":
      dt = "i32";
      data = Int32Array.from({ length: n }, (_, i) => dv.getInt16(2 * i, true));
      break;
    case "I8":
      dt = "i32";
      data = Int32Array.from({ length: n }, (_, i) => dv.getInt8(i));
      break;
    case "U32":
      dt = "u32";
      data = native
        ? new Uint32Array(copy.buffer)
        : Uint32Array.from({ length: n }, (_, i) => dv.getUint32(4 * i, true));
      break;
    case "U16":
      dt = "u32";
      data = Uint32Array.from({ length: n }, (_, i) => dv.getUint16(2 * i, true));
      break;
    case "U8":
      dt = "u32";
      data = Uint32Array.from(copy);
      break;
    case "BOOL":
      dt = "bool";
      data = copy.map((b) => (b !== 0 ? 1 : 0));
      break;
    case "I64": {
      dt = "i32";
      const d = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(8 * i, true);
        if (v < -2147483648n || v > 2147483647n) {
          throw new RangeError(
            `${READ}: tensor ${quote(name)} (I64) has value ${v} at index ${i}, outside the ` +
              `i32 range this library computes in`,
          );
        }
        d[i] = Number(v);
      }
      data = d;
      break;
    }
    case "U64": {
      dt = "u32";
      const d = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigUint64(8 * i, true);
        if (v > 4294967295n) {
          throw new RangeError(
            `${READ}: tensor ${quote(name)} (U64) has value ${v} at index ${i}, outside the ` +
              `u32 range this library computes in`,
          );
        }
        d[i] = Number(v);
      }
      data = d;
      break;
    }
  }
  return Object.freeze({ dtype: dt, shape, data });
}

/**
 * Decodes a safetensors file.
 *
 * dtype mapping: F32 → f32 (Float32Array); F16 → f16 (Float32Array of the
 * exact f16 values); BF16 → f32; F64 → f32 with the exact values kept in a
 * Float64Array; I32/I16/I8 → i32; U32/U16/U8 → u32 (Uint32Array); BOOL →
 * bool (Uint8Array of 0/1); I64/U64 → i32/u32, range-checked. `dtypes` in
 * the result records the file dtype so a re-encode can keep it.
 *
 * @param bytes the whole file
 * @returns tensors, metadata and the file dtype of each tensor
 * @throws {TypeError} for a bad header: invalid UTF-8/JSON, not an object, duplicate
 *   keys, `__metadata__` not string→string, unknown dtype, bad shape or offsets kind
 * @throws {RangeError} for a bad length, N over 100 MB, size mismatch, offsets out
 *   of range, overlapping, leaving holes or trailing bytes, 64-bit values out of range
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsContents {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${READ}: expected a Uint8Array, got ${describe(bytes)}`);
  }
  const h = decodeSafetensorsHeader(bytes);
  const pairs: [string, NDArray][] = [];
  const dtypes: [string, SafetensorsDType][] = [];
  for (const e of h.entries) {
    const raw = bytes.subarray(h.dataStart + e.offsets[0], h.dataStart + e.offsets[1]);
    pairs.push([e.name, decodeSafetensorsTensor(e, raw)]);
    dtypes.push([e.name, e.dtype]);
  }
  // fromEntries defines own properties, so a tensor named "__proto__" stays a tensor.
  return {
    tensors: Object.fromEntries(pairs),
    metadata: { ...h.metadata },
    dtypes: Object.fromEntries(dtypes),
  };
}

// ---------------------------------------------------------------------------
// Writing

function writeValues(
  name: string,
  a: NDArray,
  dtype: SafetensorsDType,
  out: Uint8Array,
): void {
  const d = a.data;
  const n = d.length;
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (LITTLE_ENDIAN) {
    // Same representation: copy the bytes (keeps NaN payloads bit-exact).
    if (
      (dtype === "F32" && d instanceof Float32Array) ||
      (dtype === "F64" && d instanceof Float64Array) ||
      (dtype === "I32" && d instanceof Int32Array) ||
      (dtype === "U32" && d instanceof Uint32Array) ||
      (dtype === "U8" && d instanceof Uint8Array && a.dtype !== "bool")
    ) {
      out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      return;
    }
  }
  const range = INT_RANGE[dtype];
  if (range) {
    for (let i = 0; i < n; i++) {
      const v = d[i]!;
      if (!Number.isInteger(v) || v < range[0] || v > range[1]) {
        throw new RangeError(
          `${WRITE}: tensor ${quote(name)} has value ${v} at index ${i}; ` +
            `${dtype} holds integers in [${range[0]}, ${range[1]}]`,
        );
      }
    }
  }
  const s = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < n; i++) {
    const v = d[i]!;
    switch (dtype) {
      case "F64":
        dv.setFloat64(8 * i, v, true);
        break;
      case "F32":
        dv.setFloat32(4 * i, v, true);
        break;
      case "F16":
        dv.setFloat16(2 * i, v, true);
        break;
      case "BF16":
        dv.setUint16(2 * i, bf16Bits(v, s), true);
        break;
      case "BOOL":
        dv.setUint8(i, v !== 0 && !Number.isNaN(v) ? 1 : 0);
        break;
      case "U8":
        dv.setUint8(i, v);
        break;
      case "I8":
        dv.setInt8(i, v);
        break;
      case "U16":
        dv.setUint16(2 * i, v, true);
        break;
      case "I16":
        dv.setInt16(2 * i, v, true);
        break;
      case "U32":
        dv.setUint32(4 * i, v, true);
        break;
      case "I32":
        dv.setInt32(4 * i, v, true);
        break;
      case "U64":
        dv.setBigUint64(8 * i, BigInt(v), true);
        break;
      case "I64":
        dv.setBigInt64(8 * i, BigInt(v), true);
        break;
    }
  }
}

/**
 * Encodes tensors and metadata as a safetensors file.
 *
 * Tensors are laid out by decreasing element size, then name, and the
 * header is padded with spaces to a multiple of 8 bytes, so every tensor
 * is aligned to its element size in the file (as the reference writer does).
 *
 * @param tensors tensors by name (the name `__metadata__` is reserved)
 * @param metadata string→string metadata stored under `__metadata__` (omitted when empty)
 * @param options file dtype overrides per tensor
 * @returns the file's bytes
 * @throws {TypeError} for a reserved name, non-string metadata, or a bad array/dtype
 * @throws {RangeError} when a value does not fit an integer file dtype
 * @example
 * ```ts
 * import { array } from "../ir/array.ts";
 * const bytes = encodeSafetensors({ w: array([0.1, 0.2]) }, {}, { dtypes: { w: "BF16" } });
 * ```
 */
export function encodeSafetensors(
  tensors: Readonly<Record<string, NDArray>>,
  metadata: Readonly<Record<string, string>> = {},
  options: EncodeSafetensorsOptions = {},
): Uint8Array {
  if (tensors === null || typeof tensors !== "object") {
    throw new TypeError(`${WRITE}: tensors must be an object of arrays, got ${describe(tensors)}`);
  }
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
    throw new TypeError(
      `${WRITE}: metadata must be an object of strings, got ${describe(metadata)}`,
    );
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") {
      throw new TypeError(
        `${WRITE}: metadata ${quote(k)} is ${describe(v)}; metadata values must be strings ` +
          `(use JSON.stringify for structured values)`,
      );
    }
  }
  const overrides = options.dtypes ?? {};
  for (const k of Object.keys(overrides)) {
    if (!Object.hasOwn(tensors, k)) {
      throw new TypeError(`${WRITE}: a dtype is given for ${quote(k)}, which is not a tensor`);
    }
  }
  const items = Object.keys(tensors).map((name) => {
    if (name === META) {
      throw new TypeError(`${WRITE}: "${META}" is reserved and cannot name a tensor`);
    }
    const a = tensors[name]!;
    if (
      a === null || typeof a !== "object" || !Array.isArray(a.shape) ||
      !ArrayBuffer.isView(a.data)
    ) {
      throw new TypeError(`${WRITE}: tensor ${quote(name)} is not an NDArray {dtype, shape, data}`);
    }
    const fileDtype = Object.hasOwn(overrides, name)
      ? overrides[name]!
      : Object.hasOwn(DEFAULT_FILE_DTYPE, a.dtype)
      ? DEFAULT_FILE_DTYPE[a.dtype as DType]
      : undefined;
    if (fileDtype === undefined || !isSafetensorsDType(fileDtype)) {
      throw new TypeError(
        `${WRITE}: tensor ${quote(name)} has dtype ${quote(String(a.dtype))} / file dtype ` +
          `${quote(String(fileDtype))}; expected one of ${
            Object.keys(SAFETENSORS_DTYPE_SIZE).join(", ")
          }`,
      );
    }
    let count = 1;
    for (const d of a.shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new TypeError(
          `${WRITE}: tensor ${quote(name)} has shape ${fmtShape(a.shape)}; ` +
            `sizes must be non-negative integers`,
        );
      }
      count *= d;
    }
    if (a.data.length !== count) {
      throw new TypeError(
        `${WRITE}: tensor ${quote(name)} of shape ${fmtShape(a.shape)} needs ${count} values, ` +
          `has ${a.data.length}`,
      );
    }
    return { name, a, dtype: fileDtype, bytes: count * SAFETENSORS_DTYPE_SIZE[fileDtype] };
  });
  items.sort((x, y) =>
    SAFETENSORS_DTYPE_SIZE[y.dtype] - SAFETENSORS_DTYPE_SIZE[x.dtype] ||
    (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)
  );
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[META] = { ...metadata };
  let pos = 0;
  for (const it of items) {
    Object.defineProperty(header, it.name, {
      value: { dtype: it.dtype, shape: [...it.a.shape], data_offsets: [pos, pos + it.bytes] },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    pos += it.bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  if (n > SAFETENSORS_MAX_HEADER) {
    throw new RangeError(
      `${WRITE}: the header would be ${n} bytes, over the ${SAFETENSORS_MAX_HEADER}-byte limit ` +
        `readers accept; store less metadata`,
    );
  }
  const out = new Uint8Array(8 + n + pos);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let off = 8 + n;
  for (const it of items) {
    writeValues(it.name, it.a, it.dtype, out.subarray(off, off + it.bytes));
    off += it.bytes;
  }
  return out;
}
