/**
 * Read stage: input paths -> Shards -> TextChunks, streaming with bounded memory.
 *
 * Formats (by name; `format` overrides): plain text (one document per file, cut into shards of
 * about `shardBytes` at line boundaries), `.gz` (gzip; one shard; `.json.gz`, `.jsonl.gz` and
 * `.ndjson.gz` hold JSON), `.json` and `.jsonl` / `.ndjson` (one document per record, see
 * _read-json.ts), and `-` (standard input, plain text). Files are read 1 MB at a time.
 *
 * Bad input: a missing path fails in planShards, before any work; a NUL byte fails as binary;
 * malformed JSON fails with its byte offset; invalid UTF-8 becomes U+FFFD and is counted in
 * `report.invalidUtf8` for the caller to report once. An aborted `signal` stops between chunks
 * with LmpipeError('INTERRUPTED').
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { LmpipeError } from '../../lib/errors.ts';
import type { InputFormat, Shard, TextChunk } from '../../pipeline/types.ts';
import { readJson } from './_read-json.ts';
import { listInputs, planFiles } from './_read-plan.ts';
import { readText } from './_read-text.ts';

export interface ReadReport {
  invalidUtf8: number;
  skippedRecords: number;
  /** The fields of the first record skipped (to say what --json-field could be). */
  skippedFields?: string[];
  /** Bytes read from standard input, whose size is not known beforehand. */
  stdinBytes?: number;
}

export interface ReadOptions {
  /** JSON inputs: dotted path of the text field (default 'text'). */
  jsonField?: string;
  /** Counts of replaced invalid UTF-8 sequences and skipped JSON records, added to as reading goes. */
  report?: ReadReport;
  signal?: AbortSignal;
}

const HIGH_WATER_MARK = 1 << 20;
const DEFAULT_SHARD_BYTES = 4 << 20;

/** Every input path is checked before any shard is returned. `index` is the global order. */
export async function planShards(
  inputs: string[],
  options: { shardBytes?: number; format?: InputFormat; skipBinary?: boolean; skipped?: string[] } = {},
): Promise<Shard[]> {
  const { shardBytes = DEFAULT_SHARD_BYTES, format } = options;
  if (!(shardBytes >= 1)) throw new RangeError(`Expected \`shardBytes\` to be at least 1, got \`${shardBytes}\``);
  let files = await listInputs(inputs, format);
  if (options.skipBinary) {
    const binary = new Set<string>();
    for (const file of files) if (file.format !== 'stdin' && file.format !== 'gzip' && (await holdsNul(file.path))) binary.add(file.path);
    options.skipped?.push(...binary);
    files = files.filter((file) => !binary.has(file.path));
  }
  return planFiles(files, Math.floor(shardBytes));
}

export async function* read(
  shards: Iterable<Shard> | AsyncIterable<Shard>,
  options: ReadOptions = {},
): AsyncGenerator<TextChunk> {
  const { jsonField = 'text', report, signal } = options;
  for await (const shard of shards) {
    if (signal?.aborted) throw new LmpipeError('INTERRUPTED', 'Interrupted', { file: shard.path });
    const inner = innerFormat(shard);
    if (inner === 'json' || inner === 'jsonl') {
      const reopen = () => openBytes(shard, report);
      const records: ReadReport = { skippedRecords: 0, invalidUtf8: 0 };
      try {
        yield* readJson(reopen(), { source: shard.path, lines: inner === 'jsonl', jsonField, report: records, signal, reopen });
      } finally {
        if (report) {
          report.invalidUtf8 += records.invalidUtf8;
          report.skippedRecords += records.skippedRecords;
          report.skippedFields ??= records.skippedFields;
        }
      }
    } else {
      const documentEnd = shard.format !== 'text' || shard.end >= (await fileSize(shard.path));
      yield* readText(openBytes(shard, report), {
        source: shard.path,
        start: shard.format === 'text' ? shard.start : 0,
        documentStart: !shard.continuesDocument,
        documentEnd,
        report,
        signal,
      });
    }
  }
}

/** The format of the bytes after decompression. */
function innerFormat(shard: Shard): InputFormat {
  if (shard.format !== 'gzip') return shard.format;
  const name = shard.path.toLowerCase().replace(/\.gz$/, '');
  return name.endsWith('.json') ? 'json' : name.endsWith('.jsonl') || name.endsWith('.ndjson') ? 'jsonl' : 'text';
}

/** Whether a file holds a NUL byte anywhere: a whole pass, so that no binary file is half counted. */
async function holdsNul(path: string): Promise<boolean> {
  for await (const chunk of createReadStream(path, { highWaterMark: HIGH_WATER_MARK }) as AsyncIterable<Buffer>) {
    if (chunk.includes(0)) return true;
  }
  return false;
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** The shard's bytes: a byte range of a file, a decompressed gzip file, or standard input. */
function openBytes(shard: Shard, report?: ReadReport): AsyncIterable<Buffer> {
  if (shard.format === 'stdin') return report ? countStdin(report) : process.stdin;
  if (shard.format === 'text' && shard.end <= shard.start) return Readable.from([]);
  const range = shard.format === 'text' ? { start: shard.start, end: shard.end - 1 } : {};
  const file = createReadStream(shard.path, { ...range, highWaterMark: HIGH_WATER_MARK });
  const source = shard.format === 'gzip' ? gunzip(file) : file;
  return wrapErrors(source, shard.path);
}

async function* countStdin(report: ReadReport): AsyncGenerator<Buffer> {
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    report.stdinBytes = (report.stdinBytes ?? 0) + chunk.length;
    yield chunk;
  }
}

function gunzip(file: NodeJS.ReadableStream): Readable {
  const inflate = createGunzip({ chunkSize: HIGH_WATER_MARK });
  // pipeline forwards the file's errors to inflate, whose iterator then rejects.
  pipeline(file, inflate, () => {});
  return inflate;
}

async function* wrapErrors(source: AsyncIterable<Buffer>, path: string): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (error) {
    if (error instanceof LmpipeError) throw error;
    const { code, message } = error as NodeJS.ErrnoException;
    const reason = code?.startsWith('Z_') ? `Not a valid gzip file (${message})` : `Cannot read the file (${code ?? message})`;
    throw new LmpipeError('INPUT', reason, { file: path });
  }
}
