/**
 * Storage for the vocab stage: the public `vocab(id, token, count)` table.
 *
 * tokensByCount(db) -> IterableIterator<{ token, count }>
 *   Every counted token by descending count, ties by first occurrence (tokens.id ascending): the
 *   order d2l's Vocab sorts a Counter in (a stable sort of first-occurrence order).
 *     for (const { token, count } of tokensByCount(db)) ...
 *
 * saveVocab(db, entries, done)
 *   One transaction: replaces the vocab table with `entries` (ids 0, 1, 2, ... in order) and marks
 *   the stage done.
 *
 * clearVocab(db)      deletes every vocab row
 */
import type { Database } from './driver.ts';
import { markDone } from './stages.ts';

export interface VocabEntry {
  token: string;
  count: number;
}

export function tokensByCount(db: Database): IterableIterator<VocabEntry> {
  return db.prepare(
    'SELECT t.token AS token, g.count AS count FROM ngram1 g JOIN tokens t ON t.id = g.w1 ORDER BY g.count DESC, t.id ASC',
  ).iterate() as IterableIterator<VocabEntry>;
}

export function saveVocab(db: Database, entries: readonly VocabEntry[], done: { fingerprint: string; checkpoint: object }): void {
  db.transaction(() => {
    db.exec('DELETE FROM vocab');
    const insert = db.prepare('INSERT INTO vocab (id, token, count) VALUES (?, ?, ?)');
    entries.forEach((entry, id) => insert.run(id, entry.token, entry.count));
    markDone(db, 'vocab', done.fingerprint, done.checkpoint);
  })();
}

export function clearVocab(db: Database): void {
  db.exec('DELETE FROM vocab');
}

/** Every vocabulary token, indexed by its id (d2l's `idx_to_token`). */
export function vocabTokens(db: Database): string[] {
  return db.prepare('SELECT token FROM vocab ORDER BY id').all().map((row) => String(row.token));
}
