/**
 * Every read the query tool makes, as prepared statements over a run database (opened read-only by
 * `openQueryDatabase` in storage/_query-open.ts). Each statement is prepared once, on first use.
 *
 *   const q = queries(db);
 *   const ids = ['of', 'the'].map((token) => q.tokenId(token));   // UNIQUE index on tokens.token
 *   q.ngramCount(ids as number[]);                                  // primary key of ngram2
 *
 * Speed: token and n-gram lookups are index lookups (microseconds on a 10M-row table). `top` walks
 * `ngram<n>_by_count` when the count stage has built it; without that index SQLite scans the table
 * instead (seconds at 10M rows): a read-only tool cannot build it, and the answer is the same.
 */
import type { Database, Row, Statement } from './driver.ts';
import { MAX_ORDER } from './schema.ts';
import { LmpipeError } from '../lib/errors.ts';
import { loadTokens } from './counts.ts';
import { sentenceOrder, sentenceRows } from './sentences.ts';


/** `types` n-grams occur exactly `count` times: one row of an order's count spectrum. */
export interface SpectrumRow {
  count: number;
  types: number;
}

export interface TopRow {
  tokens: string[];
  count: number;
}

export interface VocabRow {
  id: number;
  token: string;
  count: number;
}

export interface SelectResult {
  columns: string[];
  rows: Row[];
  /** True when the statement had more than `maxRows` rows. */
  truncated: boolean;
}

export interface Queries {
  meta(key: string): string | undefined;
  /** Highest counted order: meta `order`, else the highest non-empty ngram table. */
  order(): number;
  tokenId(token: string): number | undefined;
  ngramCount(ids: readonly number[]): number;
  /** Sum of counts (occurrences) and number of rows (distinct n-grams) of order n. */
  totals(n: number): { total: number; distinct: number };
  top(n: number, k: number): TopRow[];
  /** How many n-grams of order n have each count, counts descending. */
  spectrum(n: number): SpectrumRow[];
  vocab(k: number): VocabRow[];
  vocabSize(): number;
  /** State of a pipeline stage ('running', 'done') or undefined when it never ran. */
  stageState(name: string): string | undefined;
  /** Runs one read-only statement and returns at most `maxRows` rows (0: all). */
  select(sql: string, maxRows: number): SelectResult;
  /** Every token by id (storage/counts.ts loadTokens). */
  tokens(): string[];
  /** Highest order of sentence n-gram counts (Kneser-Ney's input), 0 when none; and its rows (storage/sentences.ts). */
  sentenceOrder(): number;
  sentenceRows(n: number): Iterable<{ ids: number[]; count: number }>;
}

const keys = (n: number) => Array.from({ length: n }, (_, i) => `w${i + 1}`);

const _notReadOnly = (body: string) => new LmpipeError('USAGE',
  `Expected a read-only statement (SELECT, WITH, VALUES, EXPLAIN or a PRAGMA without \`=\`), got \`${body.length > 40 ? body.slice(0, 40) + '...' : body}\``);

/**
 * A first line of defence with a clear message: the statement's first keyword, skipping comments.
 * The read-only connection with `query_only` is the real lock (it also stops `WITH ... DELETE`).
 */
function _checkReadOnly(sql: string): string {
  const body = sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, ' ').trim();
  const keyword = /^[A-Za-z]+/.exec(body)?.[0].toUpperCase() ?? '';
  if (['SELECT', 'WITH', 'VALUES', 'EXPLAIN'].includes(keyword)) return body;
  if (keyword === 'PRAGMA' && !body.includes('=')) return body;
  throw _notReadOnly(body);
}

/** Runs a user's statement, turning SQLite's complaints into one-line usage errors. */
function _selectRows(db: Database, sql: string, maxRows: number): { rows: Row[]; truncated: boolean } {
  const body = _checkReadOnly(sql);
  const rows: Row[] = [];
  try {
    const statement = db.prepare(sql);
    for (const row of statement.iterate()) {
      if (maxRows > 0 && rows.length === maxRows) return { rows, truncated: true };
      rows.push(row);
    }
    // node:sqlite (Deno) ends the iteration of a refused write silently, where `all()` throws:
    // rerun the only statements that can hide a write behind a reading keyword.
    if (rows.length === 0 && db.driver === 'node:sqlite' && /^(WITH|PRAGMA)\b/i.test(body)) statement.all();
  } catch (error) {
    const message = (error as Error).message;
    // better-sqlite3 refuses to iterate a statement that returns nothing (a write); SQLite itself
    // refuses writes on a read-only, query_only connection.
    if (/does not return data|readonly|read-only/i.test(message)) throw _notReadOnly(body);
    throw new LmpipeError('USAGE', `SQL error: ${message}`);
  }
  return { rows, truncated: false };
}

export function queries(db: Database): Queries {
  const cache = new Map<string, Statement>();
  const statement = (sql: string) => {
    let prepared = cache.get(sql);
    if (!prepared) cache.set(sql, (prepared = db.prepare(sql)));
    return prepared;
  };
  const checkOrder = (n: number) => {
    if (!Number.isInteger(n) || n < 1 || n > MAX_ORDER) throw new RangeError(`Expected \`--n\` to be an integer from 1 to ${MAX_ORDER}, got \`${n}\``);
  };
  const tokenIds = new Map<string, number | undefined>();

  const meta = (key: string): string | undefined => statement('SELECT value FROM meta WHERE key = ?').get(key)?.value;

  function order(): number {
    const recorded = Number(meta('order'));
    if (Number.isInteger(recorded) && recorded >= 1 && recorded <= MAX_ORDER) return recorded;
    for (let n = MAX_ORDER; n >= 1; n--) if (statement(`SELECT 1 AS found FROM ngram${n} LIMIT 1`).get()) return n;
    return 0;
  }

  function tokenId(token: string): number | undefined {
    if (!tokenIds.has(token)) tokenIds.set(token, statement('SELECT id FROM tokens WHERE token = ?').get(token)?.id);
    return tokenIds.get(token);
  }

  function ngramCount(ids: readonly number[]): number {
    checkOrder(ids.length);
    const where = keys(ids.length).map((key) => `${key} = ?`).join(' AND ');
    return Number(statement(`SELECT count FROM ngram${ids.length} WHERE ${where}`).get(...ids)?.count ?? 0);
  }

  function totals(n: number): { total: number; distinct: number } {
    checkOrder(n);
    // The count stage records both when it finishes (and deletes them when it starts over); a
    // database without them (older, or built by hand) costs one scan of the table.
    const [total, distinct] = [meta(`total_${n}`), meta(`distinct_${n}`)];
    if (total !== undefined && distinct !== undefined) return { total: Number(total), distinct: Number(distinct) };
    const row = statement(`SELECT coalesce(sum(count), 0) AS total, count(*) AS distinct_ FROM ngram${n}`).get()!;
    return { total: Number(row.total), distinct: Number(row.distinct_) };
  }

  function top(n: number, k: number): TopRow[] {
    checkOrder(n);
    const columns = keys(n);
    const joins = columns.map((key, i) => `JOIN tokens t${i + 1} ON t${i + 1}.id = g.${key}`).join(' ');
    const tokens = columns.map((_, i) => `t${i + 1}.token AS t${i + 1}`).join(', ');
    const orderBy = ['count DESC', ...columns].join(', ');
    // The LIMIT inside the subquery keeps SQLite from flattening it into the join: the top k come
    // off the count index first, and only they are joined to their token texts.
    const sql = `SELECT g.count AS count, ${tokens} FROM (SELECT ${columns.join(', ')}, count FROM ngram${n} ` +
      `ORDER BY ${orderBy} LIMIT ?) g ${joins} ORDER BY ${columns.map((key) => `g.${key}`).reduce((a, b) => `${a}, ${b}`, 'g.count DESC')}`;
    return statement(sql).all(k).map((row) => ({
      tokens: columns.map((_, i) => row[`t${i + 1}`] as string),
      count: Number(row.count),
    }));
  }

  function spectrum(n: number): SpectrumRow[] {
    checkOrder(n);
    return statement(`SELECT count, count(*) AS types FROM ngram${n} GROUP BY count ORDER BY count DESC`)
      .all()
      .map((row) => ({ count: Number(row.count), types: Number(row.types) }));
  }

  const vocab = (k: number): VocabRow[] =>
    statement('SELECT id, token, count FROM vocab ORDER BY id LIMIT ?').all(k).map((row) => ({
      id: Number(row.id),
      token: row.token as string,
      count: Number(row.count),
    }));

  // Vocabulary ids are 0..size-1 (d2l's idx_to_token), so max(id) is one b-tree descent where
  // count(*) would walk the whole token index.
  const vocabSize = () => Number(statement('SELECT coalesce(max(id) + 1, 0) AS size FROM vocab').get()!.size);

  const stageState = (name: string): string | undefined => statement('SELECT state FROM stages WHERE name = ?').get(name)?.state;

  function select(sql: string, maxRows: number): SelectResult {
    const { rows, truncated } = _selectRows(db, sql, maxRows);
    return { columns: rows.length > 0 ? Object.keys(rows[0]) : [], rows, truncated };
  }

  return {
    meta, order, tokenId, ngramCount, totals, top, spectrum, vocab, vocabSize, stageState, select,
    tokens: () => loadTokens(db),
    sentenceOrder: () => sentenceOrder(db),
    sentenceRows: (n) => sentenceRows(db, n),
  };
}
