/**
 * The benchmark corpus: about N MB of English built deterministically from ../shared/corpora, cached
 * in .cache/bench/corpus-<N>mb.txt and reused while its size and SHA-256 match the manifest beside it.
 *
 *   npx tsx bench/make-corpus.ts --size 100      # prints path, bytes, sha256
 *
 * Recipe (version 1): copies k = 0, 1, 2, ... of The Time Machine, tinyshakespeare, wikitext-2 valid
 * and test, in that order, each copy's lines rotated by 7919·k lines. Plain repetition would give a
 * 100 MB corpus with the vocabulary and n-gram set of 3.7 MB, flattering every counter (tiny hash
 * tables stay in cache). So in copy k >= 1 a quarter of the occurrences of words of 4+ letters get a
 * letter suffix naming k: new types and n-grams keep appearing, as in real text (at 100 MB: about
 * the distinct-n-gram-per-token ratios of real English of that size; see bench/results.json). Lines are never split; the file stops at the last whole line that fits in N MB (10^6 bytes).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const RECIPE = 1;
const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const CORPORA = join(ROOT, '..', 'shared', 'corpora');
const SOURCES = ['timemachine/timemachine.txt', 'tinyshakespeare/input.txt', 'wikitext-2/valid.txt', 'wikitext-2/test.txt'];

export interface Corpus {
  path: string;
  bytes: number;
  sha256: string;
  recipe: number;
  /** True when an existing cached file was verified and reused. */
  reused: boolean;
}

export interface MakeCorpusOptions {
  /** Target size in MB (10^6 bytes). */
  sizeMb?: number;
  cacheDir?: string;
}

export async function makeCorpus(options: MakeCorpusOptions = {}): Promise<Corpus> {
  const { sizeMb = 100, cacheDir = join(ROOT, '.cache', 'bench') } = { ...options };
  if (!(sizeMb > 0)) throw new RangeError(`Expected \`--size\` to be a number of MB above 0, got \`${sizeMb}\``);
  const missing = SOURCES.filter((s) => !existsSync(join(CORPORA, s)));
  if (missing.length > 0) throw new Error(`Expected the corpora in ${CORPORA}, missing ${missing.join(', ')}`);
  mkdirSync(cacheDir, { recursive: true });
  const path = join(cacheDir, `corpus-${sizeMb}mb.txt`);
  const manifestPath = path.replace(/\.txt$/, '.json');
  // The generator's own hash is part of the key, so any change to the recipe rebuilds the file.
  const generator = _sha256(readFileSync(fileURLToPath(import.meta.url)));
  const sources = SOURCES.map((s) => ({ name: s, sha256: _sha256(readFileSync(join(CORPORA, s))) }));
  if (existsSync(path) && existsSync(manifestPath)) {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const sameRecipe = manifest.recipe === RECIPE && manifest.generator === generator && JSON.stringify(manifest.sources) === JSON.stringify(sources);
    if (sameRecipe && statSync(path).size === manifest.bytes && (await _sha256File(path)) === manifest.sha256) {
      return { path, bytes: manifest.bytes, sha256: manifest.sha256, recipe: RECIPE, reused: true };
    }
  }
  const { bytes, sha256 } = await _write(path, Math.floor(sizeMb * 1e6));
  const manifest = { recipe: RECIPE, generator, sizeMb, bytes, sha256, sources };
  _writeJson(manifestPath, manifest);
  return { path, bytes, sha256, recipe: RECIPE, reused: false };
}

async function _write(path: string, limit: number): Promise<{ bytes: number; sha256: string }> {
  const texts = SOURCES.map((s) => readFileSync(join(CORPORA, s), 'utf8').split('\n'));
  const temp = `${path}.tmp-${process.pid}`;
  const out = createWriteStream(temp);
  const hash = createHash('sha256');
  let bytes = 0;
  let batch: string[] = [];
  let batchBytes = 0;
  const flush = async () => {
    const chunk = Buffer.from(batch.join(''));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    batch = [];
    batchBytes = 0;
  };
  fill: for (let copy = 0; ; copy++) {
    const rng = _random(copy);
    for (const lines of texts) {
      const shift = (7919 * copy) % lines.length;
      for (let i = 0; i < lines.length; i++) {
        const line = _mutate(lines[(i + shift) % lines.length], copy, rng) + '\n';
        const size = Buffer.byteLength(line);
        if (bytes + size > limit) break fill;
        batch.push(line);
        bytes += size;
        batchBytes += size;
        if (batchBytes > 1 << 20) await flush();
      }
    }
  }
  await flush();
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  renameSync(temp, path);
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * In copy k >= 1 each word of 4+ letters gains, with probability 1/4, the suffix "q" + k in letters.
 * The choice is per occurrence (a seeded generator advanced once per candidate word), so mutated
 * words land in ever new contexts, as rare words in real text do.
 */
function _mutate(line: string, copy: number, rng: () => number): string {
  if (copy === 0) return line;
  const suffix = 'q' + _letters(copy);
  return line.replace(/[A-Za-z]{4,}/g, (word) => (rng() < 0.25 ? word + suffix : word));
}

/** mulberry32: a small deterministic generator; its exact sequence is part of the recipe. */
function _random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** 1 -> "b", 26 -> "ba": base 26 in the letters a..z. */
function _letters(n: number): string {
  let text = '';
  do {
    text = String.fromCharCode(97 + (n % 26)) + text;
    n = Math.floor(n / 26);
  } while (n > 0);
  return text;
}

const _sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function _sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function _writeJson(path: string, value: unknown): void {
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, JSON.stringify(value, null, 2) + '\n');
  renameSync(temp, path);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const at = process.argv.indexOf('--size');
  const corpus = await makeCorpus({ sizeMb: at > 0 ? Number(process.argv[at + 1]) : 100 });
  console.log(JSON.stringify(corpus, null, 2));
}
