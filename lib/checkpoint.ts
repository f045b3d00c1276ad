/**
 * Atomic files and the training checkpoint format.
 *
 * `writeFileAtomic` writes a temporary file beside the target, fsyncs it, renames it over the
 * target and fsyncs the directory: a reader (or a run resumed after kill -9 or a power cut) sees the
 * old file or the new one, never a mix.
 *
 * A checkpoint is ONE such file, so its record and its tensors can never disagree:
 *
 *   bytes 0..7    "LMPCKPT1"
 *   bytes 8..11   header length H, uint32 little-endian
 *   bytes 12..    H bytes of UTF-8 JSON: {record, tensors: [{name, shape, offset, length}], sha256}
 *   then          the tensors' float32 values, little-endian, back to back; `offset` and `length`
 *                 count float32 elements from the payload's start; sha256 is the payload's
 *
 *   writeCheckpoint('DIR/checkpoints/train.ckpt', record, { 'param/output.b_q': values, ... });
 *   const { record, tensors } = readCheckpoint(path)!;   // undefined when there is none
 *   const record = readCheckpointRecord(path);          // the header alone, without the values
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { LmpipeError } from './errors.ts';

const MAGIC = 'LMPCKPT1';
const BIG_ENDIAN = endianness() === 'BE';

export interface StoredTensor {
  shape: number[];
  values: Float32Array;
}

/** Replaces `path` with `chunks` concatenated, atomically and durably. */
export function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temporary, 'w');
  try {
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length;) done += writeSync(fd, chunk, done, chunk.length - done);
    }
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temporary, path);
  _fsyncDirectory(dirname(path));
}

/** Writes a checkpoint file: a JSON-serializable record and named float32 tensors. */
export function writeCheckpoint(path: string, record: object, tensors: Record<string, StoredTensor>): void {
  const entries: { name: string; shape: number[]; offset: number; length: number }[] = [];
  const payload: Uint8Array[] = [];
  const hash = createHash('sha256');
  let offset = 0;
  for (const [name, { shape, values }] of Object.entries(tensors)) {
    entries.push({ name, shape, offset, length: values.length });
    const bytes = _littleEndian(values);
    hash.update(bytes);
    payload.push(bytes);
    offset += values.length;
  }
  const header = new TextEncoder().encode(JSON.stringify({ record, tensors: entries, sha256: hash.digest('hex') }));
  const prefix = new Uint8Array(12);
  prefix.set(new TextEncoder().encode(MAGIC));
  new DataView(prefix.buffer).setUint32(8, header.length, true);
  writeFileAtomic(path, [prefix, header, ...payload]);
}

interface Header<R> {
  record: R;
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
  sha256: string;
}

/** Reads a checkpoint written by writeCheckpoint; undefined when the file does not exist. */
export function readCheckpoint<R = Record<string, unknown>>(path: string): { record: R; tensors: Record<string, StoredTensor> } | undefined {
  if (!existsSync(path)) return undefined;
  const bytes = readFileSync(path);
  const header = _header<R>(path, bytes, bytes.length);
  const payload = bytes.subarray(12 + header.length);
  if (createHash('sha256').update(payload).digest('hex') !== header.sha256) throw _broken(path, 'values that do not match their sha256');
  const tensors: Record<string, StoredTensor> = {};
  for (const { name, shape, offset, length } of header.tensors) {
    // Copied out so the values are aligned and independent of the file's buffer.
    const values = new Float32Array(length);
    new Uint8Array(values.buffer).set(payload.subarray(offset * 4, (offset + length) * 4));
    tensors[name] = { shape, values: BIG_ENDIAN ? _swap(values) : values };
  }
  return { record: header.record, tensors };
}

/** The record alone (the header's bytes are all that is read); undefined when there is no file. */
export function readCheckpointRecord<R = Record<string, unknown>>(path: string): R | undefined {
  if (!existsSync(path)) return undefined;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const prefix = Buffer.alloc(Math.min(12, size));
    readSync(fd, prefix, 0, prefix.length, 0);
    const headerLength = prefix.length === 12 ? prefix.readUInt32LE(8) : 0;
    const bytes = Buffer.alloc(Math.min(12 + headerLength, size));
    readSync(fd, bytes, 0, bytes.length, 0);
    return _header<R>(path, bytes, size).record;
  } finally {
    closeSync(fd);
  }
}

/** The JSON header of a checkpoint whose first bytes are `bytes` (of a file of `size` bytes), and its length. */
function _header<R>(path: string, bytes: Buffer, size: number): Header<R> & { length: number } {
  if (bytes.length < 12 || bytes.subarray(0, 8).toString('latin1') !== MAGIC) throw _broken(path, 'another kind of file');
  const length = bytes.readUInt32LE(8);
  if (12 + length > size || 12 + length > bytes.length) throw _broken(path, 'a truncated file');
  try {
    return { ...JSON.parse(bytes.subarray(12, 12 + length).toString('utf8')), length };
  } catch {
    throw _broken(path, 'an unreadable header');
  }
}

function _broken(path: string, why: string): LmpipeError {
  return new LmpipeError('STATE', `Expected ${path} to be an lmpipe checkpoint, got ${why}; delete it (or run with --from train) to start over`, { file: path });
}

function _littleEndian(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return BIG_ENDIAN ? new Uint8Array(_swap(values.slice()).buffer) : bytes;
}

function _swap(values: Float32Array): Float32Array {
  Buffer.from(values.buffer, values.byteOffset, values.byteLength).swap32();
  return values;
}

function _fsyncDirectory(directory: string): void {
  // A directory fsync makes the rename durable; some platforms (Windows) cannot open directories.
  let fd: number | undefined;
  try {
    fd = openSync(directory, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort: the rename itself is already atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
