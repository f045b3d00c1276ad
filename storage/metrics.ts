/**
 * Training runs, their per-epoch metrics and generated samples (tables runs, metrics, samples of
 * storage/schema.ts). A run is one training of one model in a run directory; its id is the train
 * stage's fingerprint.
 *
 *   recordRun(db, { run, backend: 'wasm', config });
 *   db.transaction(() => saveMetrics(db, run, rows))();
 *   addSample(db, { run, prefix: 'time traveller', strategy: 'greedy', text });
 */
import type { Database } from './driver.ts';

export interface MetricRow {
  /** 1 for the first epoch. */
  epoch: number;
  /** Optimizer steps taken when the row was written. */
  step: number;
  split: 'train' | 'valid';
  /** Mean cross-entropy per token (nats). */
  loss: number;
  perplexity: number;
  /** Training tokens per second over the epoch (train rows); null for valid. */
  tokensPerSecond: number | null;
}

export interface SampleRow {
  run: string;
  prefix: string;
  /** "greedy" or "temperature 0.8, seed 42". */
  strategy: string;
  text: string;
}

/** Adds the run, or updates its backend and config when a resumed run continues it. */
export function recordRun(db: Database, run: { run: string; backend: string; config: object }): void {
  db.prepare(
    `INSERT INTO runs (run, backend, config, started_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (run) DO UPDATE SET backend = excluded.backend, config = excluded.config`,
  ).run(run.run, run.backend, JSON.stringify(run.config), new Date().toISOString());
}

/** Writes (or rewrites: a resumed run replays its history) metric rows. Call inside a transaction. */
export function saveMetrics(db: Database, run: string, rows: readonly MetricRow[]): void {
  const insert = db.prepare(
    `INSERT INTO metrics (run, epoch, step, split, loss, perplexity, tokens_per_s) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run, epoch, split) DO UPDATE SET step = excluded.step, loss = excluded.loss,
       perplexity = excluded.perplexity, tokens_per_s = excluded.tokens_per_s`,
  );
  for (const row of rows) insert.run(run, row.epoch, row.step, row.split, row.loss, row.perplexity, row.tokensPerSecond);
}

/** A run's metric rows by epoch, train before valid. */
export function loadMetrics(db: Database, run: string): MetricRow[] {
  return db.prepare('SELECT * FROM metrics WHERE run = ? ORDER BY epoch, split').all(run).map((row) => ({
    epoch: Number(row.epoch),
    step: Number(row.step),
    split: row.split,
    loss: row.loss,
    perplexity: row.perplexity,
    tokensPerSecond: row.tokens_per_s ?? null,
  }));
}

/** Deletes every run and its metrics: the run directory's model is being trained again. */
export function clearRuns(db: Database): void {
  db.transaction(() => {
    db.exec('DELETE FROM metrics');
    db.exec('DELETE FROM runs');
  })();
}

export function addSample(db: Database, sample: SampleRow): void {
  db.prepare('INSERT INTO samples (run, prefix, strategy, text, created_at) VALUES (?, ?, ?, ?, ?)')
    .run(sample.run, sample.prefix, sample.strategy, sample.text, new Date().toISOString());
}

export function loadSamples(db: Database, run?: string): SampleRow[] {
  const rows = run === undefined
    ? db.prepare('SELECT * FROM samples ORDER BY rowid').all()
    : db.prepare('SELECT * FROM samples WHERE run = ? ORDER BY rowid').all(run);
  return rows.map((row) => ({ run: row.run, prefix: row.prefix, strategy: row.strategy, text: row.text }));
}

/** Deletes the samples of every run (the sample stage's reset). */
export function clearSamples(db: Database): void {
  db.exec('DELETE FROM samples');
}
