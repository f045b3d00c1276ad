/**
 * The word tokenizer: the word-like segments of `Intl.Segmenter` (UAX #29 with ICU's dictionaries,
 * so Chinese, Japanese and Thai split into words), optionally lowercased.
 *
 * V8's segmenter costs more per segment the longer the string (measured here: 3 us per segment
 * on 460 characters, 32 us on 46,000), and about 2 us per segment at best. So the text is cut at
 * points where UAX #29 always breaks whatever the context (after '\n'; between ' ' or '\t' and a
 * printable ASCII character; between CJK punctuation and kana or Han), and each piece made of
 * ASCII and a few common punctuation marks (SIMPLE) is segmented by #simple below, which implements
 * the UAX #29 rules as they apply to those (and as ICU applies them: checked against
 * Intl.Segmenter in test/tokenize.test.ts). Other pieces, usually short, go to Intl.Segmenter.
 *
 * One exception to UAX #29: the literal `<unk>` is one token, the vocabulary's <unk>. WikiText and
 * other corpora mark the words they removed so, and as '<', 'unk', '>' it became the word "unk"
 * (the second most frequent "word" of WikiText-2).
 */
import type { TextChunk } from '../../pipeline/types.ts';
import { textHashStart, textHashStep, lowerUnit, type Interner } from './_interner.ts';
import { IdList, type ChunkTokenizer } from './_id-list.ts';

/** Above this many UTF-16 units without a safe cut, the carried text is segmented (see #segment). */
const MAX_HOLD = 1 << 20;
/** The segmenter sees at most this many units at once. */
const WINDOW = 1024;

const LF = 10;
const UNK = '<unk>';
const LESS_THAN = 60;
const UNDERSCORE = 95;

/** UAX #29 classes that matter here: letters, digits and '_' (ASCII), everything else Other. */
const enum Kind { Other, Letter, Digit, Underscore }
const KIND = new Uint8Array(0x10000);
/** Units the direct scanner handles: ASCII, and punctuation common in English text. */
const SIMPLE = new Uint8Array(0x10000);
for (let code = 0; code < 128; code++) {
  const char = String.fromCharCode(code);
  KIND[code] = /[A-Za-z]/.test(char) ? Kind.Letter : /[0-9]/.test(char) ? Kind.Digit : char === '_' ? Kind.Underscore : Kind.Other;
  SIMPLE[code] = 1;
}
// ‘ ’ ․ (MidNumLet, like '.'); “ ” – — … « » and no-break space (Other).
for (const char of '\u2018\u2019\u2024\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb\u00a0') SIMPLE[char.charCodeAt(0)] = 1;

/** Whether a UAX #29 break always falls between units `before` and `after`. */
function safeCut(before: number, after: number): boolean {
  if (before === LF) return true;
  if (before === 32 || before === 9) return after > 32 && after < 128;
  // 、。，！；？ before kana or a Han ideograph: no rule joins Other or MidNum to those, and ICU's
  // dictionary runs stop at the punctuation.
  const cjkPunctuation = before === 0x3001 || before === 0x3002 || before === 0xff0c || before === 0xff01 || before === 0xff1b || before === 0xff1f;
  return cjkPunctuation && ((after >= 0x4e00 && after <= 0x9fff) || (after >= 0x3041 && after <= 0x3096) || (after >= 0x30a1 && after <= 0x30fa));
}

/** Whether the Mid* mark `mark` joins the units before and after it into one word (WB6/7, WB11/12). */
function joins(mark: number, before: number, after: number): boolean {
  const left = KIND[before];
  const right = KIND[after];
  if (mark === 0x2e || mark === 0x27 || mark === 0x2018 || mark === 0x2019 || mark === 0x2024) {
    return left === right && (left === Kind.Letter || left === Kind.Digit); // MidNumLet, Single_Quote
  }
  if (mark === 0x3a) return left === Kind.Letter && right === Kind.Letter; // MidLetter
  if (mark === 0x2c || mark === 0x3b) return left === Kind.Digit && right === Kind.Digit; // MidNum
  return false;
}

export class WordTokenizer implements ChunkTokenizer {
  leadingGap = false;
  trailingGap = false;
  readonly #interner: Interner;
  readonly #lowercase: boolean;
  readonly #segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });
  readonly #out = new IdList();
  /** Text after the last safe cut, waiting for the rest of its piece. */
  #carry = '';

  constructor(interner: Interner, lowercase: boolean) {
    this.#interner = interner;
    this.#lowercase = lowercase;
  }

  push(chunk: TextChunk): Int32Array {
    if (chunk.documentStart) this.#carry = '';
    const text = this.#carry === '' ? chunk.text : this.#carry + chunk.text;
    this.#out.reset();
    let cut = chunk.documentEnd ? text.length : lastSafeCut(text);
    if (cut === 0 && text.length > MAX_HOLD) cut = this.#segment(text, 0, text.length, false);
    else this.#pieces(text, cut);
    this.#carry = text.slice(cut);
    return this.#out.take();
  }

  end(): Int32Array {
    this.#out.reset();
    this.#pieces(this.#carry, this.#carry.length);
    this.#carry = '';
    return this.#out.take();
  }

  /** Tokenizes text[0, to): ASCII runs of pieces directly, other pieces with the segmenter. */
  #pieces(text: string, to: number): void {
    let from = 0; // start of the pieces not yet tokenized
    let lastCut = 0;
    for (let i = 0; i < to; i++) {
      const code = text.charCodeAt(i);
      if (i > 0 && safeCut(text.charCodeAt(i - 1), code)) lastCut = i;
      if (SIMPLE[code] === 1) continue;
      // A unit for the segmenter: the pieces before it are done; its own piece runs to the next cut.
      this.#simple(text, from, lastCut);
      let end = i + 1;
      while (end < to && !safeCut(text.charCodeAt(end - 1), text.charCodeAt(end))) end++;
      this.#segment(text, lastCut, end, true);
      from = lastCut = end;
      i = end - 1;
    }
    this.#simple(text, from, to);
  }

  /** UAX #29 on SIMPLE units: runs of [A-Za-z0-9_] joined by Mid* marks; word-like unless a lone '_'. */
  #simple(text: string, from: number, to: number): void {
    const lowercase = this.#lowercase;
    let i = from;
    while (i < to) {
      let code = text.charCodeAt(i);
      if (code === LESS_THAN && i + UNK.length <= to && text.startsWith(UNK, i)) {
        this.#out.push(this.#interner.id(UNK));
        i += UNK.length;
        continue;
      }
      if (KIND[code] === Kind.Other) {
        i++;
        continue;
      }
      const start = i;
      let hash = textHashStart;
      for (;;) {
        hash = textHashStep(hash, lowercase ? lowerUnit(code) : code);
        if (++i === to) break;
        code = text.charCodeAt(i);
        if (KIND[code] !== Kind.Other) continue;
        if (i + 1 === to || !joins(code, text.charCodeAt(i - 1), text.charCodeAt(i + 1))) break;
        hash = textHashStep(hash, code);
        code = text.charCodeAt(++i);
      }
      if (i - start > 1 || text.charCodeAt(start) !== UNDERSCORE) {
        this.#out.push(this.#interner.idOfSlice(text, start, i, hash, lowercase));
      }
    }
  }

  /**
   * Segments text[from, to) with Intl.Segmenter, WINDOW units at a time: each window but the last
   * keeps its last two segments back for the next one, since a boundary depends on a unit or two
   * of context. (ICU's dictionary segmentation of a run of Han or Thai longer than WINDOW may
   * differ from one call on the whole run.) Unless `final`, the last window is held back too;
   * returns where the text not yet tokenized starts.
   */
  #segment(text: string, from: number, to: number, final: boolean): number {
    let at = from;
    for (;;) {
      const end = Math.min(to, at + WINDOW);
      const segments = Array.from(this.#segmenter.segment(text.slice(at, end)));
      const last = end === to;
      let keep = last && final ? 0 : Math.min(2, segments.length);
      if (!last && keep === segments.length) keep--; // two segments in a whole window: move on anyway
      for (let k = 0; k < segments.length - keep; k++) this.#emit(segments[k]);
      if (keep === 0 && last) return to;
      const next = keep === 0 ? end : at + segments[segments.length - keep].index;
      if (last) return next;
      at = next;
    }
  }

  #emit({ segment, isWordLike }: Intl.SegmentData): void {
    if (isWordLike) this.#out.push(this.#interner.id(this.#lowercase ? segment.toLowerCase() : segment));
  }
}

/** The last i > 0 at which safeCut holds (0 if none): text[i..] may continue in the next chunk. */
function lastSafeCut(text: string): number {
  if (text.charCodeAt(text.length - 1) === LF) return text.length;
  for (let i = text.length - 1; i > 0; i--) {
    if (safeCut(text.charCodeAt(i - 1), text.charCodeAt(i))) return i;
  }
  return 0;
}
