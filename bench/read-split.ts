/**
 * The ceiling of the ingest benchmark: read a file and split it into d2l words (runs of ASCII
 * letters), nothing else: no lowercasing, no counting, no storage. Prints {"tokens", "seconds"}.
 *
 *   node --import tsx bench/read-split.ts FILE
 *
 * The token count equals d2l's (and bench/counter.py's): a word never spans a newline, so splitting
 * the whole text on non-letters gives the same tokens as splitting each line.
 */
import { createReadStream } from 'node:fs';

export async function readSplit(path: string): Promise<{ tokens: number; seconds: number }> {
  const started = performance.now();
  const decoder = new TextDecoder('utf-8');
  let tokens = 0;
  let carry = '';
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const parts = (carry + decoder.decode(chunk as Buffer, { stream: true })).split(/[^A-Za-z]+/);
    // The last piece may continue in the next chunk.
    carry = parts.pop() ?? '';
    for (const part of parts) if (part.length > 0) tokens++;
  }
  const rest = carry + decoder.decode();
  for (const part of rest.split(/[^A-Za-z]+/)) if (part.length > 0) tokens++;
  return { tokens, seconds: (performance.now() - started) / 1000 };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/bench\//, '/bench/'))) {
  console.log(JSON.stringify(await readSplit(process.argv[2])));
}
