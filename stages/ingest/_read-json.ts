/**
 * Bytes -> one TextChunk per JSON record, through stream-json's charCodeAt parser.
 *
 * Records: in a `.json` file, each element of a top-level array, and each top-level value that is
 * not an array (so a file holding one object is one record; concatenated values are allowed). In
 * JSON Lines, each top-level value (one per line) is a record, arrays included. A record that is
 * a string is its own text; otherwise `jsonField` (a dotted path, e.g. `meta.body`) selects a
 * string, or an array of strings joined with "\n". A record without one is skipped and counted.
 * One record is assembled in memory at a time.
 *
 * The parser's errors carry no position, so on an error the input is scanned again with
 * stream-json's verifier, which reports the offset in UTF-16 units; pieces are decoded at
 * character boundaries, which maps that offset back to an exact byte offset.
 */
import { LmpipeError } from '../../lib/errors.ts';
import type { TextChunk } from '../../pipeline/types.ts';
import { jsonParser, type Token } from 'stream-json/parser.js';
import { jsonVerifier } from 'stream-json/utils/verifier.js';
import Assembler from 'stream-json/assembler.js';
import { none } from 'stream-chain/defs.js';
import { binaryError, characterBoundary, decodeUtf8, interrupted, type Utf8Report } from './_read-text.ts';

export interface JsonOptions {
  source: string;
  /** JSON Lines: every top-level value is a record (a top-level array is not opened). */
  lines: boolean;
  jsonField: string;
  report?: Utf8Report & { skippedRecords: number; skippedFields?: string[] };
  signal?: AbortSignal;
  /** Opens the bytes again, to locate a syntax error. */
  reopen: () => AsyncIterable<Buffer>;
}

interface Piece {
  text: string;
  /** Byte offset of text[0]. */
  byte: number;
}

/** Bytes -> strings that each end at a character boundary, with their byte offsets. */
async function* pieces(bytes: AsyncIterable<Buffer>, source: string, report?: Utf8Report): AsyncGenerator<Piece> {
  let byte = 0;
  let carry: Buffer | undefined;
  for await (const buffer of bytes) {
    const nul = buffer.indexOf(0);
    if (nul >= 0) throw binaryError(source, byte + (carry?.length ?? 0) + nul);
    let data = carry ? Buffer.concat([carry, buffer]) : buffer;
    if (byte === 0 && data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) {
      data = data.subarray(3); // a byte-order mark: not part of the JSON text
      byte = 3;
    }
    const cut = characterBoundary(data);
    carry = cut < data.length ? data.subarray(cut) : undefined;
    if (cut === 0) continue;
    yield { text: decodeUtf8(data.subarray(0, cut), report), byte };
    byte += cut;
  }
  if (carry) yield { text: decodeUtf8(carry, report), byte };
}

export async function* readJson(bytes: AsyncIterable<Buffer>, options: JsonOptions): AsyncGenerator<TextChunk> {
  const { source, lines, report, signal } = options;
  const path = options.jsonField.split('.');
  const parse = jsonParser({ jsonStreaming: true, streamValues: false });
  const assembler = new Assembler();
  let depth = 0; // of containers around the parser's position, outside records
  let inRecord = false;
  let records = 0;
  const toChunks = (tokens: Token[]): TextChunk[] => {
    const chunks: TextChunk[] = [];
    for (const token of tokens) {
      if (!inRecord) {
        if (!lines && depth === 0 && token.name === 'startArray') {
          depth = 1;
          continue;
        }
        if (depth === 1 && token.name === 'endArray') {
          depth = 0;
          continue;
        }
        inRecord = true;
      }
      assembler.consume(token);
      if (!assembler.done) continue;
      inRecord = false;
      const text = textOf(assembler.current, path);
      if (text === undefined) {
        if (report) {
          report.skippedRecords++;
          report.skippedFields ??= fieldsOf(assembler.current);
        }
      } else {
        chunks.push({ text, documentStart: true, documentEnd: true, source, position: records });
      }
      records++;
    }
    return chunks;
  };
  const feed = (input: string | typeof none): Token[] => {
    const result = parse(input as string);
    return result === none ? [] : (result as { values: Token[] }).values;
  };
  let byte = 0;
  try {
    for await (const piece of pieces(bytes, source, report)) {
      if (signal?.aborted) throw interrupted(source, piece.byte);
      byte = piece.byte;
      yield* toChunks(feed(piece.text));
    }
    yield* toChunks(feed(none));
  } catch (error) {
    if (error instanceof LmpipeError) throw error;
    throw await locateError(options, error, byte);
  }
}

/** The record's text: itself if a string, else the field at `path` (string or array of strings). */
/** A record's top-level field names, with the type of each: "title (string), body (object)". */
function fieldsOf(record: unknown): string[] {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) return [];
  return Object.entries(record).map(([key, value]) => `${key} (${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value})`);
}

export function textOf(record: unknown, path: string[]): string | undefined {
  if (typeof record === 'string') return record;
  let value = record;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((line) => typeof line === 'string')) return value.join('\n');
  return undefined;
}

async function locateError(options: JsonOptions, error: unknown, fallbackByte: number): Promise<LmpipeError> {
  const place = { file: options.source, position: `byte ${fallbackByte}` };
  const verify = jsonVerifier({ jsonStreaming: true });
  // The last two pieces and the UTF-16 offset of each: an error may be reported inside a token
  // that began in the previous piece.
  const recent: Array<Piece & { units: number }> = [];
  let units = 0;
  let atEnd = false;
  try {
    for await (const piece of pieces(options.reopen(), options.source)) {
      recent.push({ ...piece, units });
      if (recent.length > 2) recent.shift();
      units += piece.text.length;
      verify(piece.text);
    }
    atEnd = true;
    verify(none as unknown as string);
  } catch (found) {
    const { offset, line, pos } = found as { offset?: number; line?: number; pos?: number };
    if (typeof offset !== 'number') throw found;
    const piece = recent.findLast((candidate) => candidate.units <= offset);
    if (piece) place.position = `byte ${piece.byte + Buffer.byteLength(piece.text.slice(0, offset - piece.units))}`;
    const message = cleanMessage((found as Error).message.replace(/^ERROR at \d+ \(\d+, \d+\): /, ''));
    const what = atEnd ? `unexpected end of input (${message})` : message;
    return new LmpipeError('INPUT', `Malformed JSON: ${what} (line ${line}, column ${pos})`, place);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new LmpipeError('INPUT', `Malformed JSON: ${cleanMessage(message)}`, place);
}

function cleanMessage(message: string): string {
  return message.replace(/^(Parser|Verifier) (cannot parse input: |has )/, '');
}
