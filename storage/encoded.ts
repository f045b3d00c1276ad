/**
 * Storage of the encoded corpus: two flat files of vocabulary ids, and what ties them to a
 * vocabulary. Int32 little-endian, one id per token, no header:
 *
 *   DIR/encoded/train.bin    the training split
 *   DIR/encoded/valid.bin    the validation split (the contiguous tail)
 *
 * Files rather than SQLite rows or blobs: the trainer reads each split whole into one Int32Array
 * (a single read, no row decoding), and the files are written with temp + rename so a reader never
 * sees half a split. Their lengths and sha256 go in the encode stage's checkpoint.
 *
 * vocabHash(db) -> string
 *   sha256 (hex) of the vocab tokens in id order, each written as a JSON string plus "\n" (JSON
 *   escapes newlines, so no two vocabularies share a hash).
 *     vocabHash(db); // 'e3b0c442...'
 *
 * vocabLookup(db) -> { lookup, vocabSize }
 *   lookup[tokens.id] = vocab.id, 0 (<unk>) for tokens outside the vocabulary.
 *
 * createIdWriter(path) -> { write(ids), finish(), abort() }
 *   Appends ids to `path + '.tmp'`; finish() syncs and renames it to `path`, returning count and sha256.
 *
 * readIds(path, count) -> Int32Array
 *   Reads a whole id file into an aligned Int32Array, checking that it holds `count` ids.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { LmpipeError } from '../lib/errors.ts';
import type { Database } from './driver.ts';
import { vocabTokens } from './vocab.ts';
import { runPaths } from './run-paths.ts';

/** Typed arrays use the machine's byte order; files are little-endian. */
const BIG_ENDIAN = endianness() === 'BE';

export function vocabHash(db: Database): string {
  const hash = createHash('sha256');
  for (const token of vocabTokens(db)) hash.update(JSON.stringify(token) + '\n');
  return hash.digest('hex');
}

export function vocabLookup(db: Database): { lookup: Int32Array; vocabSize: number } {
  const { size, top } = db.prepare('SELECT count(*) AS size, max(id) AS top FROM vocab').get()!;
  if (size === 0 || top !== size - 1) {
    const message = `Expected vocab ids to run from 0 to ${size - 1} in ${db.path}, got a largest id of ${top}`;
    throw new LmpipeError('STATE', message, { stage: 'encode' });
  }
  const tokens = db.prepare('SELECT coalesce(max(id), -1) AS top FROM tokens').get()!.top;
  const lookup = new Int32Array(tokens + 1); // zero-filled: <unk>
  for (const row of db.prepare('SELECT t.id AS token, v.id AS vocab FROM tokens t JOIN vocab v ON v.token = t.token').iterate()) {
    lookup[row.token] = row.vocab;
  }
  return { lookup, vocabSize: size };
}

export interface IdWriter {
  write(ids: Int32Array): void;
  finish(): { count: number; sha256: string };
  abort(): void;
}

export function createIdWriter(path: string): IdWriter {
  const temporary = path + '.tmp';
  const fd = openSync(temporary, 'w');
  const hash = createHash('sha256');
  let count = 0;
  return {
    write(ids) {
      const bytes = _littleEndian(ids);
      hash.update(bytes);
      for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
      count += ids.length;
    },
    finish() {
      fsyncSync(fd);
      closeSync(fd);
      renameSync(temporary, path);
      return { count, sha256: hash.digest('hex') };
    },
    abort() {
      closeSync(fd);
      rmSync(temporary, { force: true });
    },
  };
}

export function readIds(path: string, count: number): Int32Array {
  const fd = openSync(path, 'r');
  const place = { stage: 'encode', file: path };
  try {
    const size = fstatSync(fd).size;
    if (size !== count * 4) {
      throw new LmpipeError('STATE', `Expected ${path} to hold ${count} token ids (${count * 4} bytes), got ${size} bytes`, place);
    }
    // A fresh Int32Array is 4-byte aligned, which a Buffer from readFileSync need not be.
    const ids = new Int32Array(count);
    const bytes = new Uint8Array(ids.buffer);
    for (let done = 0; done < bytes.length;) {
      const read = readSync(fd, bytes, done, bytes.length - done, done);
      if (read === 0) throw new LmpipeError('STATE', `Expected ${path} to hold ${count} token ids, it ended at byte ${done}`, place);
      done += read;
    }
    if (BIG_ENDIAN) Buffer.from(ids.buffer).swap32();
    return ids;
  } finally {
    closeSync(fd);
  }
}

/** The first `count` ids of an encoded file, fewer if it is shorter, none if it is absent. */
export function readFirstIds(path: string, count: number): Int32Array {
  if (!existsSync(path)) return new Int32Array(0);
  const fd = openSync(path, 'r');
  try {
    const ids = new Int32Array(Math.min(count, Math.floor(fstatSync(fd).size / 4)));
    const bytes = new Uint8Array(ids.buffer);
    for (let done = 0; done < bytes.length;) done += readSync(fd, bytes, done, bytes.length - done, done) || bytes.length;
    if (BIG_ENDIAN) Buffer.from(ids.buffer).swap32();
    return ids;
  } finally {
    closeSync(fd);
  }
}

/** sha256 of an id array as its file holds it. */
export const idsSha256 = (ids: Int32Array) => createHash('sha256').update(_littleEndian(ids)).digest('hex');

/** Removes the split files and any temporaries a killed run left. */
export function removeEncoded(dir: string): void {
  rmSync(runPaths(dir).encodedDir, { recursive: true, force: true });
}

/** The bytes of `ids` in file order: a view on little-endian machines, a swapped copy otherwise. */
function _littleEndian(ids: Int32Array): Uint8Array {
  const bytes = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
  return BIG_ENDIAN ? Buffer.from(bytes).swap32() : bytes;
}
