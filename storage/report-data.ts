/**
 * Reads what the report shows from a run database. Every part may be missing (a run that only
 * counted has no vocabulary, metrics or samples yet); missing parts come back empty, never throw.
 * Queries touch each n-gram table at most three times (existence, count-of-counts, top k), so a
 * 10M-row table costs a few scans, not a load into memory.
 */
import { loadEvaluations } from './evaluations.ts';
import type { SpectrumRow } from './queries.ts';
import type { Database, Row } from './driver.ts';
import { queries } from './queries.ts';
import { MAX_ORDER } from './schema.ts';
import { listStages, type StageRecord } from './stages.ts';

/** One order's count spectrum: `types` n-grams occur `count` times, counts descending. */
export interface RankProfile {
  n: number;
  distinct: number;
  total: number;
  spectrum: SpectrumRow[];
}

export interface RunInfo {
  run: string;
  backend: string;
  config: Record<string, unknown> | string;
  startedAt: string;
}

export interface EpochMetrics {
  epoch: number;
  train?: { perplexity: number; loss: number; tokensPerS: number | null };
  valid?: { perplexity: number; loss: number; tokensPerS: number | null };
}

export interface ReportData {
  profiles: RankProfile[];
  top: { n: number; rows: { tokens: string[]; count: number }[] }[];
  vocab: { size: number; head: { id: number; token: string; count: number }[] };
  runs: RunInfo[];
  /** The metrics of the latest run (by started_at) that has any. */
  training: { run: string; epochs: EpochMetrics[] } | undefined;
  samples: { run: string; prefix: string; strategy: string; text: string; createdAt: string }[];
  meta: { key: string; value: string }[];
  stages: StageRecord[];
  /** n-gram vs RNN comparisons (npm run eval), the latest first. */
  evaluations: ReturnType<typeof loadEvaluations>;
}

export interface GatherOptions {
  /** Rows per order in the top n-gram table. */
  topK?: number;
  /** Vocabulary entries listed. */
  vocabHead?: number;
  /** Most recent samples listed. */
  samples?: number;
}

const DEFAULTS: Required<GatherOptions> = { topK: 10, vocabHead: 30, samples: 20 };

export function gatherReportData(db: Database, options: GatherOptions = {}): ReportData {
  const o = { ...DEFAULTS, ...options };
  const q = queries(db);
  const orders = Array.from({ length: MAX_ORDER }, (_, i) => i + 1).filter(
    (n) => db.prepare(`SELECT 1 FROM ngram${n} LIMIT 1`).get() !== undefined,
  );
  return {
    profiles: orders.map((n) => _profile(n, q.spectrum(n))),
    top: orders.map((n) => ({ n, rows: q.top(n, o.topK) })),
    // A character vocabulary (d2l's 28, or 31 with the reserved tokens) is shown whole, not cut at 30.
    vocab: { size: q.vocabSize(), head: q.vocab(q.vocabSize() <= 2 * o.vocabHead ? q.vocabSize() : o.vocabHead) },
    runs: _runs(db),
    training: _training(db),
    samples: db
      .prepare('SELECT * FROM (SELECT rowid AS r, * FROM samples ORDER BY rowid DESC LIMIT ?) ORDER BY r')
      .all(o.samples)
      .map((row: Row) => ({ run: row.run, prefix: row.prefix, strategy: row.strategy, text: row.text, createdAt: row.created_at })),
    meta: db.prepare('SELECT key, value FROM meta ORDER BY key').all() as ReportData['meta'],
    stages: listStages(db),
    evaluations: loadEvaluations(db),
  };
}

/** Distinct and total n-grams, summed off the count-of-counts (tiny even for millions of rows). */
function _profile(n: number, spectrum: SpectrumRow[]): RankProfile {
  let distinct = 0;
  let total = 0;
  for (const { count, types } of spectrum) {
    distinct += types;
    total += count * types;
  }
  return { n, distinct, total, spectrum };
}

function _runs(db: Database): RunInfo[] {
  return db.prepare('SELECT * FROM runs ORDER BY started_at, run').all().map((row: Row) => {
    let config: RunInfo['config'] = row.config;
    try {
      config = JSON.parse(row.config);
    } catch {
      // Shown as the raw text: a report should describe a damaged row, not fail on it.
    }
    return { run: row.run, backend: row.backend, config, startedAt: row.started_at };
  });
}

function _training(db: Database): ReportData['training'] {
  const latest = db
    .prepare(
      `SELECT m.run FROM (SELECT DISTINCT run FROM metrics) m LEFT JOIN runs r ON r.run = m.run
       ORDER BY r.started_at DESC, m.run DESC LIMIT 1`,
    )
    .get();
  if (!latest) return undefined;
  const byEpoch = new Map<number, EpochMetrics>();
  for (const row of db.prepare('SELECT * FROM metrics WHERE run = ? ORDER BY epoch, split').iterate(latest.run)) {
    const epoch = Number(row.epoch);
    const entry = byEpoch.get(epoch) ?? { epoch };
    entry[row.split as 'train' | 'valid'] = {
      perplexity: row.perplexity,
      loss: row.loss,
      tokensPerS: row.tokens_per_s ?? null,
    };
    byEpoch.set(epoch, entry);
  }
  return { run: latest.run, epochs: [...byEpoch.values()] };
}
