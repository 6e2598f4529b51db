/**
 * Seeded, stateless random numbers for data generation and batching.
 *
 * A counter-based generator (a hash of seed and indices) makes every batch a
 * pure function of (seed, step, row), so training can resume at any step
 * and produce the same batches.
 *
 * @module
 */

/**
 * Mixes 32-bit words into one well-distributed 32-bit word (murmur3
 * finaliser over a running combination).
 *
 * @param words integers (only their low 32 bits are used)
 * @returns a hash in [0, 2^32)
 */
export function hash32(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    h = (h + 0x6d2b79f5) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A uniform number in [0, 1) with 53 random bits, determined by the words.
 *
 * @param words integers (seed, step, index, ...)
 * @returns a float in [0, 1)
 */
export function uniformAt(...words: number[]): number {
  const hi = hash32(...words, 0x1234567) >>> 5; // 27 bits
  const lo = hash32(...words, 0x7654321) >>> 6; // 26 bits
  return (hi * 67108864 + lo) / 9007199254740992;
}

/**
 * A seeded stream of uniforms in [0, 1) (mulberry32 with a hashed seed).
 *
 * @param seed any integer
 * @returns a function giving the next number
 */
export function uniformStream(seed: number): () => number {
  return mulberry32(hash32(seed, 0x5eed));
}

/**
 * mulberry32: a small, fast 32-bit PRNG, seeded directly (no hashing), the
 * one generator behind every seeded stream in normix.
 *
 * @param seed a 32-bit seed
 * @returns a function giving uniform numbers in [0, 1)
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
