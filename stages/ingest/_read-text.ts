/**
 * Bytes -> TextChunks of one plain-text document (a file, a shard of one, gzip or stdin).
 *
 * Chunks end right after a '\n' where possible (the partial last line is carried to the next
 * chunk), so tokenizers usually see whole lines and `position` is an exact byte offset. A line
 * longer than MAX_LINE is cut at a UTF-8 character boundary instead. Each piece is decoded on its
 * own: it ends at a character boundary, so no decoder state crosses pieces.
 */
import { LmpipeError } from '../../lib/errors.ts';
import type { TextChunk } from '../../pipeline/types.ts';

/** A carried partial line is cut (at a character boundary) once it reaches this many bytes. */
export const MAX_LINE = 4 << 20;

const REPLACEMENT_BYTES = Buffer.from([0xef, 0xbf, 0xbd]);
// ignoreBOM keeps a U+FEFF as text: a shard starting mid-file must decode as the whole file does.
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

export interface Utf8Report {
  invalidUtf8: number;
}

export interface TextOptions {
  source: string;
  /** Byte offset of the first byte within the source. */
  start: number;
  /** The first byte starts the document (false for a shard that continues one). */
  documentStart: boolean;
  /** The last byte ends the document (false for a shard followed by one that continues it). */
  documentEnd: boolean;
  report?: Utf8Report;
  signal?: AbortSignal;
}

/** Decodes a piece that ends at a character boundary; counts replaced invalid sequences. */
export function decodeUtf8(bytes: Buffer, report?: Utf8Report): string {
  const text = decoder.decode(bytes);
  if (report && text.indexOf('\uFFFD') >= 0) {
    let replaced = 0;
    for (let at = text.indexOf('\uFFFD'); at >= 0; at = text.indexOf('\uFFFD', at + 1)) replaced++;
    // A U+FFFD present in the input (EF BF BD) is text, not an invalid sequence.
    for (let at = bytes.indexOf(REPLACEMENT_BYTES); at >= 0; at = bytes.indexOf(REPLACEMENT_BYTES, at + 3)) replaced--;
    report.invalidUtf8 += replaced;
  }
  return text;
}

/** The largest n <= bytes.length such that bytes[0, n) ends at a UTF-8 character boundary. */
export function characterBoundary(bytes: Buffer): number {
  let at = bytes.length - 1;
  // Back up over at most 3 continuation bytes to the lead byte of the last character.
  while (at > 0 && at > bytes.length - 4 && (bytes[at] & 0xc0) === 0x80) at--;
  const lead = bytes[at];
  const need = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return at + need <= bytes.length ? bytes.length : at;
}

export function binaryError(source: string, byte: number): LmpipeError {
  return new LmpipeError('INPUT', 'Looks like a binary file (NUL byte); lmpipe reads text', {
    file: source,
    position: `byte ${byte}`,
  });
}

export function interrupted(source: string, byte: number): LmpipeError {
  return new LmpipeError('INTERRUPTED', 'Interrupted', { file: source, position: `byte ${byte}` });
}

export async function* readText(bytes: AsyncIterable<Buffer>, options: TextOptions): AsyncGenerator<TextChunk> {
  const { source, report, signal } = options;
  let offset = options.start; // byte offset of carry[0]
  let carry: Buffer | undefined;
  let held: TextChunk | undefined; // yielded once we know whether it is the document's last chunk
  let documentStart = options.documentStart;
  const piece = (data: Buffer): TextChunk => {
    const chunk = { text: decodeUtf8(data, report), documentStart, documentEnd: false, source, position: offset };
    documentStart = false;
    offset += data.length;
    return chunk;
  };
  for await (const buffer of bytes) {
    if (signal?.aborted) throw interrupted(source, offset);
    const nul = buffer.indexOf(0);
    if (nul >= 0) throw binaryError(source, offset + (carry?.length ?? 0) + nul);
    const data = carry ? Buffer.concat([carry, buffer]) : buffer;
    let cut = data.lastIndexOf(10) + 1;
    if (cut === 0 && data.length >= MAX_LINE) cut = characterBoundary(data);
    if (cut === 0) {
      carry = data;
      continue;
    }
    if (held) yield held;
    held = piece(data.subarray(0, cut));
    carry = cut < data.length ? data.subarray(cut) : undefined;
  }
  if (carry) {
    if (held) yield held;
    held = piece(carry);
  }
  held ??= piece(Buffer.alloc(0));
  held.documentEnd = options.documentEnd;
  yield held;
}
