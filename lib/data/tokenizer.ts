/**
 * Byte-level tokenizer: each UTF-8 byte is a token (vocabulary 256).
 *
 * Any text round-trips: `decode(encode(s)) === s` for every well-formed
 * string (a lone UTF-16 surrogate becomes U+FFFD, as UTF-8 cannot hold it).
 * Decoding a sequence that is not valid UTF-8 (a model's sample may be)
 * gives U+FFFD for the bad bytes instead of failing.
 *
 * @module
 */

/** A tokenizer: text ↔ token ids in [0, vocabSize). */
export interface Tokenizer {
  /** Number of distinct token ids. */
  readonly vocabSize: number;
  /**
   * Text to token ids.
   *
   * @param text any string
   * @returns the ids
   */
  encode(text: string): Int32Array;
  /**
   * Token ids to text.
   *
   * @param ids token ids in [0, vocabSize)
   * @returns the text
   */
  decode(ids: ArrayLike<number>): string;
}

/** Vocabulary size of {@link byteTokenizer}. */
export const BYTE_VOCAB_SIZE = 256;

/**
 * Encodes text as its UTF-8 bytes.
 *
 * @param text any string
 * @returns token ids in [0, 256)
 * @example
 * ```ts
 * byteEncode("hé"); // Int32Array [104, 195, 169]
 * ```
 */
export function byteEncode(text: string): Int32Array {
  if (typeof text !== "string") {
    throw new TypeError(`Cannot encode text: expected a string, got ${typeof text}`);
  }
  return Int32Array.from(new TextEncoder().encode(text));
}

/**
 * Decodes byte tokens as UTF-8 (invalid sequences become U+FFFD).
 *
 * @param ids token ids, each an integer in [0, 256)
 * @returns the text
 * @throws {RangeError} for an id outside [0, 256)
 */
export function byteDecode(ids: ArrayLike<number>): string {
  const bytes = new Uint8Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (!Number.isInteger(v) || v < 0 || v > 255) {
      throw new RangeError(
        `Cannot decode tokens: id ${v} at position ${i} is not a byte token (0..255)`,
      );
    }
    bytes[i] = v;
  }
  // ignoreBOM keeps a leading U+FEFF, so text that starts with one round-trips.
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
}

/** The byte-level tokenizer (vocabulary 256). */
export const byteTokenizer: Tokenizer = Object.freeze({
  vocabSize: BYTE_VOCAB_SIZE,
  encode: byteEncode,
  decode: byteDecode,
});
