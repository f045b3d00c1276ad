/**
 * Independent oracles for the count tests: a seeded random corpus with whitespace of every kind
 * (so shard cuts land inside words, whitespace runs and blank lines), tokenizers written from the
 * spec in a few lines each, a brute-force n-gram counter over a Map with string keys, and dumps of
 * a run database for whole-database comparisons.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../pipeline/config.ts';
import { resolveConfig } from '../../pipeline/config.ts';
import type { StageContext } from '../../pipeline/types.ts';
import type { Database } from '../../storage/driver.ts';
import { openRunDatabase } from '../../storage/schema.ts';
import { random } from '../helpers/tokenize-fixtures.ts';

export { random };

/** The settings test/e2e/count-resume.test.ts runs the count and vocab stages with. */
export const childSettings = { tokenizer: 'char', order: 3, shardMb: 0.0005, reserved: ['<pad>', 'e'], minFreq: 2 } as const;

const WORDS = ['the', 'of', 'Time', 'a', 'traveller', 'é', 'naïve', '𝔘x', 'it', 'was', 'and', 'x', 'don\'t', '42'];
const SPACES = [' ', ' ', ' ', '  ', '\n', '\n\n', ' \n  ', '\t', '\n \n\n   ', ', ', '. '];

/** Random text of about `words` words; skewed word choice, so that n-grams repeat. */
export function randomText(next: () => number, words: number): string {
  const parts: string[] = [];
  if (next() < 0.3) parts.push(SPACES[Math.floor(next() * SPACES.length)]);
  for (let i = 0; i < words; i++) {
    parts.push(WORDS[Math.floor(next() * next() * WORDS.length)]);
    parts.push(SPACES[Math.floor(next() * SPACES.length)]);
  }
  if (next() < 0.5) parts.pop();
  return parts.join('');
}

/** char tokenizer, from the spec: code points; whitespace runs become ' '; a document's ends trimmed. */
export const charOracle = (text: string): string[] => [...text.replace(/\s+/g, ' ').trim()];

/** d2l-word, from the book: per line re.sub('[^A-Za-z]+', ' ', line).strip().lower().split(). */
export const d2lWordOracle = (text: string): string[] =>
  text.split('\n').flatMap((line) => line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase().split(' ').filter(Boolean));

/** word: the word-like segments of Intl.Segmenter over the whole document (no shards, no chunks). */
export const wordOracle = (text: string): string[] =>
  [...new Intl.Segmenter(undefined, { granularity: 'word' }).segment(text)].filter((s) => s.isWordLike).map((s) => s.segment);

/** Brute force: every n-gram of orders 1..order inside each document, keyed "n\t<JSON tokens>". */
export function oracleCounts(documents: string[][], order: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const tokens of documents) {
    for (let n = 1; n <= order; n++) {
      for (let start = 0; start + n <= tokens.length; start++) {
        const key = `${n}\t${JSON.stringify(tokens.slice(start, start + n))}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  return counts;
}

/**
 * Brute force for the sentence counts: each document's lines (split at '\n'; a final '\n' starts
 * no line) tokenized one by one, wrapped in <s> ... </s>, n-grams of orders 2..order.
 */
export function oracleSentenceCounts(documents: string[], tokenize: (line: string) => string[], order: number): Map<string, number> {
  const sentences = documents.flatMap((text) => {
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.map((line) => ['<s>', ...tokenize(line), '</s>']);
  });
  const counts = oracleCounts(sentences, order);
  for (const key of counts.keys()) if (key.startsWith('1\t')) counts.delete(key);
  return counts;
}

/** The database's sentence n-gram counts, keyed as oracleCounts keys them (<s> and </s> as text). */
export function databaseSentenceCounts(db: Database): Map<string, number> {
  const tokens = db.prepare('SELECT token FROM tokens ORDER BY id').all().map((row) => row.token as string);
  const text = (id: number) => (id === -1 ? '<s>' : id === -2 ? '</s>' : tokens[id]);
  const counts = new Map<string, number>();
  for (let n = 2; n <= 5; n++) {
    const columns = Array.from({ length: n }, (_, i) => `w${i + 1}`);
    for (const row of db.prepare(`SELECT ${columns.join(', ')}, count FROM sentence${n}`).iterate()) {
      counts.set(`${n}\t${JSON.stringify(columns.map((column) => text(Number(row[column]))))}`, Number(row.count));
    }
  }
  return counts;
}

/** The database's n-gram counts through the public view, keyed as oracleCounts keys them. */
export function databaseCounts(db: Database): Map<string, number> {
  const counts = new Map<string, number>();
  for (const row of db.prepare('SELECT n, tokens, count FROM ngram_counts').iterate()) {
    counts.set(`${row.n}\t${JSON.stringify(JSON.parse(row.tokens))}`, Number(row.count));
  }
  return counts;
}

/** tokens.bin as token texts. */
export function streamTokens(dir: string, db: Database): string[] {
  const tokens = db.prepare('SELECT token FROM tokens ORDER BY id').all().map((row) => row.token as string);
  const bytes = readFileSync(join(dir, 'tokens.bin'));
  const ids = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return Array.from(ids, (id) => tokens[id]);
}

/** Every row of the count and vocab tables, sorted, one line each: equal dumps mean equal results. */
export function dumpTables(db: Database): string {
  const lines: string[] = [];
  const tables = ['tokens', 'vocab', 'ngram1', 'ngram2', 'ngram3', 'ngram4', 'ngram5', 'sentence2', 'sentence3', 'sentence4', 'sentence5'];
  for (const table of tables) {
    for (const row of db.prepare(`SELECT * FROM ${table}`).all()) lines.push(`${table} ${JSON.stringify(Object.values(row))}`);
  }
  return lines.sort().join('\n');
}

/** A StageContext on a fresh run directory (the runner's job, done by hand). */
export function stageContext(dir: string, settings: Partial<Config>, log: string[] = []): StageContext & { close(): void } {
  mkdirSync(dir, { recursive: true });
  const db = openRunDatabase(join(dir, 'lmpipe.sqlite'));
  const config = { ...resolveConfig({ ...settings, memoryMb: 16 }), memoryMb: settings.memoryMb ?? 1024 };
  return {
    dir, db, config, fingerprint: 'test', signal: new AbortController().signal,
    log: (message) => void log.push(message),
    close: () => db.close(),
  };
}

/** Drains a stage's events. */
export async function drain<T>(events: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const event of events) all.push(event);
  return all;
}
