/**
 * One shard's counts as bytes, for the object store: what a NATS worker uploads and the coordinator
 * merges. Raw typed arrays would be about 6x the shard's text (word trigrams: 23 MB for a 4 MB
 * shard), and every byte crosses the network twice (put, get: 140-370 MB/s on loopback, and less
 * between machines), so every integer is a LEB128 varint: ids are small (a shard's own dictionary, first-occurrence order) and most counts are 1, which
 * brings it near 1.7x. The n-gram hashes are not sent: the decoder recomputes them from the tokens'
 * text (the same `ngramHash` the worker used), which costs less than moving them.
 *
 * Format (version 2):
 *   "LMPC" | u32 LE header length | header (UTF-8 JSON) | body (varints)
 *   header: { version, run, index, order, tokens: [text of local id 0, 1, ...], documents,
 *             leadingGap, trailingGap, bytes, invalidUtf8, skippedRecords,
 *             lengths: { stream, firstSeen, head, tail, rows: [distinct n-grams per order],
 *                        sentenceRows: [distinct sentence n-grams per order 2..order] } }
 *   body:   stream, firstSeen, head, tail, then per order n: keys (rows * n ids), counts (rows),
 *           then per sentence order n >= 2 the same, ids shifted by 2 (</s> -2 is 0, <s> -1 is 1)
 * A shard counted for NATS has a dictionary of its own (local ids from 0), so a result stands alone:
 * any worker may produce it, any coordinator run may merge it.
 *
 * `decodeShardCounts` trusts nothing: a wrong run or shard, an id outside the dictionary, a count of
 * 0, unigram counts that disagree with the stream, or bytes left over all throw, so a garbage result
 * stops the run instead of becoming wrong counts.
 */
import { ngramHash, sentenceRowHashes, tokenHash, type ShardCounts } from '../index.ts';

const MAGIC = 0x43504d4c; // "LMPC" read as u32 LE
const VERSION = 2;
/** Sentence ids travel shifted by this much: the markers (-1, -2) become small varints. */
const MARKER_SHIFT = 2;

export type CountResult = ShardCounts & { skippedRecords: number };

interface Header {
  version: number;
  run: string;
  index: number;
  order: number;
  tokens: string[];
  documents: number;
  leadingGap: boolean;
  trailingGap: boolean;
  bytes: number;
  invalidUtf8: number;
  skippedRecords: number;
  lengths: { stream: number; firstSeen: number; head: number; tail: number; rows: number[]; sentenceRows: number[] };
}

/** The bytes of one shard's counts (counted with a dictionary of its own: firstToken 0). */
export function encodeShardCounts(counts: CountResult, run: string): Uint8Array {
  if (counts.firstToken !== 0) throw new RangeError(`Expected a shard counted with its own dictionary, got firstToken ${counts.firstToken}`);
  const order = counts.keys.length;
  const header: Header = {
    version: VERSION, run, index: counts.index, order, tokens: counts.tokens, documents: counts.documents,
    leadingGap: counts.leadingGap, trailingGap: counts.trailingGap, bytes: counts.bytes,
    invalidUtf8: counts.invalidUtf8, skippedRecords: counts.skippedRecords,
    lengths: {
      stream: counts.stream.length, firstSeen: counts.firstSeen.length, head: counts.head.length, tail: counts.tail.length,
      rows: counts.counts.map((values) => values.length),
      sentenceRows: counts.sentences?.counts.map((values) => values.length) ?? [],
    },
  };
  const sentenceKeys = (counts.sentences?.keys ?? []).map((keys) => Int32Array.from(keys, (id) => id + MARKER_SHIFT));
  const sentenceCounts = counts.sentences?.counts ?? [];
  const text = new TextEncoder().encode(JSON.stringify(header));
  const ids = [counts.stream, counts.firstSeen, counts.head, counts.tail, ...counts.keys, ...sentenceKeys];
  // A u32 varint takes at most 5 bytes; a count below 2^53 at most 8.
  const bound = 8 + text.length + 5 * ids.reduce((sum, array) => sum + array.length, 0) +
    8 * [...counts.counts, ...sentenceCounts].reduce((sum, values) => sum + values.length, 0);
  const out = new Uint8Array(bound);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, text.length, true);
  out.set(text, 8);
  let at = 8 + text.length;
  for (const array of [counts.stream, counts.firstSeen, counts.head, counts.tail]) at = writeVarints(out, at, array);
  for (let n = 1; n <= order; n++) {
    at = writeVarints(out, at, counts.keys[n - 1]);
    at = writeVarints(out, at, counts.counts[n - 1]);
  }
  sentenceKeys.forEach((keys, i) => {
    at = writeVarints(out, at, keys);
    at = writeVarints(out, at, sentenceCounts[i]);
  });
  return out.subarray(0, at);
}

/**
 * The shard counts in `bytes`, checked against the job they answer (`run`, `index`, `order`).
 * Throws a RangeError saying what is wrong; the caller names the shard.
 */
export function decodeShardCounts(bytes: Uint8Array, expected: { run: string; index: number; order: number }): CountResult {
  if (bytes.length < 8) throw new RangeError(`Expected a count result, got ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new RangeError('Expected a count result, got bytes that do not start with LMPC');
  const headerLength = view.getUint32(4, true);
  if (8 + headerLength > bytes.length) throw new RangeError(`Expected a header of ${headerLength} bytes, got ${bytes.length - 8}`);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (error) {
    throw new RangeError(`Expected a JSON header, got ${(error as Error).message}`);
  }
  const { run, index, order } = expected;
  if (header.version !== VERSION) throw new RangeError(`Expected format version ${VERSION}, got ${header.version}`);
  if (header.run !== run || header.index !== index || header.order !== order) {
    throw new RangeError(`Expected run ${run} shard ${index} order ${order}, got run ${header.run} shard ${header.index} order ${header.order}`);
  }
  const { lengths, tokens } = header;
  if (!Array.isArray(tokens) || !tokens.every((token) => typeof token === 'string') || lengths?.rows?.length !== order ||
    lengths.sentenceRows?.length !== Math.max(0, order - 1)) {
    throw new RangeError('Expected a token list, one row count per order and one sentence row count per order from 2 in the header');
  }
  const reader = { bytes, at: 8 + headerLength };
  const size = tokens.length;
  const stream = readIds(reader, lengths.stream, size, 'stream');
  const firstSeen = readIds(reader, lengths.firstSeen, size, 'firstSeen');
  const head = readIds(reader, lengths.head, size, 'head');
  const tail = readIds(reader, lengths.tail, size, 'tail');
  const tokenHashes = Int32Array.from(tokens, tokenHash);
  const keys: Int32Array[] = [];
  const counts: Float64Array[] = [];
  const hashes: Int32Array[] = [new Int32Array(0)];
  for (let n = 1; n <= order; n++) {
    const rows = lengths.rows[n - 1];
    keys.push(readIds(reader, rows * n, size, `${n}-gram keys`));
    counts.push(readCounts(reader, rows, `${n}-gram counts`));
    if (n >= 2) hashes.push(rowHashes(keys[n - 1], n, tokenHashes));
  }
  const sentences = { keys: [] as Int32Array[], counts: [] as Float64Array[], hashes: [] as Int32Array[] };
  for (let n = 2; n <= order; n++) {
    const rows = lengths.sentenceRows[n - 2];
    const shifted = readIds(reader, rows * n, size + MARKER_SHIFT, `sentence ${n}-gram keys`);
    sentences.keys.push(shifted.map((id) => id - MARKER_SHIFT));
    sentences.counts.push(readCounts(reader, rows, `sentence ${n}-gram counts`));
    sentences.hashes.push(sentenceRowHashes(sentences.keys[n - 2], n, tokenHashes));
  }
  if (reader.at !== bytes.length) throw new RangeError(`Expected ${reader.at} bytes, got ${bytes.length}`);
  checkUnigrams(stream, firstSeen, keys[0], counts[0], size);
  return {
    index, dictionary: `nats:${run}:${index}`, firstToken: 0, tokens, tokenHashes, stream, firstSeen, keys, counts, hashes, head, tail,
    documents: header.documents, leadingGap: header.leadingGap === true, trailingGap: header.trailingGap === true,
    bytes: header.bytes, invalidUtf8: header.invalidUtf8, skippedRecords: header.skippedRecords,
    sentences: order >= 2 ? sentences : undefined,
  };
}

function writeVarints(out: Uint8Array, at: number, values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    let value = values[i];
    while (value >= 0x80) {
      out[at++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    out[at++] = value;
  }
  return at;
}

/** Each varint takes at least a byte: a length past the bytes left is a lie, caught before allocating. */
function checkLength(reader: { bytes: Uint8Array; at: number }, length: number, what: string): void {
  if (!Number.isInteger(length) || length < 0 || length > reader.bytes.length - reader.at) {
    throw new RangeError(`Expected a length for ${what} within the result, got ${length}`);
  }
}

function readIds(reader: { bytes: Uint8Array; at: number }, length: number, size: number, what: string): Int32Array {
  checkLength(reader, length, what);
  const out = new Int32Array(length);
  const bytes = reader.bytes;
  let at = reader.at;
  for (let i = 0; i < length; i++) {
    let value = 0;
    let shift = 0;
    let byte: number;
    do {
      if (at >= bytes.length || shift > 28) throw new RangeError(`Expected a varint in ${what} at byte ${at}`);
      byte = bytes[at++];
      value |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    if (value < 0 || value >= size) throw new RangeError(`Expected ids below ${size} in ${what}, got ${value >>> 0}`);
    out[i] = value;
  }
  reader.at = at;
  return out;
}

function readCounts(reader: { bytes: Uint8Array; at: number }, length: number, what: string): Float64Array {
  checkLength(reader, length, what);
  const out = new Float64Array(length);
  const bytes = reader.bytes;
  let at = reader.at;
  for (let i = 0; i < length; i++) {
    let value = 0;
    let scale = 1;
    let byte: number;
    do {
      if (at >= bytes.length || scale > 2 ** 49) throw new RangeError(`Expected a varint in ${what} at byte ${at}`);
      byte = bytes[at++];
      value += (byte & 0x7f) * scale;
      scale *= 0x80;
    } while (byte & 0x80);
    if (value < 1) throw new RangeError(`Expected counts of at least 1 in ${what}, got ${value}`);
    out[i] = value;
  }
  reader.at = at;
  return out;
}

function rowHashes(keys: Int32Array, n: number, tokenHashes: Int32Array): Int32Array {
  const rows = keys.length / n;
  const out = new Int32Array(rows);
  for (let row = 0; row < rows; row++) out[row] = ngramHash(keys, row * n, n, tokenHashes);
  return out;
}

/** The unigram rows must be exactly the stream's tokens, each once, listed in first-seen order. */
function checkUnigrams(stream: Int32Array, firstSeen: Int32Array, ids: Int32Array, counts: Float64Array, size: number): void {
  const tally = new Float64Array(size);
  for (let i = 0; i < stream.length; i++) tally[stream[i]]++;
  const listed = new Uint8Array(size);
  for (let row = 0; row < ids.length; row++) {
    const id = ids[row];
    if (listed[id] || tally[id] !== counts[row]) throw new RangeError(`Expected unigram counts that match the stream, got ${counts[row]} for id ${id}`);
    listed[id] = 1;
  }
  let distinct = 0;
  for (let id = 0; id < size; id++) if (tally[id] > 0) distinct++;
  if (distinct !== ids.length || firstSeen.length !== distinct) {
    throw new RangeError(`Expected ${distinct} distinct tokens in the unigram rows and firstSeen, got ${ids.length} and ${firstSeen.length}`);
  }
  // firstSeen is the order in which the stream first shows each token: the merger numbers by it.
  const seen = new Uint8Array(size);
  for (let i = 0, found = 0; i < stream.length; i++) {
    const id = stream[i];
    if (seen[id]) continue;
    seen[id] = 1;
    if (firstSeen[found++] !== id) throw new RangeError(`Expected firstSeen in stream order, got id ${firstSeen[found - 1]} at ${found - 1}`);
  }
}
