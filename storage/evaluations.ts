/**
 * The n-gram-vs-RNN comparison (analysis/eval.ts): table `evaluations` (run, split, model, tokens,
 * oov, perplexity, perplexity_with_oov, created_at), one row per model scored on a split, so that
 * the report (and anyone with sqlite3) can show it.
 *
 * saveEvaluations(db, run, split, rows)
 *   One transaction: replaces every row of (run, split).
 *     saveEvaluations(db, 'run-1', 'valid', [{ model: 'kn-3', tokens: 999, oov: 12, perplexity: 9.1, perplexityWithOov: 9.4 }]);
 *
 * loadEvaluations(db) -> { run, split, rows }[]
 *   Every stored comparison, the latest first; rows in the order they were saved.
 */
import type { Database } from './driver.ts';

/** How analysis/eval.ts matches the models' units, in one line (the CLI and the report show it). */
export const EVAL_UNITS = 'per token of the split (the tokens the RNN predicts), every model reading the token stream as the RNN does ' +
  '(Kneser-Ney as one sentence: no line breaks, </s> scored by no model); ' +
  'OOV = not in the training split or outside the vocabulary, left out of `perplexity` for every model';

export interface EvaluationRow {
  /** laplace-N, kn-N or the RNN's cell (rnn, gru, lstm). */
  model: string;
  /** Tokens scored, and how many of them are OOV. */
  tokens: number;
  oov: number;
  /** Perplexity per token over the tokens that are not OOV, and over all of them. */
  perplexity: number;
  perplexityWithOov: number;
}

export function saveEvaluations(db: Database, run: string, split: string, rows: readonly EvaluationRow[]): void {
  const now = new Date().toISOString();
  db.transaction(() => {
    db.prepare('DELETE FROM evaluations WHERE run = ? AND split = ?').run(run, split);
    const insert = db.prepare('INSERT INTO evaluations (run, split, model, tokens, oov, perplexity, perplexity_with_oov, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    // created_at also orders the rows: one millisecond apart, in the order given.
    rows.forEach((row, i) => insert.run(run, split, row.model, row.tokens, row.oov, row.perplexity, row.perplexityWithOov, new Date(Date.parse(now) + i).toISOString()));
  })();
}

export function loadEvaluations(db: Database): { run: string; split: string; rows: EvaluationRow[] }[] {
  const groups = new Map<string, { run: string; split: string; rows: EvaluationRow[]; latest: string }>();
  for (const row of db.prepare('SELECT * FROM evaluations ORDER BY created_at').iterate()) {
    const key = `${row.run}\t${row.split}`;
    if (!groups.has(key)) groups.set(key, { run: row.run, split: row.split, rows: [], latest: '' });
    const group = groups.get(key)!;
    group.latest = row.created_at;
    group.rows.push({ model: row.model, tokens: Number(row.tokens), oov: Number(row.oov), perplexity: Number(row.perplexity), perplexityWithOov: Number(row.perplexity_with_oov) });
  }
  return [...groups.values()].sort((a, b) => b.latest.localeCompare(a.latest)).map(({ run, split, rows }) => ({ run, split, rows }));
}
