/**
 * Reference implementations of the count stage's hashes, written from the published algorithms in
 * BigInt arithmetic modulo 2^32 (nothing shared with stages/count/_table.ts's Math.imul code), and
 * checked against the algorithms' own test vectors in test/unit/stages/count/radix.test.ts:
 * - FNV-1a (32-bit) over UTF-16 units: a token's hash;
 * - MurmurHash3_x86_32's block step and finalizer: an n-gram's hash folds its tokens' hashes, last
 *   token first, from a fixed seed, and is finalized without the length (ngramHash's contract).
 */
const M32 = 0xffffffffn;
const mul = (a: bigint, b: bigint) => (a * b) & M32;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (32n - r))) & M32;
const signed = (x: bigint) => Number(BigInt.asIntN(32, x));

export const NGRAM_SEED = 0x2545f491;

export function fnv1a(text: string): number {
  let hash = 0x811c9dc5n;
  for (let i = 0; i < text.length; i++) hash = mul(hash ^ BigInt(text.charCodeAt(i)), 0x01000193n);
  return signed(hash);
}

function murmurBlock(h: bigint, word: number): bigint {
  let k = mul(BigInt(word >>> 0), 0xcc9e2d51n);
  k = mul(rotl(k, 15n), 0x1b873593n);
  h = rotl(h ^ k, 13n);
  return (mul(h, 5n) + 0xe6546b64n) & M32;
}

function murmurFinish(h: bigint): bigint {
  h = mul(h ^ (h >> 16n), 0x85ebca6bn);
  h = mul(h ^ (h >> 13n), 0xc2b2ae35n);
  return h ^ (h >> 16n);
}

/** MurmurHash3_x86_32 of whole 4-byte little-endian words (`length` bytes in all). */
export function murmur3Words(words: number[], length: number, seed: number): number {
  let h = BigInt(seed >>> 0);
  for (const word of words) h = murmurBlock(h, word);
  return signed(murmurFinish(h ^ BigInt(length)));
}

/** The hash of an n-gram whose tokens hash to `tokenHashes` (first token first). */
export function referenceNgramHash(tokenHashes: number[]): number {
  let h = BigInt(NGRAM_SEED);
  for (const word of [...tokenHashes].reverse()) h = murmurBlock(h, word);
  return signed(murmurFinish(h));
}
