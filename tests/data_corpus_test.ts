import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BYTE_VOCAB_SIZE,
  byteDecode,
  byteEncode,
  byteTokenizer,
  conditionalEntropy,
  evalBatches,
  markovChain,
  markovEntropyRate,
  markovOptimalLoss,
  markovUnigram,
  markovUnigramEntropy,
  sampleMarkov,
  splitTokens,
  trainBatch,
  unigramEntropy,
} from "../lib/data/mod.ts";
import { fcParams } from "./_util.ts";

/** Well-formed strings over all of Unicode (1- to 4-byte UTF-8), fast to generate. */
const arbText = fc.array(
  fc.oneof(
    fc.integer({ min: 0, max: 0x7f }),
    fc.integer({ min: 0x80, max: 0xd7ff }),
    fc.integer({ min: 0xe000, max: 0x10ffff }),
  ),
  { maxLength: 48 },
).map((cps) => String.fromCodePoint(...cps));

Deno.test("byteTokenizer round-trips arbitrary well-formed strings (property)", () => {
  fc.assert(
    fc.property(arbText, (s) => {
      const ids = byteTokenizer.encode(s);
      assert.ok(ids.every((v) => v >= 0 && v < BYTE_VOCAB_SIZE));
      assert.equal(byteTokenizer.decode(ids), s);
    }),
    fcParams(300),
  );
  // Lone surrogates cannot be UTF-8: they come back as U+FFFD, like toWellFormed().
  fc.assert(
    fc.property(arbText, arbText, (a, b) => {
      const s = a + "\ud800" + b;
      assert.equal(byteDecode(byteEncode(s)), s.toWellFormed());
    }),
    fcParams(100),
  );
  assert.equal(byteDecode(byteEncode("\ufeffBOM stays")), "\ufeffBOM stays");
  assert.deepEqual([...byteEncode("hé")], [104, 195, 169]);
  assert.equal(byteDecode([0xff, 0x41]), "\ufffdA");
  assert.throws(() => byteDecode([256]), /id 256 at position 0 is not a byte token/);
});

Deno.test("markovChain() is deterministic in its seed and has normalised sparse rows", () => {
  const a = markovChain({ vocab: 16, order: 2, branching: 3, seed: 5 });
  const b = markovChain({ vocab: 16, order: 2, branching: 3, seed: 5 });
  const c = markovChain({ vocab: 16, order: 2, branching: 3, seed: 6 });
  assert.deepEqual(a.next, b.next);
  assert.deepEqual(a.prob, b.prob);
  assert.notDeepEqual(a.prob, c.prob);
  for (let s = 0; s < 256; s++) {
    let sum = 0;
    const succ = new Set<number>();
    for (let j = 0; j < 3; j++) {
      sum += a.prob[s * 3 + j]!;
      succ.add(a.next[s * 3 + j]!);
    }
    assert.ok(Math.abs(sum - 1) < 1e-12);
    assert.equal(succ.size, 3);
  }
  // π is stationary: π P = π.
  const V = 16, k = 3, pi = a.stationary, next = new Float64Array(256);
  for (let s = 0; s < 256; s++) {
    for (let j = 0; j < k; j++) {
      next[(s % V) * V + a.next[s * k + j]!]! += pi[s]! * a.prob[s * k + j]!;
    }
  }
  for (let s = 0; s < 256; s++) assert.ok(Math.abs(next[s]! - pi[s]!) < 1e-13);
  assert.throws(() => markovChain({ vocab: 2 }), RangeError);
  assert.throws(() => markovChain({ vocab: 8, branching: 9 }), /branching 9/);
});

Deno.test("sampleMarkov(): empirical entropies approach the analytic entropy rate and unigram entropy", () => {
  for (const order of [1, 2] as const) {
    const chain = markovChain({ vocab: 24, order, branching: 4, seed: 11 });
    const x = sampleMarkov(chain, 1_200_000, 3);
    const rate = markovEntropyRate(chain);
    const emp = conditionalEntropy(x, 24, order);
    // Plug-in bias ≈ −(k−1)·S/(2n) ≈ 0.001 nats for order 2; sampling noise is ~0.002.
    assert.ok(Math.abs(emp - rate) < 0.01, `order ${order}: empirical ${emp} vs rate ${rate}`);
    // The unigram frequencies mix slowly (sticky states), so they need the looser bound:
    // over sample seeds the deviation at this length is about 0.006.
    const uni = markovUnigramEntropy(chain);
    assert.ok(
      Math.abs(unigramEntropy(x, 24) - uni) < 0.02,
      `unigram ${unigramEntropy(x, 24)} vs ${uni}`,
    );
    assert.ok(rate > 0.5 && rate < uni && uni <= Math.log(24) + 1e-12);
    // The optimum of a fresh window lies between the rate and the unigram entropy.
    const opt = markovOptimalLoss(chain, 64);
    assert.ok(opt > rate && opt < rate + (uni - rate) * 2 / 64 + 1e-12);
    assert.equal(markovOptimalLoss(chain, 1), uni);
    const p = markovUnigram(chain);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  }
  // Order-2 structure is invisible to an order-1 estimate: it stays well above the rate.
  const c2 = markovChain({ vocab: 24, order: 2, branching: 4, seed: 11 });
  const x2 = sampleMarkov(c2, 200_000, 1);
  assert.ok(conditionalEntropy(x2, 24, 1) > markovEntropyRate(c2) + 0.3);
  assert.deepEqual(sampleMarkov(c2, 100, 9), sampleMarkov(c2, 100, 9));
  assert.notDeepEqual(sampleMarkov(c2, 100, 9), sampleMarkov(c2, 100, 10));
});

Deno.test("trainBatch() is deterministic per (seed, step), differs across seeds, and shifts targets", () => {
  const tokens = Int32Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256);
  const spec = { batchSize: 4, seqLen: 16, seed: 1 };
  const a = trainBatch(tokens, spec, 3), b = trainBatch(tokens, spec, 3);
  assert.deepEqual(a, b);
  assert.deepEqual(a.inputs.shape, [4, 16]);
  assert.equal(a.inputs.dtype, "i32");
  assert.notDeepEqual(a.offsets, trainBatch(tokens, { ...spec, seed: 2 }, 3).offsets);
  assert.notDeepEqual(a.offsets, trainBatch(tokens, spec, 4).offsets);
  for (let r = 0; r < 4; r++) {
    const o = a.offsets[r]!;
    assert.ok(o >= 0 && o + 16 < tokens.length);
    for (let t = 0; t < 16; t++) {
      assert.equal(a.inputs.data[r * 16 + t], tokens[o + t]);
      assert.equal(a.targets.data[r * 16 + t], tokens[o + t + 1]);
    }
  }
  // Offsets cover the stream roughly uniformly.
  const hits = new Array(10).fill(0);
  for (let s = 0; s < 500; s++) {
    for (const o of trainBatch(tokens, { ...spec, batchSize: 8 }, s).offsets) {
      hits[Math.floor((o / (tokens.length - 16)) * 10)]++;
    }
  }
  assert.ok(hits.every((h) => h > 300 && h < 500), `offset histogram ${hits}`);
  assert.throws(() => trainBatch(tokens.subarray(0, 16), spec, 0), /too few for seqLen 16/);
  assert.throws(() => trainBatch(tokens, { ...spec, batchSize: 0 }, 0), RangeError);
});

Deno.test("splitTokens() has no overlap: batches from each part only see their own positions", () => {
  const tokens = Int32Array.from({ length: 1000 }, (_, i) => i); // token = its position
  const { train, val, boundary } = splitTokens(tokens, 0.2);
  assert.equal(boundary, 800);
  assert.equal(train.length + val.length, 1000);
  assert.equal(train[train.length - 1], 799);
  assert.equal(val[0], 800);
  for (let s = 0; s < 50; s++) {
    const b = trainBatch(train, { batchSize: 4, seqLen: 32, seed: 7 }, s);
    assert.ok(
      b.inputs.data.every((v) => v < boundary) && b.targets.data.every((v) => v < boundary),
    );
  }
  const ev = evalBatches(val, { batchSize: 2, seqLen: 32 });
  assert.equal(ev.length, 3); // floor(199 / 32) = 6 windows → 3 batches
  for (const b of ev) assert.ok(b.inputs.data.every((v) => v >= boundary));
  assert.deepEqual(ev[0]!.offsets, [0, 32]);
  assert.deepEqual(ev, evalBatches(val, { batchSize: 2, seqLen: 32 }));
  assert.equal(evalBatches(val, { batchSize: 2, seqLen: 32 }, 1).length, 1);
  assert.throws(() => evalBatches(val, { batchSize: 8, seqLen: 32 }), /fewer than batchSize 8/);
  assert.throws(() => splitTokens(tokens, 1), RangeError);
});
