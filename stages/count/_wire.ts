/**
 * Count's wire format: what a shard job returns (from a worker thread, or from any process that
 * runs the job) and the merger consumes in shard order. Buffers travel transferred, not copied.
 */
import type { SentenceTables } from './_sentences.ts';

/** Everything a worker returns for one shard; the main thread merges these in `index` order. */
export interface ShardCounts {
  index: number;
  /**
   * The dictionary the local ids refer to: one per thread and run, kept across that thread's
   * shards, so that a shard sends only the tokens its thread had not sent before.
   */
  dictionary: string;
  /** The thread's previous dictionary, which this one replaces: no later shard refers to it. */
  replaces?: string;
  /** Local id of tokens[0]: how many tokens earlier shards of this dictionary sent. */
  firstToken: number;
  /** The dictionary's new tokens: text of local ids firstToken, firstToken + 1, ... */
  tokens: string[];
  /** tokenHash of each new token's text (_table.ts). */
  tokenHashes: Int32Array;
  /** The shard's token stream in local ids (all documents concatenated). */
  stream: Int32Array;
  /** The local ids in the order the stream first shows them. */
  firstSeen: Int32Array;
  /**
   * Per order n (index n-1): keys [distinct * n] of local ids, their counts, and (n >= 2) their
   * ngramHash, the same whatever the shard; `hashes[0]` is empty.
   */
  keys: Int32Array[];
  counts: Float64Array[];
  hashes: Int32Array[];
  /** The fields of the shard's first JSON record without --json-field (ingest ReadReport). */
  skippedFields?: string[];
  /** First and last (order-1) tokens of the first and last document, for n-grams across a cut. */
  head: Int32Array;
  tail: Int32Array;
  /** Number of documents that start inside this shard. */
  documents: number;
  /** char tokenizer: whitespace at the shard's start / end that may become one ' ' across a cut. */
  leadingGap: boolean;
  trailingGap: boolean;
  bytes: number;
  invalidUtf8: number;
  /** Sentence n-gram counts (orders 2..order) for Kneser-Ney: _sentences.ts. */
  sentences?: SentenceTables;
}
