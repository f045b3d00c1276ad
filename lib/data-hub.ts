/**
 * Finds the default corpus the way d2l's `DATA_HUB` does: a local copy first (the shared corpora
 * folder beside the clone, then the download cache), else one download verified by SHA-1 and cached.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from './checkpoint.ts';
import { LmpipeError } from './errors.ts';

export interface HubEntry {
  file: string;
  url: string;
  sha1: string;
  /** Folder under ../shared/corpora that may hold a local copy. */
  sharedFolder: string;
}

/** The same URL and hash as `d2l.DATA_HUB['time_machine']`. */
export const DATA_HUB: Record<string, HubEntry> = {
  time_machine: {
    file: 'timemachine.txt',
    url: 'http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt',
    sha1: '090b5e7e70c295757f55df93cb0a180b9691891a',
    sharedFolder: 'timemachine',
  },
};

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SHARED_CORPORA = join(REPO_ROOT, '..', 'shared', 'corpora');
const DEFAULT_CACHE = process.env.LMPIPE_CACHE ?? join(REPO_ROOT, '.cache', 'data');

const sha1 = (bytes: Uint8Array) => createHash('sha1').update(bytes).digest('hex');

export interface FindOptions {
  sharedDir?: string;
  cacheDir?: string;
  /** Injected in tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** Returns a path to a verified copy of the named corpus, downloading it once if needed. */
export async function findCorpus(name: keyof typeof DATA_HUB, options: FindOptions = {}): Promise<string> {
  const entry = DATA_HUB[name];
  const sharedDir = options.sharedDir ?? SHARED_CORPORA;
  const cacheDir = options.cacheDir ?? DEFAULT_CACHE;
  for (const candidate of [join(sharedDir, entry.sharedFolder, entry.file), join(cacheDir, entry.file)]) {
    if (existsSync(candidate) && sha1(readFileSync(candidate)) === entry.sha1) return candidate;
  }
  const target = join(cacheDir, entry.file);
  let bytes: Uint8Array;
  try {
    const response = await (options.fetch ?? fetch)(entry.url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    throw new LmpipeError(
      'INPUT',
      `No local copy of ${entry.file} (looked in ${join(sharedDir, entry.sharedFolder)} and ${cacheDir}) and ` +
        `the download from ${entry.url} failed (${(error as Error).message}); pass your text with --input PATH`,
    );
  }
  if (sha1(bytes) !== entry.sha1) {
    throw new LmpipeError('INPUT', `Downloaded ${entry.file} has SHA-1 ${sha1(bytes)}, expected ${entry.sha1}; pass your text with --input PATH`);
  }
  writeFileAtomic(target, [bytes]);
  return target;
}
