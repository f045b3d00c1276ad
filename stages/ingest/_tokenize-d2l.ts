/**
 * The d2l book's (0.17) tokenizers, scanned with charCodeAt and interned without allocating.
 *
 * d2l reads a file with `readlines()` (universal newlines: '\n', '\r\n' and '\r' end a line) and
 * cleans each line with `re.sub('[^A-Za-z]+', ' ', line).strip().lower()`. Hence:
 * - d2l-word (`line.split()`): the tokens are the maximal runs of ASCII letters, lowercased; line
 *   breaks are non-letters, so lines need no special handling.
 * - d2l-char (`list(line)`, lines concatenated with no separator): every ASCII letter, lowercased,
 *   and one ' ' for each run of non-letters that has a letter on both sides within the same line.
 */
import type { TextChunk } from '../../pipeline/types.ts';
import { textHashStart, textHashStep, type Interner } from './_interner.ts';
import { IdBuffer, type ChunkTokenizer } from './_id-list.ts';

const LF = 10;
const CR = 13;

/** ASCII letter test: `(c | 0x20) - 97` is below 26 only for A-Z and a-z. */
function isLetter(code: number): boolean {
  return ((code | 0x20) - 97) >>> 0 < 26;
}

export class D2lWordTokenizer implements ChunkTokenizer {
  leadingGap = false;
  trailingGap = false;
  readonly #interner: Interner;
  readonly #out = new IdBuffer();
  /** Letters of a word that the previous chunk's end cut, in their original case. */
  #carry = '';

  constructor(interner: Interner) {
    this.#interner = interner;
  }

  push(chunk: TextChunk): Int32Array {
    const text = chunk.text;
    const length = text.length;
    const interner = this.#interner;
    if (chunk.documentStart) this.#carry = '';
    // A word needs a letter and a non-letter after it: at most length / 2 + 1 words, + 1 carried.
    const out = this.#out.reserve((length >>> 1) + 2);
    let n = 0;
    let i = 0;
    if (this.#carry !== '') {
      while (i < length && isLetter(text.charCodeAt(i))) i++;
      this.#carry += text.slice(0, i);
      if (i === length && !chunk.documentEnd) return this.#out.take(0);
      out[n++] = interner.id(this.#carry.toLowerCase());
      this.#carry = '';
    }
    while (i < length) {
      let code = text.charCodeAt(i);
      if (!isLetter(code)) {
        i++;
        continue;
      }
      const start = i;
      let hash = textHashStart;
      do {
        hash = textHashStep(hash, code | 0x20);
        if (++i === length) break;
        code = text.charCodeAt(i);
      } while (isLetter(code));
      if (i === length && !chunk.documentEnd) {
        this.#carry = text.slice(start);
        break;
      }
      out[n++] = interner.idOfSlice(text, start, i, hash, true);
    }
    return this.#out.take(n);
  }

  end(): Int32Array {
    const word = this.#carry;
    this.#carry = '';
    return word === '' ? new Int32Array(0) : Int32Array.of(this.#interner.id(word.toLowerCase()));
  }
}

export class D2lCharTokenizer implements ChunkTokenizer {
  leadingGap = false;
  trailingGap = false;
  readonly #interner: Interner;
  readonly #out = new IdBuffer();
  /** Interner id of each lowercase ASCII code (and of ' '), -1 until first seen. */
  readonly #ids = new Int32Array(128).fill(-1);
  /** The current line has had a letter, and a run of non-letters followed it. */
  #lineHasLetter = false;
  #pendingSpace = false;

  constructor(interner: Interner) {
    this.#interner = interner;
  }

  push(chunk: TextChunk): Int32Array {
    const text = chunk.text;
    const length = text.length;
    if (chunk.documentStart) this.#lineHasLetter = this.#pendingSpace = false;
    const out = this.#out.reserve(length + 1);
    const ids = this.#ids;
    let n = 0;
    let lineHasLetter = this.#lineHasLetter;
    let pendingSpace = this.#pendingSpace;
    for (let i = 0; i < length; i++) {
      const code = text.charCodeAt(i);
      if (isLetter(code)) {
        if (pendingSpace) {
          out[n++] = ids[32] >= 0 ? ids[32] : this.#learn(32);
          pendingSpace = false;
        }
        const lower = code | 0x20;
        out[n++] = ids[lower] >= 0 ? ids[lower] : this.#learn(lower);
        lineHasLetter = true;
      } else if (code === LF || code === CR) {
        lineHasLetter = pendingSpace = false;
      } else if (lineHasLetter) {
        pendingSpace = true;
      }
    }
    // A non-letter run that reaches the end of the line (or the document) is stripped.
    this.#lineHasLetter = chunk.documentEnd ? false : lineHasLetter;
    this.#pendingSpace = chunk.documentEnd ? false : pendingSpace;
    return this.#out.take(n);
  }

  end(): Int32Array {
    this.#lineHasLetter = this.#pendingSpace = false;
    return new Int32Array(0);
  }

  #learn(code: number): number {
    return (this.#ids[code] = this.#interner.id(String.fromCharCode(code)));
  }
}
