/**
 * ARPA export of a Kneser-Ney model (estimate.ts) in lmplz's layout, so that every speech and MT
 * toolkit (KenLM, SRILM, Kaldi, Moses) reads it:
 *
 *   \data\
 *   ngram 1=4582
 *   ...
 *   \1-grams:
 *   -5.6236	<unk>	0
 *   0	<s>	-0.81718
 *   ...
 *   \5-grams:
 *   -0.3181	<s> the time traveller for
 *   \end\
 *
 * Each line is log10 p, a tab, the words, and (below the top order) a tab and the log10 backoff.
 * Values are rounded to float32 and printed as the shortest decimal that reads back as the same
 * float32, as lmplz prints them. Order within a section is lmplz's (without --renumber): sorted by
 * the last word's id, then the one before, with <unk>, <s>, </s> first and then the tokens in order
 * of first occurrence. A token with whitespace in it cannot be an ARPA word: exporting it fails.
 */
import { BOS, EOS, UNK, keyIds, type KnModel } from './estimate.ts';
import { LmpipeError } from '../../lib/errors.ts';

const SPECIAL_WORDS = new Map([[BOS, '<s>'], [EOS, '</s>'], [UNK, '<unk>']]);

/** The shortest decimal that reads back as the same float32 (double-conversion's ToShortestSingle). */
export function shortestFloat32(value: number): string {
  const single = Math.fround(value);
  if (single === 0) return '0';
  for (let digits = 1; digits < 9; digits++) {
    const text = single.toPrecision(digits);
    if (Math.fround(Number(text)) === single) return String(Number(text));
  }
  return String(Number(single.toPrecision(9)));
}

/** lmplz's id order: <unk>, <s>, </s>, then the tokens by id. */
const rank = (id: number) => (id === UNK ? 0 : id === BOS ? 1 : id === EOS ? 2 : id + 3);

function suffixOrder(a: readonly number[], b: readonly number[]): number {
  for (let k = a.length - 1; k >= 0; k--) {
    const difference = rank(a[k]) - rank(b[k]);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** The ARPA file's text, one section at a time. `tokenOf(id)` names a token id. */
export function* arpaChunks(model: KnModel, tokenOf: (id: number) => string): Generator<string> {
  const word = (id: number) => {
    const special = SPECIAL_WORDS.get(id);
    if (special !== undefined) return special;
    const token = tokenOf(id);
    if (token === '' || /\s/u.test(token)) {
      throw new LmpipeError('USAGE', `Expected tokens without whitespace for ARPA, got ${JSON.stringify(token)}; count with a word tokenizer (d2l-word or word)`);
    }
    return token;
  };
  yield ['\\data\\', ...model.grams.map((grams, i) => `ngram ${i + 1}=${grams.size}`), '', ''].join('\n');
  for (let n = 1; n <= model.order; n++) {
    const grams = model.grams[n - 1];
    const rows = [...grams.keys()].map((key) => ({ key, ids: keyIds(key) })).sort((a, b) => suffixOrder(a.ids, b.ids));
    const lines = [`\\${n}-grams:`];
    for (const { key, ids } of rows) {
      const entry = grams.get(key)!;
      const backoff = n < model.order ? `\t${shortestFloat32(entry.backoff)}` : '';
      lines.push(`${shortestFloat32(entry.prob)}\t${ids.map(word).join(' ')}${backoff}`);
    }
    yield lines.join('\n') + '\n\n';
  }
  yield '\\end\\\n';
}
