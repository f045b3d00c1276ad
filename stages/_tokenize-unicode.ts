/**
 * The Unicode tokenizers.
 * - word: the word-like segments of `Intl.Segmenter` (UAX #29 plus ICU's dictionaries, so Chinese,
 *   Japanese and Thai split into words), optionally lowercased.
 * - char: code points (not UTF-16 units); each run of whitespace (JavaScript's `\s`) is one ' ';
 *   whitespace at the start and end of a document is dropped.
 *
 * Shard cuts (char only): a shard that starts inside a document (its first chunk has
 * documentStart false) drops its leading whitespace and sets `leadingGap`; whitespace still
 * pending after the shard's last chunk, when that chunk does not end the document, sets
 * `trailingGap`. The merger puts one ' ' between the two sides when either flag is set and both
 * sides have tokens of that document. A continuing shard of only whitespace sets both flags.
 */
import type { TextChunk } from '../pipeline/types.ts';
import type { Interner } from './_interner.ts';
import { IdBuffer, type ChunkTokenizer } from './_tokenize-buffer.ts';

const WHITESPACE = new Uint8Array(0x10000);
for (let code = 0; code < 0x10000; code++) WHITESPACE[code] = /\s/.test(String.fromCharCode(code)) ? 1 : 0;

/** Above this many UTF-16 units of a single line, the word tokenizer cuts inside the line. */
const MAX_LINE = 1 << 20;

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
  /** Whether a token of the current document was emitted by this tokenizer. */
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
    const out = this.#out.reset(length + 1);
    let hasToken = this.#hasToken;
    let pendingSpace = this.#pendingSpace;
    for (let i = 0; i < length; i++) {
      let code = text.charCodeAt(i);
      if (WHITESPACE[code] === 1) {
        if (hasToken) pendingSpace = true;
        else if (this.#leading) this.leadingGap = true;
        continue;
      }
      let id: number;
      if (code >= 0xd800 && code < 0xdc00) {
        if (i + 1 === length && !chunk.documentEnd) {
          this.#high = text[i];
          break;
        }
        const next = i + 1 < length ? text.charCodeAt(i + 1) : 0;
        if (next >= 0xdc00 && next < 0xe000) {
          code = ((code - 0xd800) << 10) + (next - 0xdc00) + 0x10000;
          i++;
          id = this.#astral.get(code) ?? this.#learnAstral(code);
        } else {
          id = this.#bmp[code] >= 0 ? this.#bmp[code] : this.#learnBmp(code);
        }
      } else {
        id = this.#bmp[code] >= 0 ? this.#bmp[code] : this.#learnBmp(code);
      }
      if (pendingSpace) {
        out.push(this.#space >= 0 ? this.#space : (this.#space = this.#interner.id(' ')));
        pendingSpace = false;
      }
      out.push(id);
      hasToken = true;
    }
    if (hasToken) this.#leading = false;
    if (chunk.documentEnd) hasToken = pendingSpace = this.#leading = false;
    this.#hasToken = hasToken;
    this.#pendingSpace = pendingSpace;
    this.trailingGap = pendingSpace || (this.#leading && this.leadingGap);
    return out.take();
  }

  end(): Int32Array {
    const out = this.#out.reset(1);
    if (this.#high !== '') {
      if (this.#pendingSpace) out.push(this.#space >= 0 ? this.#space : (this.#space = this.#interner.id(' ')));
      out.push(this.#learnBmp(this.#high.charCodeAt(0)));
    }
    this.#high = '';
    this.#hasToken = this.#pendingSpace = this.#leading = this.trailingGap = false;
    return out.take();
  }

  #learnBmp(code: number): number {
    return (this.#bmp[code] = this.#intern(String.fromCharCode(code)));
  }

  #learnAstral(code: number): number {
    const id = this.#intern(String.fromCodePoint(code));
    this.#astral.set(code, id);
    return id;
  }

  #intern(token: string): number {
    return this.#interner.id(this.#lowercase ? token.toLowerCase() : token);
  }
}

export class WordTokenizer implements ChunkTokenizer {
  leadingGap = false;
  trailingGap = false;
  readonly #interner: Interner;
  readonly #lowercase: boolean;
  readonly #segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });
  readonly #out = new IdBuffer();
  /** Text after the last line break seen: UAX #29 never joins across a line break. */
  #carry = '';

  constructor(interner: Interner, lowercase: boolean) {
    this.#interner = interner;
    this.#lowercase = lowercase;
  }

  push(chunk: TextChunk): Int32Array {
    if (chunk.documentStart) this.#carry = '';
    const text = this.#carry === '' ? chunk.text : this.#carry + chunk.text;
    const out = this.#out.reset(16);
    if (chunk.documentEnd) {
      this.#carry = '';
      this.#segment(text, text.length);
      return out.take();
    }
    let cut = Math.max(text.lastIndexOf('\n'), text.lastIndexOf('\r')) + 1;
    if (cut === 0 && text.length > MAX_LINE) cut = this.#segment(text, -1);
    else if (cut > 0) this.#segment(text, cut);
    this.#carry = text.slice(cut);
    return out.take();
  }

  end(): Int32Array {
    const out = this.#out.reset(16);
    this.#segment(this.#carry, this.#carry.length);
    this.#carry = '';
    return out.take();
  }

  /**
   * Interns the word-like segments of text[0, cut). With cut -1 (a line too long to hold), keeps
   * the last two segments back, since a boundary depends on a character or two of context, and
   * returns where they start.
   */
  #segment(text: string, cut: number): number {
    const part = cut >= 0 && cut < text.length ? text.slice(0, cut) : text;
    const held: Intl.SegmentData[] = [];
    for (const segment of this.#segmenter.segment(part)) {
      if (cut < 0) {
        held.push(segment);
        if (held.length <= 2) continue;
        this.#emit(held.shift()!);
      } else {
        this.#emit(segment);
      }
    }
    return held.length > 0 ? held[0].index : part.length;
  }

  #emit(segment: Intl.SegmentData): void {
    if (!segment.isWordLike) return;
    this.#out.push(this.#interner.id(this.#lowercase ? segment.segment.toLowerCase() : segment.segment));
  }
}
