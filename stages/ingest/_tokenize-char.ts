/**
 * The char tokenizer: code points (not UTF-16 units); each run of whitespace (JavaScript's `\s`)
 * is one ' '; whitespace at the start and end of a document is dropped.
 *
 * Shard cuts: a shard that starts inside a document (its first chunk has documentStart false)
 * drops its leading whitespace and sets `leadingGap`; whitespace still pending after the shard's
 * last chunk, when that chunk does not end the document, sets `trailingGap`. The merger puts one
 * ' ' between the two sides when either flag is set and both sides have tokens of that document.
 * A continuing shard of only whitespace sets both flags.
 */
import type { TextChunk } from '../../pipeline/types.ts';
import type { Interner } from './_interner.ts';
import { IdBuffer, type ChunkTokenizer } from './_id-list.ts';

/** 1 for the UTF-16 units that JavaScript's `\s` matches (all of them are in the BMP). */
export const WHITESPACE = new Uint8Array(0x10000);
for (let code = 0; code < 0x10000; code++) WHITESPACE[code] = /\s/.test(String.fromCharCode(code)) ? 1 : 0;

export class CharTokenizer implements ChunkTokenizer {
  leadingGap = false;
  trailingGap = false;
  readonly #interner: Interner;
  readonly #lowercase: boolean;
  readonly #out = new IdBuffer();
  /** Interner id of each BMP code unit (-1 until seen); astral code points in a Map. */
  readonly #bmp = new Int32Array(0x10000).fill(-1);
  readonly #astral = new Map<number, number>();
  #space = -1;
  #started = false;
  /** This tokenizer started inside a document and has not emitted a token of it yet. */
  #leading = false;
  /** Whether a token of the current document was emitted. */
  #hasToken = false;
  #pendingSpace = false;
  /** A high surrogate that ended the previous chunk. */
  #high = '';

  constructor(interner: Interner, lowercase: boolean) {
    this.#interner = interner;
    this.#lowercase = lowercase;
  }

  push(chunk: TextChunk): Int32Array {
    if (chunk.documentStart) this.#hasToken = this.#pendingSpace = this.#leading = false;
    else if (!this.#started) this.#leading = true;
    this.#started = true;
    const text = this.#high === '' ? chunk.text : this.#high + chunk.text;
    this.#high = '';
    const length = text.length;
    const out = this.#out.reserve(length + 1);
    const bmp = this.#bmp;
    let n = 0;
    let hasToken = this.#hasToken;
    let pendingSpace = this.#pendingSpace;
    for (let i = 0; i < length; i++) {
      const code = text.charCodeAt(i);
      if (WHITESPACE[code] === 1) {
        if (hasToken) pendingSpace = true;
        else if (this.#leading) this.leadingGap = true;
        continue;
      }
      let id = bmp[code];
      if (code >= 0xd800 && code < 0xdc00) {
        if (i + 1 === length && !chunk.documentEnd) {
          this.#high = text[i];
          break;
        }
        const next = i + 1 < length ? text.charCodeAt(i + 1) : 0;
        if (next >= 0xdc00 && next < 0xe000) {
          const point = ((code - 0xd800) << 10) + (next - 0xdc00) + 0x10000;
          id = this.#astral.get(point) ?? this.#learnAstral(point);
          i++;
        }
      }
      if (id < 0) id = this.#learnBmp(code);
      if (pendingSpace) {
        out[n++] = this.#spaceId();
        pendingSpace = false;
      }
      out[n++] = id;
      hasToken = true;
    }
    if (hasToken) this.#leading = false;
    if (chunk.documentEnd) hasToken = pendingSpace = this.#leading = false;
    this.#hasToken = hasToken;
    this.#pendingSpace = pendingSpace;
    this.trailingGap = pendingSpace || (this.#leading && this.leadingGap);
    return this.#out.take(n);
  }

  end(): Int32Array {
    const out = this.#out.reserve(2);
    let n = 0;
    if (this.#high !== '') {
      if (this.#pendingSpace) out[n++] = this.#spaceId();
      out[n++] = this.#learnBmp(this.#high.charCodeAt(0));
    }
    this.#high = '';
    this.#hasToken = this.#pendingSpace = this.#leading = this.trailingGap = false;
    return this.#out.take(n);
  }

  #spaceId(): number {
    if (this.#space < 0) this.#space = this.#interner.id(' ');
    return this.#space;
  }

  #learnBmp(code: number): number {
    return (this.#bmp[code] = this.#intern(String.fromCharCode(code)));
  }

  #learnAstral(point: number): number {
    const id = this.#intern(String.fromCodePoint(point));
    this.#astral.set(point, id);
    return id;
  }

  #intern(token: string): number {
    return this.#interner.id(this.#lowercase ? token.toLowerCase() : token);
  }
}
