/**
 * The numbers a finished run reports: corpus size, distinct n-grams per order, vocabulary size,
 * the first and last epoch's perplexities, the backend and the latest sample.
 *
 *   const summary = readSummary(db);   // fields are undefined where a stage has not run
 */
import type { Database } from './driver.ts';
import { MAX_ORDER } from './schema.ts';

export interface EpochPerplexity {
  epoch: number;
  train?: number;
  valid?: number;
  tokensPerSecond?: number;
}

export interface RunSummary {
  tokens: number;
  types: number;
  distinct: { n: number; rows: number }[];
  vocabSize: number;
  firstEpoch?: EpochPerplexity;
  lastEpoch?: EpochPerplexity;
  backend?: string;
  sample?: { prefix: string; text: string };
}

function epochRow(db: Database, run: string, epoch: number): EpochPerplexity {
  const rows = db.prepare('SELECT split, perplexity, tokens_per_s FROM metrics WHERE run = ? AND epoch = ?').all(run, epoch);
  const result: EpochPerplexity = { epoch };
  for (const row of rows) {
    if (row.split === 'train') {
      result.train = row.perplexity;
      result.tokensPerSecond = row.tokens_per_s ?? undefined;
    } else {
      result.valid = row.perplexity;
    }
  }
  return result;
}

export function readSummary(db: Database): RunSummary {
  const unigrams = db.prepare('SELECT coalesce(sum(count), 0) AS tokens, count(*) AS types FROM ngram1').get()!;
  const distinct: RunSummary['distinct'] = [];
  for (let n = 1; n <= MAX_ORDER; n++) {
    const rows = Number(db.prepare(`SELECT count(*) AS rows FROM ngram${n}`).get()!.rows);
    if (rows > 0) distinct.push({ n, rows });
  }
  const summary: RunSummary = {
    tokens: Number(unigrams.tokens),
    types: Number(unigrams.types),
    distinct,
    vocabSize: Number(db.prepare('SELECT count(*) AS size FROM vocab').get()!.size),
  };
  const run = db.prepare('SELECT run, backend FROM runs ORDER BY started_at DESC LIMIT 1').get();
  if (run) {
    summary.backend = run.backend;
    const range = db.prepare('SELECT min(epoch) AS first, max(epoch) AS last FROM metrics WHERE run = ?').get(run.run);
    if (range?.first !== null && range?.first !== undefined) {
      summary.firstEpoch = epochRow(db, run.run, range.first);
      summary.lastEpoch = epochRow(db, run.run, range.last);
    }
  }
  const sample = db.prepare('SELECT prefix, text FROM samples ORDER BY rowid DESC LIMIT 1').get();
  if (sample) summary.sample = { prefix: sample.prefix, text: sample.text };
  return summary;
}
