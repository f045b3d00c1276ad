/**
 * Counts one shard's token batches (local ids): the worker side of the count stage. It keeps the
 * shard's whole token stream and where each document starts; `finish()` counts the orders n >= 2
 * over the whole stream at once (stages/count/_radix.ts), never reaching back past a document start.
 *
 * What it cannot count are the n-grams that cross the cut into the previous shard; for those it
 * reports `head` (the first order-1 tokens of the document the shard continues) and `tail` (the last
 * order-1 tokens of its last document), which the merger joins with the running context.
 */
import type { Shard, TokenBatch, TokenizerName } from '../../pipeline/types.ts';
import type { ShardCounts } from './_wire.ts';
import { read, type ReadReport } from '../ingest/index.ts';
import { createTokenizer, Interner } from '../ingest/index.ts';
import { countNgrams } from './_radix.ts';
import { tokenHash, UnigramCounts } from './_table.ts';
import { IdList } from '../ingest/index.ts';
import { bufferPool } from '../../lib/buffer-pool.ts';
import { SentenceCounter, SentenceSplitter, sentenceBuffers } from './_sentences.ts';

export type ShardTables = Pick<ShardCounts, 'stream' | 'firstSeen' | 'keys' | 'counts' | 'hashes' | 'head' | 'tail' | 'documents' | 'sentences'>;

/**
 * Tokens in the last shard this thread counted: the next stream starts that big (a fresh buffer
 * from the pool has an eighth more), so it rarely grows. Growing copies it, and fresh memory costs
 * a page fault per 4 KiB.
 */
let lastLength = 1 << 16;

export class ShardCounter {
  readonly order: number;
  private stream = bufferPool.int32(lastLength);
  private length = 0;
  /** Stream positions where documents begin; tokens before the first continue a document. */
  private readonly documentStarts = new IdList();
  private readonly unigrams = new UnigramCounts();

  constructor(order: number) {
    if (!Number.isInteger(order) || order < 1 || order > 5) {
      throw new RangeError(`Expected \`--order\` to be an integer from 1 to 5, got \`${order}\``);
    }
    this.order = order;
  }

  push(batch: TokenBatch): void {
    if (batch.documentStart) this.documentStarts.push(this.length);
    const ids = batch.ids;
    if (ids.length === 0) return;
    this.reserve(this.length + ids.length);
    this.stream.set(ids, this.length);
    this.length += ids.length;
    const unigrams = this.unigrams;
    for (let i = 0; i < ids.length; i++) unigrams.add(ids[i], 1);
  }

  private reserve(length: number): void {
    if (length <= this.stream.length) return;
    let size = this.stream.length * 2;
    while (size < length) size *= 2;
    const grown = bufferPool.int32(size);
    grown.set(this.stream.subarray(0, this.length));
    bufferPool.give([this.stream.buffer as ArrayBuffer]);
    this.stream = grown;
  }

  /**
   * The shard's counts; every array is fresh (or a view of a buffer nobody else holds): transferable.
   * `tokenHashes[id]` is tokenHash of local id's text (default: the id itself, for callers with no
   * text, whose hashes then mean nothing outside this shard).
   */
  finish(tokenHashes: Int32Array = Int32Array.from({ length: this.unigrams.size }, (_, id) => id)): ShardTables {
    lastLength = Math.max(1 << 16, this.length);
    const stream = this.stream.subarray(0, this.length);
    const starts = this.documentStarts.take();
    const unigrams = this.unigrams.compact();
    const keys: Int32Array[] = [unigrams.keys];
    const counts: Float64Array[] = [unigrams.counts];
    const hashes: Int32Array[] = [new Int32Array(0)];
    const ngrams = countNgrams(stream, starts, { order: this.order, tokenHashes });
    for (let n = 2; n <= this.order; n++) {
      const rows = ngrams[n];
      keys.push(rows.keys);
      counts.push(rows.counts);
      hashes.push(rows.hashes);
    }
    // At least one token even at order 1: the merger must know whether a cut has tokens on both sides.
    const edge = Math.max(1, this.order - 1);
    const continued = starts.length > 0 ? starts[0] : this.length;
    const lastStart = starts.length > 0 ? starts[starts.length - 1] : 0;
    return {
      stream,
      firstSeen: firstSeen(stream, unigrams.keys.length, this.unigrams.size),
      keys,
      counts,
      hashes,
      head: stream.slice(0, Math.min(edge, continued)),
      tail: stream.slice(Math.max(lastStart, this.length - edge), this.length),
      documents: starts.length,
    };
  }
}

/**
 * The distinct ids of `stream` (`distinct` of them, all below `size`) in the order the stream first
 * shows them: the order in which the merger gives new tokens their global ids.
 */
function firstSeen(stream: Int32Array, distinct: number, size: number): Int32Array {
  const order = new Int32Array(distinct);
  const seen = new Uint8Array(size);
  for (let i = 0, found = 0; found < distinct; i++) {
    const id = stream[i];
    if (seen[id] === 0) {
      seen[id] = 1;
      order[found++] = id;
    }
  }
  return order;
}

/** Buffers to list in postMessage's transfer list so that a ShardCounts moves instead of copying. */
export function transferables(counts: ShardTables): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const array of [counts.stream, counts.firstSeen, counts.head, counts.tail, ...counts.keys, ...counts.counts, ...counts.hashes]) {
    buffers.add(array.buffer as ArrayBuffer);
  }
  for (const buffer of sentenceBuffers(counts.sentences)) buffers.add(buffer);
  return [...buffers];
}

export interface ShardOptions {
  tokenizer: TokenizerName;
  lowercase: boolean;
  jsonField: string;
  order: number;
  /**
   * Names one run of the count stage: a thread keeps its dictionary across the shards of one run
   * and starts a new one for the next. Without it, each shard has a dictionary of its own.
   */
  run?: string;
  /**
   * A thread's dictionary holds every token it has seen, and so does the main thread's copy of it:
   * past this many tokens the thread starts a new one (and resends what a shard needs), so that a
   * huge vocabulary stays within the memory budget.
   */
  dictionaryTokens?: number;
  /** Bytes of recycled result buffers a thread keeps for its next shards (lib/buffer-pool.ts). */
  poolBytes?: number;
}

/** This thread's dictionary in the current run: local ids stay the same from shard to shard. */
let dictionary: { key: string; id: string; interner: Interner; hashes: Int32Array; sent: number; replaces?: string } | undefined;

function threadDictionary(options: ShardOptions): NonNullable<typeof dictionary> {
  const key = `${options.run}\t${options.tokenizer}\t${options.lowercase}`;
  const full = dictionary !== undefined && dictionary.interner.size > (options.dictionaryTokens ?? Infinity);
  if (options.run === undefined || dictionary?.key !== key || full) {
    const replaces = full ? dictionary!.id : undefined;
    dictionary = { key, id: crypto.randomUUID(), interner: new Interner(), hashes: new Int32Array(1024), sent: 0, replaces };
  }
  return dictionary;
}

/** One job of the worker pool (pipeline/workers.ts): a shard, and buffers of results done with. */
export interface CountJob {
  shard: Shard;
  options: ShardOptions;
  recycle?: ArrayBuffer[];
}

/** Runs a CountJob on this thread, in a worker or (`inline`) on the main thread. */
export function countJob({ shard, options, recycle = [] }: CountJob): ReturnType<typeof countShard> {
  bufferPool.limit = options.poolBytes ?? Infinity;
  bufferPool.give(recycle);
  return countShard(shard, options);
}

/**
 * read -> tokenize -> count for one shard: what a worker does. The tokenizer is driven here rather
 * than through `tokenize()` because the merger needs its gap flags.
 */
export async function countShard(shard: Shard, options: ShardOptions & { signal?: AbortSignal }): Promise<ShardCounts & { skippedRecords: number }> {
  const report: ReadReport = { invalidUtf8: 0, skippedRecords: 0 };
  const local = threadDictionary(options);
  const interner = local.interner;
  const tokenizer = createTokenizer({ tokenizer: options.tokenizer, lowercase: options.lowercase, interner });
  const counter = new ShardCounter(options.order);
  // The same pass also counts the sentence n-grams (Kneser-Ney's input; _sentences.ts).
  const sentences = options.order >= 2 ? new SentenceCounter(options.order) : undefined;
  const splitter = sentences && new SentenceSplitter({ tokenizer: options.tokenizer, lowercase: options.lowercase, interner });
  const addSentence = (ids: Int32Array) => sentences!.push(ids);
  let open = false;
  for await (const chunk of read([shard], { jsonField: options.jsonField, report, signal: options.signal })) {
    if (chunk.documentStart && open) {
      counter.push({ ids: tokenizer.end(), documentStart: false });
      splitter?.end(addSentence);
    }
    counter.push({ ids: tokenizer.push(chunk), documentStart: chunk.documentStart });
    splitter?.push(chunk, addSentence);
    open = chunk.documentEnd !== true;
  }
  // end() clears the flag; shards are cut at line ends, so no token is held across a cut.
  const trailingGap = tokenizer.trailingGap;
  if (open) counter.push({ ids: tokenizer.end(), documentStart: false });
  splitter?.end(addSentence);
  // Only the tokens this thread has not sent yet travel; the hashes of all of them count n-grams.
  const firstToken = local.sent;
  const tokens = interner.tokensFrom(firstToken);
  if (local.hashes.length < interner.size) {
    const grown = new Int32Array(Math.max(interner.size, local.hashes.length * 2));
    grown.set(local.hashes.subarray(0, firstToken));
    local.hashes = grown;
  }
  tokens.forEach((token, i) => (local.hashes[firstToken + i] = tokenHash(token)));
  local.sent = interner.size;
  return {
    index: shard.index,
    dictionary: local.id,
    replaces: firstToken === 0 ? local.replaces : undefined,
    firstToken,
    tokens,
    tokenHashes: local.hashes.slice(firstToken, interner.size),
    ...counter.finish(local.hashes.subarray(0, interner.size)),
    sentences: sentences?.finish(local.hashes.subarray(0, interner.size)),
    leadingGap: tokenizer.leadingGap,
    trailingGap,
    bytes: shard.format === 'stdin' ? report.stdinBytes ?? 0 : shard.end - shard.start,
    invalidUtf8: report.invalidUtf8,
    skippedRecords: report.skippedRecords,
    skippedFields: report.skippedFields,
  };
}
