/**
 * The count stage's main-thread merger. Shards arrive strictly in index order; for each one it
 *  - maps the shard's local ids to global ids (first-occurrence order over the whole corpus: a
 *    token new to the corpus gets the next id, in the order the shard's stream first shows it),
 *  - adds the shard's n-gram counts to the global typed-array tables (at the hashes the worker
 *    computed: they depend on the tokens' text, not on ids, and arrive in nearly ascending slot order),
 *  - counts the n-grams that cross the cut into the previous shard: the running context (the last
 *    order-1 tokens of the open document), one ' ' when the char tokenizer saw whitespace at the
 *    cut, and the shard's head. Each such n-gram is counted once, at the shard holding its last
 *    token; the ' ' is a real token occurrence, in the counts and in the stream,
 *  - returns the shard's stream in global ids (with that ' ' in front) for tokens.bin.
 * Everything it needs to continue after a kill is in `state`, which goes into the checkpoint
 * together with the counts spilled so far.
 */
import type { Shard } from '../../pipeline/types.ts';
import type { ShardCounts } from './_wire.ts';
import type { CountBatch, NgramRows } from '../../storage/counts.ts';
import { NgramTable, ngramHash, tokenHash, UnigramCounts } from './_table.ts';
import { SentenceMerger } from './_sentences.ts';

/** The merger's resumable state, stored in the count checkpoint. */
export interface MergeState {
  shardsDone: number;
  /** Bytes of tokens.bin that the committed counts cover. */
  streamBytes: number;
  /** Global ids of the last max(1, order-1) tokens of the document still open at the last cut. */
  context: number[];
  /** Whitespace (char tokenizer) at the last cut, not yet turned into a ' ' token. */
  pendingGap: boolean;
  /** N-gram occurrences per order, committed and pending. */
  totals: number[];
  documents: number;
  bytes: number;
  invalidUtf8: number;
  skippedRecords: number;
  /** The fields of the first JSON record skipped for want of --json-field. */
  skippedFields?: string[];
}

/** The gap token the char tokenizer's whitespace runs become. */
const SPACE = ' ';

export class CountMerger {
  readonly order: number;
  readonly state: MergeState;
  private readonly dictionary = new Map<string, number>();
  /** Every token, by global id: the ones from `savedTokens` on go into the next flush. */
  private readonly texts: string[] = [];
  /** tokenHash of each global id's text. */
  private tokenHashes = new Int32Array(1024);
  /** Each worker dictionary seen: its tokens by local id and their global ids (-1: not seen yet). */
  private readonly dictionaries = new Map<string, { texts: string[]; hashes: number[]; map: Int32Array }>();
  /** Ids below this are in the tokens table. */
  private savedTokens: number;
  /** Tokens merged since the tables were last emptied: a bound on any count in them. */
  private pendingTokens = 0;
  private unigrams = new UnigramCounts();
  private tables: NgramTable[] = [];
  /** Sentence n-grams (Kneser-Ney's counts), flushed with the rest. */
  private readonly sentences: SentenceMerger;

  constructor(order: number, options: { tokens?: readonly string[]; state?: MergeState } = {}) {
    this.order = order;
    const tokens = options.tokens ?? [];
    tokens.forEach((token) => this.globalId(token, tokenHash(token)));
    this.savedTokens = tokens.length;
    this.sentences = new SentenceMerger(order);
    this.state = options.state ?? {
      shardsDone: 0, streamBytes: 0, context: [], pendingGap: false,
      totals: new Array(order).fill(0), documents: 0, bytes: 0, invalidUtf8: 0, skippedRecords: 0,
    };
    this.resetTables();
  }

  /** Distinct tokens so far. */
  get tokenCount(): number {
    return this.dictionary.size;
  }

  /** Bytes held by the in-memory tables. */
  get bytes(): number {
    return this.unigrams.bytes + this.tables.reduce((sum, table) => sum + (table?.bytes ?? 0), 0) + this.sentences.bytes;
  }

  /** Whether merging `counts` could overflow the tables' int32 counts: commit first then. */
  overflows(counts: ShardCounts): boolean {
    return this.pendingTokens + counts.stream.length + 1 > 0x7fffffff;
  }

  /** The most bytes the tables would hold while merging `counts` (an upper bound). */
  peakBytes(counts: ShardCounts): number {
    let peak = this.unigrams.peakBytes(this.dictionary.size + counts.firstSeen.length + 1);
    for (let n = 2; n <= this.order; n++) peak += this.tables[n].peakBytes(counts.counts[n - 1].length + n);
    peak += this.sentences.peakBytes(counts.sentences);
    return peak;
  }

  /**
   * Merges one shard (the next in index order) and returns its stream in global ids, in pieces
   * (the ' ' across the cut, then the shard's own stream, remapped in place).
   */
  merge(shard: Shard, counts: ShardCounts): Int32Array[] {
    const state = this.state;
    if (shard.index !== state.shardsDone) {
      throw new RangeError(`Expected shard ${state.shardsDone} next, got shard ${shard.index}`);
    }
    if (!shard.continuesDocument) {
      state.context = [];
      state.pendingGap = false;
    }
    const gap = shard.continuesDocument && (state.pendingGap || counts.leadingGap) &&
      state.context.length > 0 && counts.head.length > 0;
    // Global ids go by first occurrence in the stream (the ' ' first: it precedes the shard's
    // tokens), not by the local dictionary's order, which a tokenizer need not keep.
    const space = gap ? this.globalId(SPACE, tokenHash(SPACE)) : -1;
    const map = this.localMap(counts);
    // In place: the shard's buffers are the merger's now (transferred from a worker).
    const stream = counts.stream;
    remap(stream, map, stream);
    const unigramKeys = counts.keys[0];
    const unigramCounts = counts.counts[0];
    for (let row = 0; row < unigramKeys.length; row++) this.unigrams.add(map[unigramKeys[row]], unigramCounts[row]);
    for (let n = 2; n <= this.order; n++) this.addMapped(this.tables[n], counts, map);
    this.sentences.merge(counts.sentences, map);
    const head = Int32Array.from(counts.head, (id) => map[id]);
    if (shard.continuesDocument) this.addAcrossCut(state.context, gap ? [space] : [], head);
    const pieces = gap ? [Int32Array.of(space), stream] : [stream];
    this.advanceContext(shard, counts, pieces);
    this.pendingTokens += stream.length + pieces.length - 1;
    state.shardsDone++;
    state.documents += counts.documents;
    state.bytes += counts.bytes;
    state.invalidUtf8 += counts.invalidUtf8;
    state.skippedRecords += (counts as ShardCounts & { skippedRecords?: number }).skippedRecords ?? 0;
    state.skippedFields ??= counts.skippedFields;
    return pieces;
  }

  /**
   * The map local id -> global id of the shard's dictionary, extended by the tokens the shard adds
   * to it; tokens it shows for the first time get their global ids in the order the stream shows them.
   */
  private localMap(counts: ShardCounts): Int32Array {
    let local = this.dictionaries.get(counts.dictionary);
    if (!local) this.dictionaries.set(counts.dictionary, (local = { texts: [], hashes: [], map: new Int32Array(0) }));
    if (counts.firstToken !== local.texts.length) {
      throw new RangeError(`Expected shard ${counts.index} to continue dictionary ${counts.dictionary} at token ${local.texts.length}, got ${counts.firstToken}`);
    }
    // One at a time: a first shard can bring more tokens than a spread's argument limit.
    for (let i = 0; i < counts.tokens.length; i++) {
      local.texts.push(counts.tokens[i]);
      local.hashes.push(counts.tokenHashes[i]);
    }
    if (local.map.length < local.texts.length) {
      const grown = new Int32Array(Math.max(local.texts.length, local.map.length * 2)).fill(-1);
      grown.set(local.map);
      local.map = grown;
    }
    const map = local.map;
    for (const id of counts.firstSeen) if (map[id] < 0) map[id] = this.globalId(local.texts[id], local.hashes[id]);
    return map;
  }

  private globalId(token: string, hash: number): number {
    let id = this.dictionary.get(token);
    if (id === undefined) {
      id = this.dictionary.size;
      this.dictionary.set(token, id);
      this.texts.push(token);
      if (id === this.tokenHashes.length) {
        const grown = new Int32Array(id * 2);
        grown.set(this.tokenHashes);
        this.tokenHashes = grown;
      }
      this.tokenHashes[id] = hash;
    }
    return id;
  }

  /** Adds the shard's n-grams of the table's order, their local ids mapped to global ones. */
  private addMapped(table: NgramTable, counts: ShardCounts, map: Int32Array): void {
    const n = table.order;
    const keys = counts.keys[n - 1];
    const hashes = counts.hashes[n - 1];
    const values = counts.counts[n - 1];
    const key = new Int32Array(n);
    table.reserve(values.length);
    for (let row = 0, base = 0; row < values.length; row++, base += n) {
      for (let k = 0; k < n; k++) key[k] = map[keys[base + k]];
      table.add(key, 0, hashes[row], values[row]);
    }
  }

  /**
   * Counts the n-grams of `context + gap + head` that end in gap or head and start in context or
   * gap: those inside context were counted before, those inside head by the worker.
   */
  private addAcrossCut(context: readonly number[], gap: readonly number[], head: Int32Array): void {
    const sequence = Int32Array.from([...context, ...gap, ...head]);
    const left = context.length + gap.length;
    for (let end = context.length; end < sequence.length; end++) {
      for (let n = 1; n <= this.order && n <= end + 1; n++) {
        const start = end - n + 1;
        if (start >= left) continue;
        if (n === 1) this.unigrams.add(sequence[start], 1);
        else this.tables[n].add(sequence, start, ngramHash(sequence, start, n, this.tokenHashes), 1);
      }
    }
  }

  /** The context and gap the next shard continues from. */
  private advanceContext(shard: Shard, counts: ShardCounts, pieces: Int32Array[]): void {
    const state = this.state;
    const edge = Math.max(1, this.order - 1);
    const stream = pieces[pieces.length - 1];
    if (counts.documents === 0 && shard.continuesDocument) {
      // No document starts here: the open document runs through the whole shard.
      const joined = [...state.context, ...pieces.flatMap((piece) => Array.from(piece.subarray(Math.max(0, piece.length - edge))))];
      state.context = joined.slice(-edge);
      state.pendingGap = counts.stream.length === 0
        ? state.pendingGap || counts.leadingGap || counts.trailingGap
        : counts.trailingGap;
    } else {
      // The tail is the end of the shard's stream: its last document's last tokens.
      state.context = Array.from(stream.subarray(stream.length - counts.tail.length));
      state.pendingGap = counts.trailingGap;
    }
  }

  /**
   * Hands everything counted since the last flush to `save` (saveCounts, with the state to
   * checkpoint), then empties the tables. They keep their size: the next shards fill them again,
   * and refilling is cheaper than regrowing.
   */
  flush(save: (batch: CountBatch, state: MergeState) => void): void {
    const batch: CountBatch = { firstTokenId: this.savedTokens, tokens: this.texts.slice(this.savedTokens), ngrams: [...this.rows(), ...this.sentences.rows()] };
    const totals = this.state.totals.map((total, i) => total + (i === 0 ? this.unigrams.total : this.tables[i + 1].total));
    save(batch, { ...this.state, totals });
    this.state.totals = totals;
    this.savedTokens = this.dictionary.size;
    this.pendingTokens = 0;
    this.unigrams.clear();
    for (let n = 2; n <= this.order; n++) this.tables[n].clear();
    this.sentences.clear();
  }

  private rows(): NgramRows[] {
    const unigrams = this.unigrams;
    const ids = Int32Array.from({ length: unigrams.size }, (_, id) => id);
    const rows: NgramRows[] = [{
      order: 1, keys: ids, stride: 1, offset: 0, counts: unigrams.counts, countStride: 1, countOffset: 0,
      rows: occupied(unigrams.counts, unigrams.size),
    }];
    for (let n = 2; n <= this.order; n++) {
      const { slots, stride } = this.tables[n];
      rows.push({ order: n, keys: slots, stride, offset: 2, counts: slots, countStride: stride, countOffset: 1, rows: this.tables[n].occupied() });
    }
    return rows;
  }

  private resetTables(): void {
    this.unigrams = new UnigramCounts(Math.max(1024, this.dictionary.size));
    this.tables = [];
    for (let n = 2; n <= this.order; n++) this.tables[n] = new NgramTable(n, 1 << 12);
  }
}

/** Ids below `size` with a non-zero count. */
function occupied(counts: Float64Array, size: number): Int32Array {
  const rows = new Int32Array(size);
  let row = 0;
  for (let id = 0; id < size; id++) if (counts[id] !== 0) rows[row++] = id;
  return rows.subarray(0, row);
}

/** out[i] = map[ids[i]]: its own small function so that V8 optimizes the loop on its own. */
function remap(ids: Int32Array, map: Int32Array, out: Int32Array): void {
  for (let i = 0; i < ids.length; i++) out[i] = map[ids[i]];
}
