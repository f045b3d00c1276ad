/**
 * Builds run databases for the report tests by brute force, independently of the count stage:
 * d2l-word tokens (the book's regex), n-gram counts with a Map, a d2l vocabulary, and optional
 * training rows.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Database } from '../../storage/driver.ts';
import { openRunDatabase } from '../../storage/schema.ts';
import { saveEvaluations, type EvaluationRow } from '../../storage/evaluations.ts';

export const TIME_MACHINE = new URL('../../../shared/corpora/timemachine/timemachine.txt', import.meta.url);

/** d2l 0.17 tokenize(lines, 'word') on the cleaned lines. */
export function d2lWords(text: string): string[] {
  return text.split('\n').flatMap((line) => line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase().split(/\s+/).filter(Boolean));
}

/** Brute-force n-gram counts: key is the tokens joined by U+0001. */
export function bruteCounts(tokens: string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0001');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

export interface FixtureOptions {
  order?: number;
  vocab?: boolean;
  epochs?: number;
  samples?: string[];
  /** Rows of an n-gram vs RNN comparison on the validation split (storage/evaluations.ts). */
  evaluations?: EvaluationRow[];
}

/** A database at `path` holding the counts of `tokens` and, as asked, a vocabulary, metrics and samples. */
export function buildFixture(path: string, tokens: string[], options: FixtureOptions = {}): Database {
  const { order = 3, vocab = false, epochs = 0, samples = [], evaluations = [] } = options;
  const db = openRunDatabase(path);
  const ids = new Map<string, number>();
  for (const t of tokens) if (!ids.has(t)) ids.set(t, ids.size);
  db.transaction(() => {
    const insertToken = db.prepare('INSERT INTO tokens (id, token) VALUES (?, ?)');
    for (const [token, id] of ids) insertToken.run(id, token);
    for (let n = 1; n <= order; n++) {
      const cols = Array.from({ length: n }, (_, i) => `w${i + 1}`);
      const insert = db.prepare(`INSERT INTO ngram${n} (${cols.join(', ')}, count) VALUES (${cols.map(() => '?').join(', ')}, ?)`);
      for (const [key, count] of bruteCounts(tokens, n)) insert.run(...key.split('\u0001').map((t) => ids.get(t)!), count);
    }
    if (vocab) _vocab(db, tokens, ids);
    if (epochs > 0) _training(db, epochs);
    const insertSample = db.prepare("INSERT INTO samples VALUES ('run-1', 'time traveller', 'greedy', ?, '2024-01-01T00:00:00Z')");
    for (const text of samples) insertSample.run(text);
  })();
  if (evaluations.length > 0) saveEvaluations(db, 'run-1', 'valid', evaluations);
  return db;
}

function _vocab(db: Database, tokens: string[], ids: Map<string, number>): void {
  const counts = bruteCounts(tokens, 1);
  const order = [...counts.entries()].sort((a, b) => b[1] - a[1] || ids.get(a[0])! - ids.get(b[0])!);
  const insert = db.prepare('INSERT INTO vocab VALUES (?, ?, ?)');
  ['<unk>', '<pad>', '<bos>', '<eos>'].forEach((t, i) => insert.run(i, t, 0));
  order.forEach(([token, count], i) => insert.run(i + 4, token, count));
}

function _training(db: Database, epochs: number): void {
  db.prepare("INSERT INTO runs VALUES ('run-1', 'cpu', ?, '2024-01-01T00:00:00Z')").run(
    JSON.stringify({ tokenizer: 'd2l-word', cell: 'gru', hidden: 256, epochs, lr: 1 }),
  );
  const insert = db.prepare("INSERT INTO metrics VALUES ('run-1', ?, ?, ?, ?, ?, ?)");
  for (let e = 1; e <= epochs; e++) {
    const train = 900 / e + 20;
    insert.run(e, e * 100, 'train', Math.log(train), train, 5000 + e);
    insert.run(e, e * 100, 'valid', Math.log(train * 1.2), train * 1.2, null);
  }
}

export const haveTimeMachine = () => existsSync(TIME_MACHINE);
export const timeMachineWords = () => d2lWords(readFileSync(TIME_MACHINE, 'utf8'));
