/**
 * The built-in corpus: a seeded, sparse random Markov chain whose entropy
 * rate is known exactly, so a report can show how far a model's loss is
 * from the best any model can do.
 *
 * Each state (the last token for order 1, the last two for order 2) has
 * `branching` successor tokens with Dirichlet(1) probabilities. Successors
 * always include `last+1` and `last+2` (mod vocab): this makes one recurrent
 * class that is aperiodic (it has cycles of lengths V and V−1), so the
 * stationary distribution π is unique and the entropy rate is
 * `H = Σ_s π(s) · H(P(·|s))` nats/token. π is computed by power iteration
 * to float64 precision. Samples start from π, so every window of the corpus
 * is stationary.
 *
 * @example
 * ```ts
 * const chain = markovChain({ vocab: 32, order: 2, branching: 4, seed: 1 });
 * const tokens = sampleMarkov(chain, 100_000, 7);
 * console.log(markovEntropyRate(chain), conditionalEntropy(tokens, 32, 2));
 * ```
 *
 * @module
 */

import { uniformStream } from "./rng.ts";

/** Parameters of a synthetic Markov language. */
export interface MarkovSpec {
  /** Number of token ids, ≥ 3 and ≤ 256 (default 32). */
  readonly vocab?: number;
  /** How many previous tokens the next one depends on: 1 or 2 (default 2). */
  readonly order?: 1 | 2;
  /** Successors per state, in [2, vocab] (default 4). */
  readonly branching?: number;
  /** Seed of the transition table (default 0). */
  readonly seed?: number;
}

/** A generated Markov language. */
export interface MarkovChain {
  /** Number of token ids. */
  readonly vocab: number;
  /** Context length of the chain (1 or 2). */
  readonly order: 1 | 2;
  /** Successors per state. */
  readonly branching: number;
  /** Seed the table was made from. */
  readonly seed: number;
  /** Successor token ids, `[states × branching]`; state = last token (order 1) or prev·V + last. */
  readonly next: Int32Array;
  /** Successor probabilities, `[states × branching]`, each row sums to 1. */
  readonly prob: Float64Array;
  /** Stationary distribution over states. */
  readonly stationary: Float64Array;
}

function plogp(p: number): number {
  return p > 0 ? -p * Math.log(p) : 0;
}

/**
 * Makes a seeded sparse random Markov language (deterministic in its spec).
 *
 * @param spec vocab, order, branching and seed
 * @returns the chain with its stationary distribution
 * @throws {RangeError} for sizes out of range
 */
export function markovChain(spec: MarkovSpec = {}): MarkovChain {
  const V = spec.vocab ?? 32, order = spec.order ?? 2, k = spec.branching ?? 4;
  const seed = spec.seed ?? 0;
  const what = "Cannot make a Markov corpus";
  if (!Number.isInteger(V) || V < 3 || V > 256) {
    throw new RangeError(`${what}: vocab ${V} must be an integer in [3, 256]`);
  }
  if (order !== 1 && order !== 2) {
    throw new RangeError(`${what}: order ${order} must be 1 or 2`);
  }
  if (!Number.isInteger(k) || k < 2 || k > V) {
    throw new RangeError(`${what}: branching ${k} must be an integer in [2, vocab=${V}]`);
  }
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`${what}: seed ${seed} must be an integer`);
  }
  const S = order === 1 ? V : V * V;
  const next = new Int32Array(S * k);
  const prob = new Float64Array(S * k);
  const rand = uniformStream(seed);
  const used = new Uint8Array(V);
  for (let s = 0; s < S; s++) {
    const last = s % V;
    used.fill(0);
    const row = s * k;
    next[row] = (last + 1) % V;
    next[row + 1] = (last + 2) % V;
    used[next[row]!] = 1;
    used[next[row + 1]!] = 1;
    for (let j = 2; j < k; j++) {
      // Rejection-sample a fresh successor; k ≤ V guarantees one exists.
      let t: number;
      do t = Math.floor(rand() * V); while (used[t]);
      used[t] = 1;
      next[row + j] = t;
    }
    // Dirichlet(1): normalised exponentials (u in (0,1], so weights are finite and > 0).
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const w = -Math.log(1 - rand());
      prob[row + j] = w > 0 ? w : Number.MIN_VALUE;
      sum += prob[row + j]!;
    }
    for (let j = 0; j < k; j++) prob[row + j]! /= sum;
  }
  const stationary = stationaryOf(V, order, k, next, prob);
  return Object.freeze({ vocab: V, order, branching: k, seed, next, prob, stationary });
}

function stateAfter(V: number, order: 1 | 2, s: number, tok: number): number {
  return order === 1 ? tok : (s % V) * V + tok;
}

function stationaryOf(
  V: number,
  order: 1 | 2,
  k: number,
  next: Int32Array,
  prob: Float64Array,
): Float64Array {
  const S = order === 1 ? V : V * V;
  let pi = new Float64Array(S).fill(1 / S);
  let nxt = new Float64Array(S);
  for (let it = 0; it < 200_000; it++) {
    nxt.fill(0);
    for (let s = 0; s < S; s++) {
      const m = pi[s]!;
      if (m === 0) continue;
      for (let j = 0; j < k; j++) {
        const t = stateAfter(V, order, s, next[s * k + j]!);
        nxt[t]! += m * prob[s * k + j]!;
      }
    }
    let sum = 0, diff = 0;
    for (let s = 0; s < S; s++) sum += nxt[s]!;
    for (let s = 0; s < S; s++) {
      nxt[s]! /= sum;
      diff += Math.abs(nxt[s]! - pi[s]!);
    }
    [pi, nxt] = [nxt, pi];
    if (diff < 1e-15) return pi;
  }
  // Unreachable for the chains markovChain builds (aperiodic, one recurrent class).
  throw new RangeError("Cannot make a Markov corpus: the stationary distribution did not converge");
}

/**
 * The exact entropy rate of the chain: the lowest expected loss (nats per
 * token) any model can reach given the full past.
 *
 * @param chain a chain from {@link markovChain}
 * @returns `Σ_s π(s) · H(next | s)` in nats/token
 */
export function markovEntropyRate(chain: MarkovChain): number {
  const { branching: k, prob, stationary } = chain;
  let h = 0;
  for (let s = 0; s < stationary.length; s++) {
    let hs = 0;
    for (let j = 0; j < k; j++) hs += plogp(prob[s * k + j]!);
    h += stationary[s]! * hs;
  }
  return h;
}

/**
 * Stationary probability of each single token.
 *
 * @param chain a chain
 * @returns `P(x)` for x in [0, vocab)
 */
export function markovUnigram(chain: MarkovChain): Float64Array {
  const p = new Float64Array(chain.vocab);
  for (let s = 0; s < chain.stationary.length; s++) p[s % chain.vocab]! += chain.stationary[s]!;
  return p;
}

/**
 * Entropy of the stationary single-token distribution (the loss of the best
 * model that ignores context).
 *
 * @param chain a chain
 * @returns nats/token
 */
export function markovUnigramEntropy(chain: MarkovChain): number {
  let h = 0;
  for (const p of markovUnigram(chain)) h += plogp(p);
  return h;
}

/**
 * The lowest achievable mean loss over the positions of a window of
 * `seqLen` tokens that starts fresh: position 0 can only use the unigram
 * distribution, position 1 of an order-2 chain has one token of context,
 * the rest reach the entropy rate. This is the optimum to compare a
 * training loss (averaged over positions) with.
 *
 * @param chain a chain
 * @param seqLen window length T ≥ 1
 * @returns nats/token
 */
export function markovOptimalLoss(chain: MarkovChain, seqLen: number): number {
  if (!Number.isInteger(seqLen) || seqLen < 1) {
    throw new RangeError(`Cannot compute the optimal loss: seqLen ${seqLen} must be ≥ 1`);
  }
  const h0 = markovUnigramEntropy(chain);
  const rate = markovEntropyRate(chain);
  const per: number[] = [h0];
  if (chain.order === 2) {
    let hPair = 0;
    for (const p of chain.stationary) hPair += plogp(p);
    per.push(hPair - h0); // H(X1 | X0) = H(X0, X1) − H(X0)
  }
  let total = 0;
  for (let t = 0; t < seqLen; t++) total += t < per.length ? per[t]! : rate;
  return total / seqLen;
}

/**
 * Samples a token sequence from the chain, starting from its stationary
 * distribution (so the sequence is stationary from its first token).
 *
 * @param chain a chain
 * @param length number of tokens
 * @param seed sampling seed (independent of the chain's seed)
 * @returns token ids in [0, vocab)
 */
export function sampleMarkov(chain: MarkovChain, length: number, seed = 0): Int32Array {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`Cannot sample a Markov corpus: length ${length} must be ≥ 0`);
  }
  const { vocab: V, order, branching: k, next, prob, stationary } = chain;
  const rand = uniformStream(seed ^ 0x3c6ef372);
  const out = new Int32Array(length);
  // Start state from π by inverse CDF.
  let u = rand(), s = stationary.length - 1;
  for (let i = 0; i < stationary.length; i++) {
    u -= stationary[i]!;
    if (u < 0) {
      s = i;
      break;
    }
  }
  const start = order === 1 ? [s] : [Math.floor(s / V), s % V];
  let t = 0;
  for (; t < Math.min(order, length); t++) out[t] = start[t]!;
  for (; t < length; t++) {
    let r = rand(), j = 0;
    for (; j < k - 1; j++) {
      r -= prob[s * k + j]!;
      if (r < 0) break;
    }
    const tok = next[s * k + j]!;
    out[t] = tok;
    s = stateAfter(V, order, s, tok);
  }
  return out;
}

/**
 * Empirical (plug-in) entropy of the token frequencies of a sequence.
 *
 * @param tokens token ids in [0, vocab)
 * @param vocab vocabulary size
 * @returns nats/token (0 for an empty sequence)
 */
export function unigramEntropy(tokens: ArrayLike<number>, vocab: number): number {
  const counts = new Float64Array(vocab);
  for (let i = 0; i < tokens.length; i++) counts[tokens[i]!]! += 1;
  let h = 0;
  for (const c of counts) h += plogp(c / tokens.length);
  return tokens.length === 0 ? 0 : h;
}

/**
 * Empirical (plug-in) conditional entropy of the next token given the
 * previous `order` tokens. On a long sample of a chain of that order it
 * approaches {@link markovEntropyRate} (from below, by about
 * (branching−1)·states / (2·length)).
 *
 * @param tokens token ids in [0, vocab)
 * @param vocab vocabulary size
 * @param order context length (1 or 2)
 * @returns nats/token
 */
export function conditionalEntropy(tokens: ArrayLike<number>, vocab: number, order: 1 | 2): number {
  const S = order === 1 ? vocab : vocab * vocab;
  const joint = new Map<number, number>();
  const ctx = new Float64Array(S);
  let n = 0;
  for (let t = order; t < tokens.length; t++) {
    const s = order === 1 ? tokens[t - 1]! : tokens[t - 2]! * vocab + tokens[t - 1]!;
    const key = s * vocab + tokens[t]!;
    joint.set(key, (joint.get(key) ?? 0) + 1);
    ctx[s]! += 1;
    n++;
  }
  if (n === 0) return 0;
  let h = 0;
  for (const [key, c] of joint) h -= (c / n) * Math.log(c / ctx[Math.floor(key / vocab)]!);
  return h;
}
