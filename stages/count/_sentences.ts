/**
 * Sentence n-gram counts, what the Kneser-Ney model (analysis/kn/) is estimated from, as KenLM's
 * lmplz sees its input: each line of a document (a plain-text file, or one JSON record's text) is
 * a sentence, tokenized on its own by the run's tokenizer and wrapped in <s> ... </s>. An empty line
 * is the sentence `<s> </s>`; no n-gram crosses a sentence. A line ends at '\n' (a '\r' before it
 * is never part of a token); a document's last line needs none, and a final '\n' starts no
 * sentence. These counts are separate from the d2l counts (ngram1..5), which stay as they are.
 *
 * They are counted in the same pass over the input: countShard (_shard.ts) hands every chunk to a
 * SentenceCounter, which returns its shard's counts with the d2l ones; the merger maps them to
 * global ids (SentenceMerger) and they are committed in the same transaction as everything else.
 * Shards are cut at line ends, so no sentence crosses a cut and resuming after a kill needs no
 * state of its own. Orders 2..order are stored: Kneser-Ney's unigrams are continuation counts,
 * which the bigrams give.
 *
 * On disk: tables sentence2..sentence5 (w1..wn, count), ids from `tokens.id`, <s> = -1, </s> = -2.
 */
import type { TextChunk } from '../../pipeline/types.ts';
import type { NgramRows } from '../../storage/counts.ts';
import { createTokenizer, Interner, planShards, read, type Tokenizer, type TokenizerOptions } from '../ingest/index.ts';
import { HASH_SEED, hashFinish, hashStep, NgramTable, tokenHash } from './_table.ts';

/** The sentence markers' ids (no token has a negative id). */
export const SENTENCE_START = -1;
export const SENTENCE_END = -2;

const START_HASH = tokenHash('<s>');
const END_HASH = tokenHash('</s>');

/** Turns a document's chunks into its sentences' token ids (local to the tokenizer's interner). */
export class SentenceSplitter {
  readonly #tokenizer: Tokenizer;
  /** The current line's text so far (a chunk may end inside a line). */
  #pending = '';
  #open = false;

  constructor(options: TokenizerOptions & { interner: Interner }) {
    this.#tokenizer = createTokenizer(options);
  }

  /** Calls `sentence(ids)` for each line that `chunk` completes; `ids` is a view, valid until the next call. */
  push(chunk: TextChunk, sentence: (ids: Int32Array) => void): void {
    if (chunk.documentStart) this.#pending = '';
    this.#open = true;
    const text = chunk.text;
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      sentence(this.#tokenize(this.#pending + text.slice(start, end)));
      this.#pending = '';
      start = end + 1;
    }
    this.#pending += text.slice(start);
    if (chunk.documentEnd) this.end(sentence);
  }

  /** Ends the document: its last line, when it had no '\n', is a sentence too. */
  end(sentence: (ids: Int32Array) => void): void {
    if (this.#open && this.#pending !== '') sentence(this.#tokenize(this.#pending));
    this.#pending = '';
    this.#open = false;
  }

  #tokenize(line: string): Int32Array {
    return this.#tokenizer.push({ text: line, documentStart: true, documentEnd: true, source: '', position: 0 });
  }
}

/**
 * The sentences of `paths` (read as the count stage reads its input: text, .gz, JSON with
 * `jsonField`), each as its tokens' text, streamed. For held-out text: perplexity and eval.
 */
export async function* sentencesOf(
  paths: string[],
  options: TokenizerOptions & { jsonField?: string; report?: { invalidUtf8: number; skippedRecords: number } },
): AsyncGenerator<string[]> {
  const interner = new Interner();
  const splitter = new SentenceSplitter({ ...options, interner });
  // One shard per file: the reader then hands each document over whole, in order.
  const shards = await planShards(paths, { shardBytes: Number.MAX_SAFE_INTEGER });
  const done: string[][] = [];
  const collect = (ids: Int32Array) => void done.push(Array.from(ids, (id) => interner.token(id)));
  for await (const chunk of read(shards, { jsonField: options.jsonField, report: options.report })) {
    splitter.push(chunk, collect);
    yield* done.splice(0);
  }
  splitter.end(collect);
  yield* done.splice(0);
}

/** One shard's sentence counts: per order n >= 2 (index n - 2), rows of n ids, counts, table hashes. */
export interface SentenceTables {
  keys: Int32Array[];
  counts: Float64Array[];
  hashes: Int32Array[];
}

/** What countShard adds to a shard's result. */
export interface WithSentences {
  sentences?: SentenceTables;
}

/** The table hash of a sentence n-gram: ngramHash's, with the markers hashed as their text. */
function sentenceHash(ids: Int32Array, start: number, n: number, tokenHashes: ArrayLike<number>): number {
  let state = HASH_SEED;
  for (let k = n - 1; k >= 0; k--) {
    const id = ids[start + k];
    state = hashStep(state, id === SENTENCE_START ? START_HASH : id === SENTENCE_END ? END_HASH : tokenHashes[id]);
  }
  return hashFinish(state);
}

/** The table hash of each row of `keys` (rows of n ids): what a decoder recomputes instead of moving them. */
export function sentenceRowHashes(keys: Int32Array, n: number, tokenHashes: ArrayLike<number>): Int32Array {
  return Int32Array.from({ length: keys.length / n }, (_, row) => sentenceHash(keys, row * n, n, tokenHashes));
}

/** Counts one shard's sentences (the worker side): push each sentence, then finish(). */
export class SentenceCounter {
  readonly order: number;
  /** Every sentence, `<s> ids </s>`, back to back. */
  #stream = new Int32Array(1 << 12);
  #length = 0;

  constructor(order: number) {
    this.order = order;
  }

  push(ids: Int32Array): void {
    if (this.#length + ids.length + 2 > this.#stream.length) {
      let size = this.#stream.length * 2;
      while (size < this.#length + ids.length + 2) size *= 2;
      const grown = new Int32Array(size);
      grown.set(this.#stream.subarray(0, this.#length));
      this.#stream = grown;
    }
    this.#stream[this.#length++] = SENTENCE_START;
    this.#stream.set(ids, this.#length);
    this.#length += ids.length;
    this.#stream[this.#length++] = SENTENCE_END;
  }

  /** The n-grams of orders 2..order ending at each token after a <s>, never reaching before it. */
  finish(tokenHashes: ArrayLike<number>): SentenceTables {
    const stream = this.#stream;
    const tables: SentenceTables = { keys: [], counts: [], hashes: [] };
    for (let n = 2; n <= this.order; n++) {
      const table = new NgramTable(n, this.#length);
      for (let i = 0, sentenceStart = 0; i < this.#length; i++) {
        if (stream[i] === SENTENCE_START) sentenceStart = i;
        else if (i - n + 1 >= sentenceStart) table.add(stream, i - n + 1, sentenceHash(stream, i - n + 1, n, tokenHashes), 1);
      }
      const keys = new Int32Array(table.size * n);
      const counts = new Float64Array(table.size);
      const hashes = new Int32Array(table.size);
      table.drain(keys, counts, hashes, 0);
      tables.keys.push(keys);
      tables.counts.push(counts);
      tables.hashes.push(hashes);
    }
    return tables;
  }
}

/** The sentence tables' buffers, for a transfer list. */
export const sentenceBuffers = (tables: SentenceTables | undefined): ArrayBuffer[] =>
  tables ? [...tables.keys, ...tables.counts, ...tables.hashes].map((array) => array.buffer as ArrayBuffer) : [];

/** The main thread's global sentence tables, between two flushes. */
export class SentenceMerger {
  readonly #tables: NgramTable[] = [];

  constructor(order: number) {
    for (let n = 2; n <= order; n++) this.#tables.push(new NgramTable(n, 1 << 12));
  }

  get bytes(): number {
    return this.#tables.reduce((sum, table) => sum + table.bytes, 0);
  }

  peakBytes(tables: SentenceTables | undefined): number {
    return this.#tables.reduce((sum, table, i) => sum + table.peakBytes(tables?.counts[i].length ?? 0), 0);
  }

  /** Adds a shard's tables, its local ids mapped to global ones by `map`. */
  merge(tables: SentenceTables | undefined, map: Int32Array): void {
    if (!tables) return;
    this.#tables.forEach((table, i) => {
      const n = table.order;
      const keys = tables.keys[i];
      const counts = tables.counts[i];
      const hashes = tables.hashes[i];
      const key = new Int32Array(n);
      table.reserve(counts.length);
      for (let row = 0; row < counts.length; row++) {
        for (let k = 0; k < n; k++) {
          const id = keys[row * n + k];
          key[k] = id < 0 ? id : map[id];
          if (key[k] === -1 && id >= 0) throw new RangeError(`Expected local token ${id} of a sentence in the shard's stream`);
        }
        table.add(key, 0, hashes[row], counts[row]);
      }
    });
  }

  /** The rows to upsert into sentence2..5. */
  rows(): NgramRows[] {
    return this.#tables.map((table) => ({
      table: 'sentence', order: table.order, keys: table.slots, stride: table.stride, offset: 2,
      counts: table.slots, countStride: table.stride, countOffset: 1, rows: table.occupied(),
    }));
  }

  /** Forgets every count; tables whose arrays hold more than `keepBytes` in all start small again. */
  clear(keepBytes = Infinity): void {
    if (this.bytes > keepBytes) this.#tables.forEach((table, i) => (this.#tables[i] = new NgramTable(table.order, 1 << 12)));
    else for (const table of this.#tables) table.clear();
  }
}
