/**
 * File helpers: atomic writes, safetensors files, checkpoints, byte corpora
 * and reports.
 *
 * These are the only functions in lib/ that touch the file system; they call
 * Deno APIs when invoked (never at import time), so they need
 * `--allow-read` / `--allow-write` for the paths the user passes.
 *
 * Every write goes through {@link writeFileAtomic}: the bytes go to a
 * temporary file in the same directory, are flushed to disk, and the file is
 * renamed over the target, so a crash or error never leaves a half-written
 * checkpoint or report where a good one was.
 *
 * @module
 */

import type { NDArray } from "../ir/array.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type EncodeSafetensorsOptions,
  parseSafetensorsHeader,
  type SafetensorsContents,
  type SafetensorsDType,
  type SafetensorsHeader,
  safetensorsHeaderLength,
} from "./safetensors.ts";
import { renderReportHtml, renderReportSvg, type ReportOptions } from "../report/render.ts";
import type { TrainingLog } from "../report/log.ts";

/** What {@link writeFileAtomic} writes: bytes, text (UTF-8), or a function producing either. */
export type AtomicData =
  | Uint8Array
  | string
  | (() => Uint8Array | string | Promise<Uint8Array | string>);

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Flush the data (and the directory entry) to disk before returning (default true). */
  readonly fsync?: boolean;
}

function pathText(p: string | URL): string {
  return typeof p === "string" ? p : p.href;
}

/** The temp sibling of a path (same directory, so the rename stays on one file system). */
function tempSibling(path: string | URL): { temp: string | URL; dir: string | URL } {
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
  if (path instanceof URL) {
    const base = decodeURIComponent(path.pathname.slice(path.pathname.lastIndexOf("/") + 1));
    return {
      temp: new URL(`./.${encodeURIComponent(base)}.${tag}.tmp`, path),
      dir: new URL("./", path),
    };
  }
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  const dir = cut >= 0 ? path.slice(0, cut + 1) : "";
  const base = path.slice(cut + 1);
  return { temp: `${dir}.${base}.${tag}.tmp`, dir: dir === "" ? "." : dir };
}

/**
 * Writes a file atomically: to a temporary file in the same directory, then
 * flushed (fsync) and renamed over `path`. When anything fails (including a
 * data function that throws), the temporary file is removed and an existing
 * file at `path` is left untouched.
 *
 * @param path the file to write (its directory must exist)
 * @param data bytes, text, or a (possibly async) function producing them
 * @param options `fsync: false` skips flushing (faster, less durable)
 * @returns when the file is in place
 * @throws {Error} `Cannot write file <path>: <why>`, with the original error as `cause`
 * @example
 * ```ts
 * await writeFileAtomic("out/report.html", () => renderReportHtml(log));
 * ```
 */
export async function writeFileAtomic(
  path: string | URL,
  data: AtomicData,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const fsync = options.fsync ?? true;
  const { temp, dir } = tempSibling(path);
  let file: Deno.FsFile | undefined;
  let created = false;
  try {
    const value = typeof data === "function" ? await data() : data;
    const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(`the data must be a Uint8Array or a string, got ${typeof bytes}`);
    }
    let mode: number | undefined;
    try {
      mode = (await Deno.stat(path)).mode ?? undefined;
    } catch {
      mode = undefined; // no existing file: default permissions
    }
    file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
    created = true;
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    if (fsync) await file.syncData();
    file.close();
    file = undefined;
    try {
      await Deno.chmod(temp, mode !== undefined ? mode & 0o7777 : 0o644);
    } catch {
      // chmod is not supported everywhere (Windows); the content matters more
    }
    await Deno.rename(temp, path);
    created = false;
    if (fsync) {
      // Persist the rename itself; not every platform can open a directory.
      try {
        const d = await Deno.open(dir, { read: true });
        try {
          await d.syncData();
        } finally {
          d.close();
        }
      } catch {
        // best effort
      }
    }
  } catch (e) {
    try {
      file?.close();
    } catch {
      // already closed
    }
    if (created) {
      try {
        await Deno.remove(temp);
      } catch {
        // nothing more can be done; the target is still intact
      }
    }
    throw new Error(
      `Cannot write file ${pathText(path)}: ${(e as Error)?.message ?? String(e)}; ` +
        `any existing file there is unchanged`,
      { cause: e },
    );
  }
}

/**
 * Reads and decodes a safetensors file.
 *
 * @param path the file
 * @returns tensors, metadata and file dtypes (see `decodeSafetensors`)
 * @throws {TypeError|RangeError} for a malformed file (`Cannot read safetensors: ...`)
 */
export async function readSafetensors(path: string | URL): Promise<SafetensorsContents> {
  const bytes = await Deno.readFile(path);
  try {
    return decodeSafetensors(bytes);
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) {
      const E = e instanceof TypeError ? TypeError : RangeError;
      throw new E(`${e.message} (file ${pathText(path)})`, { cause: e });
    }
    throw e;
  }
}

async function readExactly(file: Deno.FsFile, n: number, path: string | URL): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await file.read(buf.subarray(off));
    if (got === null) {
      throw new RangeError(
        `Cannot read safetensors: the file ends after ${off} of ${n} header bytes; it is ` +
          `truncated (file ${pathText(path)})`,
      );
    }
    off += got;
  }
  return buf;
}

/**
 * Reads and validates only the header of a safetensors file (names, dtypes,
 * shapes, offsets, metadata) without reading the tensor data: cheap even
 * for multi-gigabyte files.
 *
 * @param path the file
 * @returns the validated header (`dataStart` is where the data buffer begins)
 * @throws {TypeError|RangeError} for a malformed header (`Cannot read safetensors: ...`)
 */
export async function readSafetensorsHeader(path: string | URL): Promise<SafetensorsHeader> {
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    const prefix = await readExactly(file, Math.min(8, size), path);
    const n = safetensorsHeaderLength(prefix);
    if (8 + n > size) {
      throw new RangeError(
        `Cannot read safetensors: header length N=${n} needs ${8 + n} bytes but the file has ` +
          `${size}; it is truncated (file ${pathText(path)})`,
      );
    }
    return parseSafetensorsHeader(await readExactly(file, n, path), size - 8 - n);
  } finally {
    file.close();
  }
}

/**
 * Encodes tensors as safetensors and writes them atomically.
 *
 * @param path the file
 * @param tensors tensors by name
 * @param metadata string→string metadata
 * @param options file dtype overrides
 * @returns when the file is in place
 */
export async function writeSafetensors(
  path: string | URL,
  tensors: Readonly<Record<string, NDArray>>,
  metadata: Readonly<Record<string, string>> = {},
  options: EncodeSafetensorsOptions = {},
): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata, options);
  await writeFileAtomic(path, bytes);
}

/** What a checkpoint carries besides the parameters. */
export interface CheckpointInfo {
  /** The full model config, stored as JSON under metadata key `config`. */
  readonly config?: unknown;
  /** The variant name, metadata key `variant`. */
  readonly variant?: string;
  /** The training step, metadata key `step`. */
  readonly step?: number;
  /** Further tensors (e.g. optimizer moments); their names are listed under metadata `extra`. */
  readonly extra?: Readonly<Record<string, NDArray>>;
  /** More string metadata (keys `config`, `variant`, `step`, `extra`, `producer` are reserved). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** File dtype overrides per tensor name (e.g. `"BF16"` to halve the size). */
  readonly dtypes?: Readonly<Record<string, SafetensorsDType>>;
}

/** A loaded checkpoint. */
export interface Checkpoint {
  /** Model parameters by name. */
  readonly params: Record<string, NDArray>;
  /** Extra tensors (optimizer state), by name. */
  readonly extra: Record<string, NDArray>;
  /** The parsed config (undefined when the file has none). */
  readonly config: unknown;
  /** The variant name, when stored. */
  readonly variant?: string;
  /** The training step, when stored. */
  readonly step?: number;
  /** All metadata, as stored. */
  readonly metadata: Record<string, string>;
  /** The file dtype of every tensor. */
  readonly dtypes: Record<string, SafetensorsDType>;
}

const RESERVED = ["config", "variant", "step", "extra", "producer"];

/**
 * Builds the bytes of a checkpoint (pure; {@link saveCheckpoint} writes them).
 *
 * @param params model parameters by name (see spec §16 for the names)
 * @param info config, variant, step, extra tensors, metadata, dtypes
 * @returns safetensors bytes
 * @throws {TypeError} for a name in both `params` and `extra`, reserved metadata keys,
 *   or a config that is not JSON-serialisable
 * @throws {RangeError} for a step that is not a non-negative integer
 */
export function encodeCheckpoint(
  params: Readonly<Record<string, NDArray>>,
  info: CheckpointInfo = {},
): Uint8Array {
  const what = "Cannot save checkpoint";
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(info.metadata ?? {})) {
    if (RESERVED.includes(k)) {
      throw new TypeError(
        `${what}: metadata key "${k}" is reserved; pass it as an option or rename it`,
      );
    }
    meta[k] = v;
  }
  meta.producer = "normix";
  if (info.config !== undefined) {
    let json: string | undefined;
    try {
      json = JSON.stringify(info.config);
    } catch (e) {
      throw new TypeError(`${what}: config is not JSON-serialisable (${(e as Error).message})`);
    }
    if (json === undefined) {
      throw new TypeError(`${what}: config is not JSON-serialisable (got ${typeof info.config})`);
    }
    meta.config = json;
  }
  if (info.variant !== undefined) {
    if (typeof info.variant !== "string") {
      throw new TypeError(`${what}: variant must be a string, got ${typeof info.variant}`);
    }
    meta.variant = info.variant;
  }
  if (info.step !== undefined) {
    if (!Number.isSafeInteger(info.step) || info.step < 0) {
      throw new RangeError(`${what}: step must be a non-negative integer, got ${info.step}`);
    }
    meta.step = String(info.step);
  }
  const all: Record<string, NDArray> = Object.fromEntries(Object.entries(params));
  const extra = Object.keys(info.extra ?? {});
  for (const k of extra) {
    if (Object.hasOwn(all, k)) {
      throw new TypeError(
        `${what}: "${k}" names both a parameter and an extra tensor; ` +
          `prefix extra tensors (e.g. "adam.m.${k}")`,
      );
    }
    Object.defineProperty(all, k, {
      value: info.extra![k],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  if (extra.length > 0) meta.extra = JSON.stringify(extra.sort());
  return encodeSafetensors(all, meta, { dtypes: info.dtypes });
}

/**
 * Splits decoded safetensors contents into a checkpoint (pure).
 *
 * @param contents the decoded file
 * @returns params, extra tensors, parsed config, variant and step
 * @throws {TypeError} when `config` or `extra` metadata is not valid JSON
 * @throws {RangeError} when `step` is not a non-negative integer
 */
export function decodeCheckpoint(contents: SafetensorsContents): Checkpoint {
  const what = "Cannot load checkpoint";
  const { tensors, metadata, dtypes } = contents;
  let config: unknown = undefined;
  if (metadata.config !== undefined) {
    try {
      config = JSON.parse(metadata.config);
    } catch (e) {
      throw new TypeError(`${what}: metadata "config" is not valid JSON (${(e as Error).message})`);
    }
  }
  let step: number | undefined;
  if (metadata.step !== undefined) {
    step = /^\d+$/.test(metadata.step) ? Number(metadata.step) : NaN;
    if (!Number.isSafeInteger(step)) {
      throw new RangeError(
        `${what}: metadata "step" is ${JSON.stringify(metadata.step)}; expected an integer`,
      );
    }
  }
  let extraNames: string[] = [];
  if (metadata.extra !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(metadata.extra);
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === "string")) {
      throw new TypeError(`${what}: metadata "extra" must be a JSON array of tensor names`);
    }
    extraNames = parsed as string[];
    for (const k of extraNames) {
      if (!Object.hasOwn(tensors, k)) {
        throw new TypeError(`${what}: metadata "extra" lists "${k}", which is not in the file`);
      }
    }
  }
  const isExtra = new Set(extraNames);
  const entries = Object.entries(tensors);
  return {
    params: Object.fromEntries(entries.filter(([k]) => !isExtra.has(k))),
    extra: Object.fromEntries(entries.filter(([k]) => isExtra.has(k))),
    config,
    ...(metadata.variant !== undefined ? { variant: metadata.variant } : {}),
    ...(step !== undefined ? { step } : {}),
    metadata,
    dtypes,
  };
}

/**
 * Saves a checkpoint atomically as safetensors: parameters and extra
 * tensors, with `config` (JSON), `variant`, `step` and `extra` (the JSON list
 * of extra tensor names) in `__metadata__`.
 *
 * @param path the file (e.g. `ckpt/pre_ln.safetensors`)
 * @param params model parameters by name
 * @param info config, variant, step, extra tensors, metadata, dtypes
 * @returns when the file is in place
 * @example
 * ```ts
 * await saveCheckpoint("run/model.safetensors", params, {
 *   config, variant: "pre_ln", step: 1000, extra: { "adam.m.tok_emb.weight": m },
 * });
 * ```
 */
export async function saveCheckpoint(
  path: string | URL,
  params: Readonly<Record<string, NDArray>>,
  info: CheckpointInfo = {},
): Promise<void> {
  await writeFileAtomic(path, encodeCheckpoint(params, info));
}

/**
 * Loads a checkpoint written by {@link saveCheckpoint} (or any safetensors
 * file: then all tensors are params and config is undefined).
 *
 * @param path the file
 * @returns params, extra tensors, config, variant, step, metadata, dtypes
 */
export async function loadCheckpoint(path: string | URL): Promise<Checkpoint> {
  return decodeCheckpoint(await readSafetensors(path));
}

/**
 * Reads a text file as byte-level tokens (one token per UTF-8 byte), the
 * tokenisation `byteTokenizer` uses.
 *
 * @param path a text file the user names (needs `--allow-read` for it)
 * @param maxBytes read at most this many bytes (default: all)
 * @returns token ids in [0, 256)
 */
export async function readByteCorpus(path: string | URL, maxBytes?: number): Promise<Int32Array> {
  const bytes = await Deno.readFile(path);
  const n = maxBytes === undefined ? bytes.length : Math.min(bytes.length, maxBytes);
  return Int32Array.from(bytes.subarray(0, n));
}

/**
 * Writes a training report atomically: HTML (with inline SVG and the JSON
 * series) for `.html`/`.htm`, SVG for `.svg`, the raw log for `.json`.
 *
 * @param path the report file
 * @param log the training log
 * @param options title, optimum and panel choices
 * @returns when the file is in place
 * @throws {TypeError} for another file extension
 */
export async function saveReport(
  path: string | URL,
  log: TrainingLog,
  options: ReportOptions = {},
): Promise<void> {
  const p = pathText(path).toLowerCase();
  let render: () => string;
  if (p.endsWith(".html") || p.endsWith(".htm")) render = () => renderReportHtml(log, options);
  else if (p.endsWith(".svg")) render = () => renderReportSvg(log, options);
  else if (p.endsWith(".json")) render = () => JSON.stringify(log);
  else {
    throw new TypeError(
      `Cannot save report ${pathText(path)}: unknown extension; use .html, .svg or .json`,
    );
  }
  await writeFileAtomic(path, render);
}
