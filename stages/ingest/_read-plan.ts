/**
 * Shard planning: inputs -> files (directories walked in byte-wise sorted order, hidden entries
 * skipped) -> shards. Every input is checked before any shard is returned, so that a typo in the
 * last path fails before hours of work on the first.
 */
import { constants } from 'node:fs';
import { access, open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LmpipeError } from '../../lib/errors.ts';
import type { InputFormat, Shard } from '../../pipeline/types.ts';

/** Bytes read at a time while looking for the first line break after a nominal cut. */
const WINDOW = 64 * 1024;

export interface InputFile {
  path: string;
  format: InputFormat;
  size: number;
}

/** Format by name: `.gz` (also `.json.gz`, `.jsonl.gz`), `.json`, `.jsonl` / `.ndjson`, `-`, else text. */
export function formatOf(path: string): InputFormat {
  if (path === '-') return 'stdin';
  const lower = path.toLowerCase();
  if (lower.endsWith('.gz')) return 'gzip';
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  return 'text';
}

/** Resolves every input to files; throws LmpipeError('INPUT') naming the first missing path. */
export async function listInputs(inputs: string[], format?: InputFormat): Promise<InputFile[]> {
  const files: InputFile[] = [];
  for (const input of inputs) {
    if (input === '-') {
      files.push({ path: '-', format: 'stdin', size: 0 });
      continue;
    }
    const path = resolve(input);
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
      throw new LmpipeError('INPUT', `Expected \`--input\` path \`${input}\` ${reason(error)}`, { file: input });
    });
    if (info.isDirectory()) {
      const found = await walk(path, new Set([`${info.dev}:${info.ino}`]));
      if (found.length === 0) {
        throw new LmpipeError('INPUT', `Expected \`--input\` directory \`${input}\` to hold a file (hidden ones are skipped)`, { file: input });
      }
      for (const file of found) files.push({ ...file, format: format ?? formatOf(file.path) });
    } else {
      files.push({ path, format: format ?? formatOf(path), size: info.size });
    }
  }
  for (const file of files) {
    if (file.path === '-') continue;
    await access(file.path, constants.R_OK).catch((error: NodeJS.ErrnoException) => {
      throw new LmpipeError('INPUT', `Expected \`--input\` file \`${file.path}\` ${reason(error)}`, { file: file.path });
    });
  }
  return files;
}

function reason(error: NodeJS.ErrnoException): string {
  return error.code === 'ENOENT' ? 'to exist' : `to be readable (${error.code ?? error.message})`;
}

/** Files under dir, depth first in byte-wise name order; `seen` (dev:inode) stops symlink loops. */
async function walk(dir: string, seen: Set<string>): Promise<Array<{ path: string; size: number }>> {
  const names = (await readdir(dir)).filter((name) => !name.startsWith('.'));
  names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const files: Array<{ path: string; size: number }> = [];
  for (const name of names) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined); // a dangling symlink is not an input
    if (info?.isDirectory()) {
      const key = `${info.dev}:${info.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      files.push(...(await walk(path, seen)));
    } else if (info?.isFile()) {
      files.push({ path, size: info.size });
    }
  }
  return files;
}

/**
 * Byte ranges [start, end) of a text file, each boundary right after a '\n': the first '\n' at
 * or after `start + shardBytes - 1`. A single line longer than shardBytes stays whole.
 */
export async function cutText(path: string, size: number, shardBytes: number): Promise<Array<[number, number]>> {
  if (size <= shardBytes) return [[0, size]];
  const ranges: Array<[number, number]> = [];
  const handle = await open(path, 'r');
  try {
    const window = Buffer.alloc(WINDOW);
    let start = 0;
    while (start < size) {
      let end = size;
      for (let at = start + shardBytes - 1; at < size; at += WINDOW) {
        const { bytesRead } = await handle.read(window, 0, Math.min(WINDOW, size - at), at);
        const newline = window.subarray(0, bytesRead).indexOf(10);
        if (newline >= 0) {
          end = at + newline + 1;
          break;
        }
        if (bytesRead === 0) break;
      }
      ranges.push([start, end]);
      start = end;
    }
  } finally {
    await handle.close();
  }
  return ranges;
}

export async function planFiles(files: InputFile[], shardBytes: number): Promise<Shard[]> {
  const shards: Shard[] = [];
  for (const file of files) {
    const ranges = file.format === 'text' ? await cutText(file.path, file.size, shardBytes) : [[0, file.size]];
    ranges.forEach(([start, end], k) => {
      shards.push({ index: shards.length, path: file.path, format: file.format, start, end, continuesDocument: k > 0 });
    });
  }
  return shards;
}
