/**
 * Reads what the report shows from a run database. Every part may be missing (a run that only
 * counted has no vocabulary, metrics or samples yet); missing parts come back empty, never throw.
 * Queries touch each n-gram table at most three times (existence, count-of-counts, top k), so a
 * 10M-row table costs a few scans, not a load into memory.
 */
import type { Database, Row } from '../storage/driver.ts';
import { listStages, type StageRecord } from '../storage/stages.ts';
import { MAX_ORDER } from '../storage/schema.ts';
import type { SpectrumRow } from './zipf-fit.ts';

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
  const orders = Array.from({ length: MAX_ORDER }, (_, i) => i + 1).filter(
    (n) => db.prepare(`SELECT 1 FROM ngram${n} LIMIT 1`).get() !== undefined,
  );
  // Vocabulary ids are 0..size-1, so max(id) is one b-tree descent where count(*) walks the table.
  const vocabSize = Number(db.prepare('SELECT coalesce(max(id) + 1, 0) AS size FROM vocab').get()?.size ?? 0);
  return {
    profiles: orders.map((n) => _profile(db, n)),
    top: orders.map((n) => ({ n, rows: _top(db, n, o.topK) })),
    vocab: {
      size: vocabSize,
      head: db.prepare('SELECT id, token, count FROM vocab ORDER BY id LIMIT ?').all(o.vocabHead) as ReportData['vocab']['head'],
    },
    runs: _runs(db),
    training: _training(db),
    samples: db
      .prepare('SELECT * FROM (SELECT rowid AS r, * FROM samples ORDER BY rowid DESC LIMIT ?) ORDER BY r')
      .all(o.samples)
      .map((row: Row) => ({ run: row.run, prefix: row.prefix, strategy: row.strategy, text: row.text, createdAt: row.created_at })),
    meta: db.prepare('SELECT key, value FROM meta ORDER BY key').all() as ReportData['meta'],
    stages: listStages(db),
  };
}

function _profile(db: Database, n: number): RankProfile {
  // Count-of-counts is tiny (a few thousand distinct counts) even for millions of n-grams.
  const spectrum = db
    .prepare(`SELECT count, count(*) AS types FROM ngram${n} GROUP BY count ORDER BY count DESC`)
    .all()
    .map((row: Row) => ({ count: Number(row.count), types: Number(row.types) }));
  let distinct = 0;
  let total = 0;
  for (const { count, types } of spectrum) {
    distinct += types;
    total += count * types;
  }
  return { n, distinct, total, spectrum };
}

function _top(db: Database, n: number, k: number): { tokens: string[]; count: number }[] {
  const keys = Array.from({ length: n }, (_, i) => `w${i + 1}`);
  const token = db.prepare('SELECT token FROM tokens WHERE id = ?');
  // Ties keep the table's key order, which is first-occurrence order of the tokens.
  return db
    .prepare(`SELECT ${keys.join(', ')}, count FROM ngram${n} ORDER BY count DESC, ${keys.join(', ')} LIMIT ?`)
    .all(k)
    .map((row: Row) => ({
      tokens: keys.map((key) => String(token.get(row[key])?.token ?? `#${row[key]}`)),
      count: Number(row.count),
    }));
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

/** The count at each rank in `ranks` (1-based, ascending), read off the spectrum. */
export function countsAtRanks(spectrum: readonly SpectrumRow[], ranks: number[]): [number, number][] {
  const out: [number, number][] = [];
  let row = 0;
  let last = spectrum[0]?.types ?? 0; // highest rank covered by spectrum[0..row]
  for (const rank of ranks) {
    while (row < spectrum.length - 1 && rank > last) last += spectrum[++row].types;
    if (rank <= last) out.push([rank, spectrum[row].count]);
  }
  return out;
}

/** About `perDecade` integer ranks per factor of ten from 1 to `max`, always including 1 and `max`. */
export function logSpacedRanks(max: number, perDecade = 24): number[] {
  const ranks = new Set<number>();
  if (max < 1) return [];
  const steps = Math.ceil(Math.log10(max) * perDecade);
  for (let i = 0; i <= steps; i++) ranks.add(Math.min(max, Math.round(10 ** (i / perDecade))));
  ranks.add(max);
  return [...ranks].sort((a, b) => a - b);
}
