/**
 * Interner: token text <-> local id (0, 1, 2, ... in first-occurrence order).
 *
 * A Map<string, number> costs a string allocation per token looked up, which caps a tokenizer at
 * a few MB/s. This table is open addressing over typed arrays: the tokenizers hash a token while
 * they scan it and call `idOfSlice`, which compares the candidate's characters in place against a
 * pool of the stored tokens' UTF-16 units; a string is allocated only for a token never seen.
 */

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const EMPTY = -1;

/** The hash every caller must use: FNV-1a over UTF-16 units, started with `textHashStart`. */
export const textHashStart = FNV_OFFSET;
export function textHashStep(hash: number, unit: number): number {
  return Math.imul(hash ^ unit, FNV_PRIME);
}

/** A-Z -> a-z; every other UTF-16 unit unchanged. */
export function lowerUnit(unit: number): number {
  return (unit - 65) >>> 0 < 26 ? unit | 0x20 : unit;
}

export class Interner {
  #strings: string[] = [];
  /** slot -> id, EMPTY when free; the size is a power of two, kept at most half full. */
  #table = new Int32Array(1024).fill(EMPTY);
  #mask = 1023;
  /** id -> full hash (so that growing the table needs no rehash of the text). */
  #hashes = new Int32Array(512);
  /** id -> [start, end) in #pool */
  #starts = new Int32Array(513);
  #pool = new Uint16Array(4096);

  get size(): number {
    return this.#strings.length;
  }

  /** Text of a local id. */
  token(id: number): string {
    const token = this.#strings[id];
    if (token === undefined) throw new RangeError(`Expected a token id from 0 to ${this.size - 1}, got \`${id}\``);
    return token;
  }

  /** The tokens with ids from `start` on, by id. The array is a copy. */
  tokensFrom(start: number): string[] {
    return this.#strings.slice(start);
  }

  /** Every token, by id. The array is a copy. */
  tokens(): string[] {
    return this.#strings.slice();
  }

  /** The id of `token`, assigned on first sight. */
  id(token: string): number {
    let hash = textHashStart;
    for (let i = 0; i < token.length; i++) hash = textHashStep(hash, token.charCodeAt(i));
    return this.idOfSlice(token, 0, token.length, hash, false);
  }

  /**
   * The id of `text.slice(start, end)`, with A-Z mapped to a-z when `lowerAscii` (other units are
   * kept as they are), whose hash the caller computed with textHashStep over the same mapped units.
   */
  idOfSlice(text: string, start: number, end: number, hash: number, lowerAscii: boolean): number {
    const mask = this.#mask;
    const table = this.#table;
    const length = end - start;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const id = table[slot];
      if (id === EMPTY) return this.#insert(slot, text, start, end, hash, lowerAscii);
      if (this.#hashes[id] !== hash) continue;
      const from = this.#starts[id];
      if (this.#starts[id + 1] - from !== length) continue;
      const pool = this.#pool;
      let k = 0;
      if (lowerAscii) {
        while (k < length && pool[from + k] === lowerUnit(text.charCodeAt(start + k))) k++;
      } else {
        while (k < length && pool[from + k] === text.charCodeAt(start + k)) k++;
      }
      if (k === length) return id;
    }
  }

  #insert(slot: number, text: string, start: number, end: number, hash: number, lowerAscii: boolean): number {
    const id = this.#strings.length;
    const length = end - start;
    let token = text.slice(start, end);
    if (lowerAscii) token = token.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
    this.#strings.push(token);
    if (id + 2 > this.#starts.length) this.#growIds();
    const from = this.#starts[id];
    if (from + length > this.#pool.length) this.#growPool(from + length);
    for (let k = 0; k < length; k++) this.#pool[from + k] = token.charCodeAt(k);
    this.#starts[id + 1] = from + length;
    this.#hashes[id] = hash;
    this.#table[slot] = id;
    if ((id + 1) * 2 > this.#table.length) this.#growTable();
    return id;
  }

  #growIds(): void {
    const hashes = new Int32Array(this.#hashes.length * 2);
    hashes.set(this.#hashes);
    this.#hashes = hashes;
    const starts = new Int32Array(hashes.length + 1);
    starts.set(this.#starts);
    this.#starts = starts;
  }

  #growPool(needed: number): void {
    let length = this.#pool.length * 2;
    while (length < needed) length *= 2;
    const pool = new Uint16Array(length);
    pool.set(this.#pool);
    this.#pool = pool;
  }

  #growTable(): void {
    const table = new Int32Array(this.#table.length * 2).fill(EMPTY);
    const mask = table.length - 1;
    for (let id = 0; id < this.#strings.length; id++) {
      let slot = this.#hashes[id] & mask;
      while (table[slot] !== EMPTY) slot = (slot + 1) & mask;
      table[slot] = id;
    }
    this.#table = table;
    this.#mask = mask;
  }
}
