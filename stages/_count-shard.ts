/**
 * Counts one shard's token batches (local ids) into typed-array tables: the worker side of the
 * count stage. It keeps the shard's whole token stream, which doubles as the n-gram window: the
 * n-grams ending at position p are stream[p-n+1 .. p], never reaching back past the document start.
 *
 * What it cannot count are the n-grams that cross the cut into the previous shard; for those it
 * reports `head` (the first order-1 tokens of the document the shard continues) and `tail` (the last
 * order-1 tokens of its last document), which the merger joins with the running context.
 */
import type { Shard, ShardCounts, TokenBatch, TokenizerName } from '../pipeline/types.ts';
import { read } from './read.ts';
import { createTokenizer, Interner } from './tokenize.ts';
import { HASH_SEED, hashFinish, hashStep, NgramTable, UnigramCounts } from './_count-table.ts';

export type ShardTables = Pick<ShardCounts, 'stream' | 'keys' | 'counts' | 'head' | 'tail' | 'documents'>;

/**
 * Tables of the last shard this thread counted, emptied, for the next one: fresh memory costs a
 * page fault per 4 KiB (several ms per MB on some virtual machines), and a table grown to fit one
 * shard fits the next.
 */
const spareTables: Array<NgramTable | undefined> = [];

export class ShardCounter {
  readonly order: number;
  private stream = new Int32Array(1 << 16);
  private length = 0;
  /** Stream position where the current document's tokens begin. */
  private documentStart = 0;
  /** Stream position of the shard's first document start; tokens before it continue a document. */
  private firstDocumentStart = -1;
  private documents = 0;
  private readonly unigrams = new UnigramCounts();
  private readonly tables: NgramTable[] = [];

  constructor(order: number) {
    if (!Number.isInteger(order) || order < 1 || order > 5) {
      throw new RangeError(`Expected \`--order\` to be an integer from 1 to 5, got \`${order}\``);
    }
    this.order = order;
    for (let n = 2; n <= order; n++) {
      this.tables[n] = spareTables[n] ?? new NgramTable(n, 1 << 12);
      spareTables[n] = undefined;
    }
  }

  /** Bytes held by the counting tables and the stream. */
  get bytes(): number {
    return this.stream.byteLength + this.unigrams.bytes + this.tables.reduce((sum, t) => sum + (t?.bytes ?? 0), 0);
  }

  push(batch: TokenBatch): void {
    if (batch.documentStart) {
      this.documentStart = this.length;
      if (this.firstDocumentStart < 0) this.firstDocumentStart = this.length;
      this.documents++;
    }
    const ids = batch.ids;
    if (ids.length === 0) return;
    const from = this.length;
    this.reserve(from + ids.length);
    this.stream.set(ids, from);
    this.length += ids.length;
    this.countRange(from, this.length);
  }

  /** Counts every n-gram ending in stream[from .. to): the hot loop. */
  private countRange(from: number, to: number): void {
    const stream = this.stream;
    const order = this.order;
    const tables = this.tables;
    const unigrams = this.unigrams;
    const documentStart = this.documentStart;
    for (let p = from; p < to; p++) {
      const id = stream[p];
      unigrams.add(id, 1);
      let state = hashStep(HASH_SEED, id);
      const longest = Math.min(order, p - documentStart + 1);
      for (let n = 2; n <= longest; n++) {
        state = hashStep(state, stream[p - n + 1]);
        tables[n].add(stream, p - n + 1, hashFinish(state), 1);
      }
    }
  }

  private reserve(length: number): void {
    if (length <= this.stream.length) return;
    let size = this.stream.length * 2;
    while (size < length) size *= 2;
    const grown = new Int32Array(size);
    grown.set(this.stream.subarray(0, this.length));
    this.stream = grown;
  }

  /**
   * The shard's counts; the arrays are fresh (or views of buffers owned by nobody else): transferable.
   * Ends the counter: its tables go back to the thread's spares.
   */
  finish(): ShardTables {
    // At least one token even at order 1: the merger must know whether a cut has tokens on both sides.
    const edge = Math.max(1, this.order - 1);
    const continued = this.firstDocumentStart < 0 ? this.length : this.firstDocumentStart;
    const unigrams = this.unigrams.compact();
    const keys = [unigrams.keys];
    const counts = [unigrams.counts];
    for (let n = 2; n <= this.order; n++) {
      const table = this.tables[n].compact();
      keys.push(table.keys);
      counts.push(table.counts);
      this.tables[n].clear();
      spareTables[n] = this.tables[n];
    }
    return {
      stream: this.stream.subarray(0, this.length),
      keys,
      counts,
      head: this.stream.slice(0, Math.min(edge, continued)),
      tail: this.stream.slice(Math.max(this.documentStart, this.length - edge), this.length),
      documents: this.documents,
    };
  }
}

/** Buffers to list in postMessage's transfer list so that a ShardCounts moves instead of copying. */
export function transferables(counts: ShardTables): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const array of [counts.stream, counts.head, counts.tail, ...counts.keys, ...counts.counts]) {
    buffers.add(array.buffer as ArrayBuffer);
  }
  return [...buffers];
}

export interface ShardOptions {
  tokenizer: TokenizerName;
  lowercase: boolean;
  jsonField: string;
  order: number;
}

/**
 * read -> tokenize -> count for one shard: what a worker does. The tokenizer is driven here rather
 * than through `tokenize()` because the merger needs its gap flags.
 */
export async function countShard(shard: Shard, options: ShardOptions & { signal?: AbortSignal }): Promise<ShardCounts & { skippedRecords: number }> {
  const report = { invalidUtf8: 0, skippedRecords: 0 };
  const interner = new Interner();
  const tokenizer = createTokenizer({ tokenizer: options.tokenizer, lowercase: options.lowercase, interner });
  const counter = new ShardCounter(options.order);
  let open = false;
  for await (const chunk of read([shard], { jsonField: options.jsonField, report, signal: options.signal })) {
    if (chunk.documentStart && open) counter.push({ ids: tokenizer.end(), documentStart: false });
    counter.push({ ids: tokenizer.push(chunk), documentStart: chunk.documentStart });
    open = chunk.documentEnd !== true;
  }
  // end() clears the flag; shards are cut at line ends, so no token is held across a cut.
  const trailingGap = tokenizer.trailingGap;
  if (open) counter.push({ ids: tokenizer.end(), documentStart: false });
  return {
    index: shard.index,
    tokens: interner.tokens(),
    ...counter.finish(),
    leadingGap: tokenizer.leadingGap,
    trailingGap,
    bytes: shard.end - shard.start,
    invalidUtf8: report.invalidUtf8,
    skippedRecords: report.skippedRecords,
  };
}
