/**
 * Reads the count stage's sentence n-grams (tables sentence2..sentence5: w1..wn, count; ids from
 * `tokens.id`, <s> = -1, </s> = -2; written by saveCounts, stages/count/_sentences.ts), which the
 * Kneser-Ney estimator (analysis/kn/) turns into a model.
 *
 * sentenceOrder(db) -> number
 *   The highest order with sentence counts: 0 for a database counted before they existed (or at
 *   --order 1).
 *     if (sentenceOrder(db) < 3) throw ...
 *
 * sentenceRows(db, n) -> Iterable<{ ids: number[]; count: number }>
 *   Every sentence n-gram of order n, streamed.
 *     for (const { ids, count } of sentenceRows(db, 2)) ...
 */
import type { Database } from './driver.ts';
import { MAX_ORDER } from './schema.ts';

const columns = (n: number) => Array.from({ length: n }, (_, i) => `w${i + 1}`);

export function sentenceOrder(db: Database): number {
  // A database counted before sentence counts existed, opened read-only, has no such tables.
  const exists = (n: number) => db.prepare("SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?").get(`sentence${n}`);
  for (let n = MAX_ORDER; n >= 2; n--) if (exists(n) && db.prepare(`SELECT 1 AS found FROM sentence${n} LIMIT 1`).get()) return n;
  return 0;
}

export function* sentenceRows(db: Database, n: number): Generator<{ ids: number[]; count: number }> {
  if (!Number.isInteger(n) || n < 2 || n > MAX_ORDER) throw new RangeError(`Expected a sentence n-gram order from 2 to ${MAX_ORDER}, got \`${n}\``);
  const keys = columns(n);
  for (const row of db.prepare(`SELECT ${keys.join(', ')}, count FROM sentence${n}`).iterate()) {
    yield { ids: keys.map((key) => Number(row[key])), count: Number(row.count) };
  }
}
