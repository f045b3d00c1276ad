/**
 * The count stage's main-thread merger. Shards arrive strictly in index order; for each one it
 *  - maps the shard's local ids to global ids (first-occurrence order over the whole corpus: a
 *    token new to the corpus gets the next id, in the order the shard's stream first shows it),
 *  - adds the shard's unigram counts to the global unigram table (a dense array by id),
 *  - counts the n-grams that cross the cut into the previous shard: the running context (the last
 *    order-1 tokens of the open document), one ' ' when the char tokenizer saw whitespace at the
 *    cut, and the shard's head. Each such n-gram is counted once, at the shard holding its last
 *    token; the ' ' is a real token occurrence, in the counts and in the stream,
 *  - returns the shard's stream in global ids (with that ' ' in front) for tokens.bin, and its
 *    sorted run: its n-grams of orders >= 2 (the worker's, sorted by hash, and those across the
 *    cut) mapped to global ids, as `[hash, count, w1..wn]` rows in unsigned hash order, then its
 *    sentence n-grams (Kneser-Ney's, which never cross a cut) the same way. The hashes depend on
 *    the tokens' text, not on ids, so the worker's hash is the one every run uses.
 * Everything it needs to continue after a kill is in `state`, which goes into the checkpoint
 * together with the tokens and unigram counts committed so far.
 */
import type { Shard } from '../../pipeline/types.ts';
import type { ShardCounts } from './_wire.ts';
import type { CountBatch, NgramRows } from '../../storage/counts.ts';
import { ngramHash, tokenHash, UnigramCounts } from './_table.ts';
import { sentenceRunLength, sentenceRunRows } from './_sentences.ts';
import { TokenDictionary } from './_dictionary.ts';

/** The merger's resumable state, stored in the count checkpoint. */
export interface MergeState {
  shardsDone: number;
  /** Bytes of tokens.bin that the committed counts cover. */
  streamBytes: number;
  /** Global ids of the last max(1, order-1) tokens of the document still open at the last cut. */
  context: number[];
  /** Whitespace (char tokenizer) at the last cut, not yet turned into a ' ' token. */
  pendingGap: boolean;
  /** N-gram occurrences per order in the shards merged. */
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
  /** Every token, by global id: the ones from `savedTokens` on go into the next flush. */
  private dictionary = new TokenDictionary();
  /** Each worker dictionary seen: its tokens by local id and their global ids (-1: not seen yet). */
  private readonly dictionaries = new Map<string, { texts: string[]; hashes: number[]; map: Int32Array }>();
  /** Ids below this are in the tokens table. */
  private savedTokens: number;
  /** Unigram counts merged since the last flush. */
  private unigrams = new UnigramCounts();
  /** Per table of the run, the buffer the last shard's rows are in (see runRows). */
  private runBuffers: Int32Array[] = [];

  constructor(order: number, options: { tokens?: readonly string[]; state?: MergeState } = {}) {
    this.order = order;
    const tokens = options.tokens ?? [];
    tokens.forEach((token) => this.globalId(token, tokenHash(token)));
    this.savedTokens = tokens.length;
    this.state = options.state ?? {
      shardsDone: 0, streamBytes: 0, context: [], pendingGap: false,
      totals: new Array(order).fill(0), documents: 0, bytes: 0, invalidUtf8: 0, skippedRecords: 0,
    };
  }

  /** Distinct tokens so far. */
  get tokenCount(): number {
    return this.released ?? this.dictionary.size;
  }

  /** Set by release(): the token count when the dictionaries were let go. */
  private released?: number;

  /**
   * Lets go of the dictionaries (every token, and the workers' dictionaries) once every shard is
   * merged: the reduce and write phases need only `state`.
   */
  release(): void {
    this.released = this.dictionary.size;
    this.dictionary = new TokenDictionary();
    this.dictionaries.clear();
    this.unigrams = new UnigramCounts(16);
    this.runBuffers = [];
  }

  /** The most bytes the counts held until the next flush (the unigram table) hold while `counts` is merged (an upper bound: they may grow). */
  peakBytes(counts: ShardCounts): number {
    return this.unigrams.peakBytes(this.dictionary.size + counts.tokens.length + 1);
  }

  /** Bytes of the dictionary of every token (the one part of the merger that grows with the corpus). */
  get dictionaryBytes(): number {
    return this.dictionary.bytes;
  }

  /**
   * Merges one shard (the next in index order). Returns its stream in global ids, in pieces (the
   * ' ' across the cut, then the shard's own stream, remapped in place), and its run: `run[t]`
   * holds the rows of table t (stages/count/_runfile.ts runTables), valid until the next merge.
   */
  merge(shard: Shard, counts: ShardCounts): { pieces: Int32Array[]; run: Int32Array[] } {
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
    state.totals[0] += stream.length;
    const head = Int32Array.from(counts.head, (id) => map[id]);
    const across = shard.continuesDocument ? this.addAcrossCut(state.context, gap ? [space] : [], head) : [];
    const run: Int32Array[] = [];
    for (let n = 2; n <= this.order; n++) run.push(this.runRows(n, counts, map, across[n] ?? []));
    for (let n = 2; n <= this.order && counts.sentences; n++) run.push(sentenceRunRows(counts.sentences, n, map, this.runBuffer(run.length, sentenceRunLength(counts.sentences, n))));
    const pieces = gap ? [Int32Array.of(space), stream] : [stream];
    this.advanceContext(shard, counts, pieces);
    state.shardsDone++;
    state.documents += counts.documents;
    state.bytes += counts.bytes;
    state.invalidUtf8 += counts.invalidUtf8;
    state.skippedRecords += (counts as ShardCounts & { skippedRecords?: number }).skippedRecords ?? 0;
    state.skippedFields ??= counts.skippedFields;
    return { pieces, run };
  }

  /**
   * The map local id -> global id of the shard's dictionary, extended by the tokens the shard adds
   * to it; tokens it shows for the first time get their global ids in the order the stream shows them.
   */
  private localMap(counts: ShardCounts): Int32Array {
    // Shards come in order and a thread's in its order too: the dictionary it replaced is done.
    if (counts.replaces !== undefined) this.dictionaries.delete(counts.replaces);
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
    return this.dictionary.idOf(token, hash);
  }

  /**
   * `length` Int32s for table t's rows, in a buffer reused from shard to shard: a fresh 20-30 MB a
   * shard was garbage that the collector let pile up to hundreds of MB on a 1 GB corpus.
   */
  private runBuffer(t: number, length: number): Int32Array {
    if (this.runBuffers[t] === undefined || this.runBuffers[t].length < length) this.runBuffers[t] = new Int32Array(Math.ceil(length * 1.25));
    return this.runBuffers[t].subarray(0, length);
  }

  /**
   * The shard's order-n rows `[hash, count, w1..wn]` in global ids, merged in unsigned hash order
   * with the rows across the cut (count 1 each; the reduce adds up equal keys).
   */
  private runRows(n: number, counts: ShardCounts, map: Int32Array, across: Array<{ hash: number; key: number[] }>): Int32Array {
    const keys = counts.keys[n - 1];
    const hashes = counts.hashes[n - 1];
    const values = counts.counts[n - 1];
    const stride = n + 2;
    const length = (values.length + across.length) * stride;
    const rows = this.runBuffer(n - 2, length);
    across.sort((a, b) => (a.hash >>> 0) - (b.hash >>> 0));
    let total = 0;
    for (let row = 0, next = 0, out = 0; out < rows.length; out += stride) {
      if (next < across.length && (row === values.length || across[next].hash >>> 0 < hashes[row] >>> 0)) {
        rows[out] = across[next].hash;
        rows[out + 1] = 1;
        rows.set(across[next++].key, out + 2);
        total++;
        continue;
      }
      rows[out] = hashes[row];
      rows[out + 1] = values[row];
      for (let k = 0; k < n; k++) rows[out + 2 + k] = map[keys[row * n + k]];
      total += values[row];
      row++;
    }
    this.state.totals[n - 1] += total;
    return rows;
  }

  /**
   * The n-grams of `context + gap + head` that end in gap or head and start in context or gap
   * (those inside context were counted before, those inside head by the worker): unigrams are
   * added here, the rest returned by order with their hashes.
   */
  private addAcrossCut(context: readonly number[], gap: readonly number[], head: Int32Array): Array<Array<{ hash: number; key: number[] }>> {
    const sequence = Int32Array.from([...context, ...gap, ...head]);
    const left = context.length + gap.length;
    const across: Array<Array<{ hash: number; key: number[] }>> = [];
    for (let end = context.length; end < sequence.length; end++) {
      for (let n = 1; n <= this.order && n <= end + 1; n++) {
        const start = end - n + 1;
        if (start >= left) continue;
        if (n === 1) {
          this.unigrams.add(sequence[start], 1);
          this.state.totals[0]++;
        } else {
          (across[n] ??= []).push({ hash: ngramHash(sequence, start, n, this.dictionary.hashes), key: Array.from(sequence.subarray(start, start + n)) });
        }
      }
    }
    return across;
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
   * Hands the tokens and unigram counts merged since the last flush to `save` (saveCounts, with the
   * state to checkpoint), then empties the unigram table (keeping its size).
   */
  flush(save: (batch: CountBatch, state: MergeState) => void): void {
    const unigrams = this.unigrams;
    const keys = occupied(unigrams.counts, unigrams.size);
    const rows: NgramRows = { order: 1, keys, stride: 1, offset: 0, counts: Float64Array.from(keys, (id) => unigrams.counts[id]), countStride: 1, countOffset: 0, rows: Int32Array.from(keys, (_, row) => row) };
    const tokens = Array.from({ length: this.dictionary.size - this.savedTokens }, (_, i) => this.dictionary.token(this.savedTokens + i));
    save({ firstTokenId: this.savedTokens, tokens, ngrams: [rows] }, this.state);
    this.savedTokens = this.dictionary.size;
    unigrams.clear();
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
