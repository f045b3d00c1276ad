/**
 * Sentence n-gram counts, what the Kneser-Ney model (analysis/kn/) is estimated from, as KenLM's
 * lmplz sees its input: each line of a document (a plain-text file, or one JSON record's text) is
 * a sentence, tokenized on its own by the run's tokenizer and wrapped in <s> ... </s>. An empty line
 * is the sentence `<s> </s>`; no n-gram crosses a sentence. A line ends at '\n' (a '\r' before it
 * is never part of a token); a document's last line needs none, and a final '\n' starts no
 * sentence. These counts are separate from the d2l counts (ngram1..5), which stay as they are.
 *
 * They are counted in the same pass over the input: countShard (_shard.ts) hands every chunk to a
 * SentenceCounter, which counts its shard's sentences the way the d2l n-grams are counted (radix
 * partitioning, stages/count/_radix.ts, each sentence a document) and returns the rows sorted by
 * hash with the d2l ones; the merger maps them to global ids (sentenceRunRows) into the shard's
 * run, as tables of their own, and from there they go the d2l n-grams' way: reduced by partition
 * and written in key order (stages/count/_run.ts). Shards are cut at line ends, so no sentence
 * crosses a cut and resuming after a kill needs no state of its own. Orders 2..order are stored:
 * Kneser-Ney's unigrams are continuation counts, which the bigrams give.
 *
 * On disk: tables sentence2..sentence5 (w1..wn, count), ids from `tokens.id`, <s> = -1, </s> = -2.
 */
import type { TextChunk } from '../../pipeline/types.ts';
import { createTokenizer, Interner, planShards, read, IdList, type Tokenizer, type TokenizerOptions } from '../ingest/index.ts';
import { countNgrams } from './_radix.ts';
import { sortByHash } from './_sort.ts';
import { HASH_SEED, hashFinish, hashStep, tokenHash } from './_table.ts';

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
  /** Where each sentence's <s> is in the stream. */
  readonly #starts = new IdList();

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
    this.#starts.push(this.#length);
    this.#stream[this.#length++] = SENTENCE_START;
    this.#stream.set(ids, this.#length);
    this.#length += ids.length;
    this.#stream[this.#length++] = SENTENCE_END;
  }

  /**
   * The n-grams of orders 2..order ending at each token after a <s>, never reaching before it, each
   * order's rows sorted by unsigned hash. They are counted as the d2l n-grams are, each sentence a
   * document, the markers standing in as two more ids (past the dictionary's) hashed as their text.
   */
  finish(tokenHashes: Int32Array): SentenceTables {
    const size = tokenHashes.length;
    const hashes = new Int32Array(size + 2);
    hashes.set(tokenHashes);
    hashes[size] = START_HASH;
    hashes[size + 1] = END_HASH;
    const stream = this.#stream.subarray(0, this.#length);
    for (let i = 0; i < stream.length; i++) if (stream[i] < 0) stream[i] = stream[i] === SENTENCE_START ? size : size + 1;
    const counted = countNgrams(stream, this.#starts.take(), { order: this.order, tokenHashes: hashes });
    const tables: SentenceTables = { keys: [], counts: [], hashes: [] };
    for (let n = 2; n <= this.order; n++) {
      const keys = counted[n].keys;
      for (let i = 0; i < keys.length; i++) if (keys[i] >= size) keys[i] = keys[i] === size ? SENTENCE_START : SENTENCE_END;
      tables.keys.push(keys);
      tables.counts.push(counted[n].counts);
      tables.hashes.push(counted[n].hashes);
    }
    return tables;
  }
}

/** The sentence tables' buffers, for a transfer list. */
export const sentenceBuffers = (tables: SentenceTables | undefined): ArrayBuffer[] =>
  tables ? [...tables.keys, ...tables.counts, ...tables.hashes].map((array) => array.buffer as ArrayBuffer) : [];

/** The Int32s of a shard's order-n sentence rows in its run. */
export const sentenceRunLength = (tables: SentenceTables, n: number) => tables.counts[n - 2].length * (n + 2);

/**
 * The order-n sentence rows of a shard (`tables`, index n - 2) as run rows `[hash, count, w1..wn]`
 * in global ids (`map`; the markers stay as they are), in unsigned hash order, written into `rows`
 * (sentenceRunLength long). The worker sends them sorted; rows from elsewhere (a NATS worker) are
 * sorted here if they are not.
 */
export function sentenceRunRows(tables: SentenceTables, n: number, map: Int32Array, rows: Int32Array): Int32Array {
  const keys = tables.keys[n - 2];
  const counts = tables.counts[n - 2];
  const hashes = tables.hashes[n - 2];
  const stride = n + 2;
  let sorted = true;
  for (let row = 1; row < counts.length && sorted; row++) sorted = hashes[row - 1] >>> 0 <= hashes[row] >>> 0;
  const order = sorted ? undefined : sortByHash(hashes);
  for (let i = 0, at = 0; i < counts.length; i++, at += stride) {
    const row = order ? order[i] : i;
    rows[at] = hashes[row];
    rows[at + 1] = counts[row];
    for (let k = 0; k < n; k++) {
      const id = keys[row * n + k];
      rows[at + 2 + k] = id < 0 ? id : map[id];
      if (id >= 0 && map[id] < 0) throw new RangeError(`Expected local token ${id} of a sentence in the shard's stream`);
    }
  }
  return rows;
}
