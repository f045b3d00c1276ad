/** Shared helpers for the read and tokenize tests: a seeded RNG, random text, collect(). */

/** mulberry32: a small seeded generator, so that a failing case can be replayed. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Pieces that stress the tokenizers: ASCII words and marks, line breaks, accents, CJK, emoji. */
const ATOMS = [
  'the', 'Time', 'TRAVELLER', 'a', 'b', 'x1', '42', '3.14', '1,000', "don't", 'e.g.', 'U.S.A.', 'a:b', '_', '__init__',
  'snake_case', ' ', ' ', ' ', ' ', '  ', '\t', '\n', '\n', '\n\n', '\r\n', '\r', '.', ',', ';', ':', "'", '"', '!', '?',
  '-', '--', '(', ')', '[1]', '@', '#', '$5', 'café', 'cafe\u0301', 'naïve', 'Straße', 'İstanbul', 'Ωμέγα', 'Привет',
  '中文', '天下', '，', '。', '、', '日本語', 'カタカナ', 'ไทย', '😀', '👩‍👩‍👧', '🇫🇷', '\u00a0', '\u3000', '\u2028',
  '\uFEFF', '\uFFFD', '١٢٣', 'x\u200bz', '\u2019', 'it\u2019s', '\u2014', '\u201c', '\u00a0\u0301',
];

export function randomText(rng: () => number, atoms: number): string {
  let text = '';
  for (let k = 0; k < atoms; k++) text += ATOMS[Math.floor(rng() * ATOMS.length)];
  return text;
}

/** Cuts text at random UTF-16 positions (also inside surrogate pairs and words). */
export function randomCuts(rng: () => number, text: string, maxPiece: number): string[] {
  const pieces: string[] = [];
  for (let at = 0; at < text.length; ) {
    const next = Math.min(text.length, at + 1 + Math.floor(rng() * maxPiece));
    pieces.push(text.slice(at, next));
    at = next;
  }
  return pieces;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export async function* fromArray<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}
