/**
 * Data: the byte-level tokenizer, the built-in synthetic Markov corpus with
 * a known entropy rate, and deterministic batching with a train/val split.
 *
 * Everything here is pure (no file access); `readByteCorpus` in lib/io reads
 * a text file the user names.
 *
 * @module
 */
export * from "./tokenizer.ts";
export * from "./markov.ts";
export * from "./batch.ts";
