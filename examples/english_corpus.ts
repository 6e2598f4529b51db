/**
 * Opt-in real English corpus for byte-level language modelling.
 *
 * The text comes from the npm package `nlp-corpus` (MIT; ~100k English
 * sentences, ~8.9 MB, from varied sources), which ships its data in the
 * package, so no download happens at run time beyond the npm install. The
 * library itself never imports it: `loadEnglishTokens()` hands plain text to
 * the pure `byteEncode`/`splitTokens` from lib/data.
 *
 * Run: `deno run --allow-read --allow-env examples/english_corpus.ts`
 * (nlp-corpus reads its JSON files from its own package directory).
 *
 * @module
 */

import { all } from "npm:nlp-corpus@^4.4.0";
import { byteEncode, splitTokens, type TokenSplit, unigramEntropy } from "../lib/data/mod.ts";

/**
 * The corpus as one text, sentences joined by newlines.
 *
 * @param maxChars keep at most this many UTF-16 units (default: all, ~8.9M)
 * @returns the text
 */
export function loadEnglishText(maxChars: number = Infinity): string {
  const sentences = all() as string[];
  let text = "";
  for (const s of sentences) {
    if (text.length >= maxChars) break;
    text += s + "\n";
  }
  return text.length > maxChars ? text.slice(0, maxChars) : text;
}

/**
 * Byte tokens of the corpus, split into train and validation parts.
 *
 * @param maxChars text length limit (see {@link loadEnglishText})
 * @param valFraction validation fraction (default 0.1)
 * @returns the split
 */
export function loadEnglishTokens(maxChars?: number, valFraction = 0.1): TokenSplit {
  return splitTokens(byteEncode(loadEnglishText(maxChars)), valFraction);
}

if (import.meta.main) {
  const { train, val } = loadEnglishTokens(2_000_000);
  console.log(`train ${train.length} bytes, val ${val.length} bytes`);
  console.log(
    `byte unigram entropy ${unigramEntropy(train, 256).toFixed(3)} nats ` +
      `(a model must beat this to use context)`,
  );
  console.log(new TextDecoder().decode(Uint8Array.from(val.subarray(0, 200))));
}
