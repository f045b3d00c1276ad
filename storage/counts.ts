/**
 * Storage for the count stage: the `tokens` dictionary and the `ngram1..5` tables.
 *
 * saveCounts(db, batch, checkpoint)
 *   One transaction: inserts the new tokens, adds each unigram's count to its row (inserting it
 *   when new; unigrams arrive with every checkpoint of the counting phase) and records the stage
 *   checkpoint, so counts and progress can never disagree.
 *     saveCounts(db, { firstTokenId: 0, tokens: ['of', 'the'], unigrams: { keys, counts } },
 *       { fingerprint, record: { shardsDone: 3 } });
 *
 * openNgramFile(path, order) -> Database
 *   A new database file holding only `ngramN`, defined as in the run database, for one order's
 *   rows to be written (and indexed) apart from it, by another thread: SQLite has one writer per
 *   file. No journal: the caller writes it under a temporary name and renames it when whole.
 *
 * insertNgrams(db, order, rows)
 *   Inserts rows of exact counts (each n-gram once, in key order: they append to the WITHOUT ROWID
 *   b-tree). Call it inside a transaction.
 *     insertNgrams(db, 2, { keys: Int32Array.of(0, 1, 1, 0), counts: Float64Array.of(5, 2) });
 *
 * indexNgrams(db, order)             the "top k by count" index `ngramN_by_count`, if missing
 *
 * copyNgrams(db, path, order, checkpoint)
 *   One transaction: copies `ngramN` and its index from the file at `path` (openNgramFile's) into
 *   the empty `ngramN` of `db` and records the stage checkpoint. Same definitions on both sides
 *   and an empty target let SQLite copy the b-trees' records as they are, in order (its "xfer"
 *   path), without decoding a row or sorting the index again.
 *
 * finishCounts(db, options)
 *   One transaction: "top k by count" indexes, the `meta` keys that describe the counts, and the
 *   stage marked done. Returns the distinct n-grams per order.
 *
 * loadTokens(db) -> string[]        every token by id (ids are dense, first-occurrence order)
 * clearCounts(db)                   deletes tokens, n-grams, their indexes and the count meta keys
 */
import { crashPoint } from '../lib/crash.ts';
import { openDatabase, type Database } from './driver.ts';
import { MAX_ORDER, ngramTableSql } from './schema.ts';
import { markDone, saveCheckpoint } from './stages.ts';

/** Rows of one order: row r's ids are keys[r*order .. r*order+order), its count counts[r]. */
export interface KeyedRows {
  keys: Int32Array;
  counts: Float64Array;
}

export interface CountBatch {
  /** Id of tokens[0]; the tokens continue the dictionary densely. */
  firstTokenId: number;
  tokens: readonly string[];
  /** Unigram counts to add: keys are token ids. */
  unigrams: KeyedRows;
}

export interface CountCheckpoint {
  fingerprint: string;
  record: object;
}

/** Keys written by finishCounts (plus `total_n` and `distinct_n` for each order n). */
export const COUNT_META_KEYS = ['tokenizer', 'order', 'lowercase', 'jsonField', 'inputs', 'tokens', 'documents', 'bytes', 'invalidUtf8'];

/** Rows per multi-row INSERT: fewer statements to step, well under SQLite's 32766 parameters. */
const ROWS_PER_STATEMENT = 256;

const columns = (n: number) => Array.from({ length: n }, (_, i) => `w${i + 1}`);

function insertSql(order: number, rows: number, upsert: boolean): string {
  const keys = columns(order);
  const tuple = `(${new Array(order + 1).fill('?').join(',')})`;
  const conflict = upsert ? ` ON CONFLICT (${keys.join(', ')}) DO UPDATE SET count = count + excluded.count` : '';
  return `INSERT INTO ngram${order} (${keys.join(', ')}, count) VALUES ${new Array(rows).fill(tuple).join(',')}${conflict}`;
}

export function saveCounts(db: Database, batch: CountBatch, checkpoint: CountCheckpoint): void {
  db.transaction(() => {
    const insertToken = db.prepare('INSERT INTO tokens (id, token) VALUES (?, ?)');
    batch.tokens.forEach((token, i) => insertToken.run(batch.firstTokenId + i, token));
    _insertRows(db, 1, batch.unigrams, true);
    saveCheckpoint(db, 'count', checkpoint.fingerprint, checkpoint.record);
  })();
}

export function openNgramFile(path: string, order: number): Database {
  const db = openDatabase(path);
  db.exec('PRAGMA journal_mode = OFF');
  db.exec('PRAGMA synchronous = OFF');
  db.exec(ngramTableSql(order));
  return db;
}

export function insertNgrams(db: Database, order: number, rows: KeyedRows): void {
  _insertRows(db, order, rows, false);
  crashPoint('write');
}

const indexSql = (n: number) => `CREATE INDEX IF NOT EXISTS ngram${n}_by_count ON ngram${n}(count DESC)`;

export function indexNgrams(db: Database, order: number): void {
  // "top k by count" and Zipf queries scan this index instead of sorting millions of rows.
  db.exec(indexSql(order));
}

export function copyNgrams(db: Database, path: string, order: number, checkpoint: CountCheckpoint): void {
  // ATTACH is not allowed inside a transaction.
  db.prepare('ATTACH DATABASE ? AS part').run(path);
  try {
    db.transaction(() => {
      indexNgrams(db, order);
      db.exec(`INSERT INTO main.ngram${order} SELECT * FROM part.ngram${order}`);
      crashPoint('copy');
      saveCheckpoint(db, 'count', checkpoint.fingerprint, checkpoint.record);
    })();
  } finally {
    db.exec('DETACH DATABASE part');
  }
}

function _insertRows(db: Database, order: number, { keys, counts }: KeyedRows, upsert: boolean): void {
  const rows = counts.length;
  const many = db.prepare(insertSql(order, ROWS_PER_STATEMENT, upsert));
  const params = new Array<number>(ROWS_PER_STATEMENT * (order + 1));
  let r = 0;
  for (; r + ROWS_PER_STATEMENT <= rows; r += ROWS_PER_STATEMENT) {
    let p = 0;
    for (let row = r; row < r + ROWS_PER_STATEMENT; row++) {
      for (let k = 0; k < order; k++) params[p++] = keys[row * order + k];
      params[p++] = counts[row];
    }
    many.run(...params);
  }
  if (r === rows) return;
  const tail: number[] = [];
  for (let row = r; row < rows; row++) {
    for (let k = 0; k < order; k++) tail.push(keys[row * order + k]);
    tail.push(counts[row]);
  }
  db.prepare(insertSql(order, rows - r, upsert)).run(...tail);
}

export function loadTokens(db: Database): string[] {
  const tokens: string[] = [];
  for (const row of db.prepare('SELECT id, token FROM tokens ORDER BY id').iterate()) {
    if (row.id !== tokens.length) throw new RangeError(`Expected dense token ids in ${db.path}, got id ${row.id} at ${tokens.length}`);
    tokens.push(row.token);
  }
  return tokens;
}

export interface FinishOptions {
  fingerprint: string;
  order: number;
  /** Values for COUNT_META_KEYS; `total_n` for each order comes from `totals`. */
  meta: Record<string, string>;
  totals: readonly number[];
  checkpoint: object;
}

export function finishCounts(db: Database, options: FinishOptions): number[] {
  return db.transaction(() => {
    const distinct: number[] = [];
    const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    for (const [key, value] of Object.entries(options.meta)) setMeta.run(key, value);
    for (let n = 1; n <= options.order; n++) {
      indexNgrams(db, n);
      distinct.push(Number(db.prepare(`SELECT count(*) AS rows FROM ngram${n}`).get()!.rows));
      setMeta.run(`total_${n}`, String(options.totals[n - 1] ?? 0));
      setMeta.run(`distinct_${n}`, String(distinct[n - 1]));
    }
    markDone(db, 'count', options.fingerprint, options.checkpoint);
    return distinct;
  })();
}

export function clearCounts(db: Database): void {
  db.transaction(() => {
    db.exec('DELETE FROM tokens');
    for (let n = 1; n <= MAX_ORDER; n++) {
      db.exec(`DROP INDEX IF EXISTS ngram${n}_by_count`);
      db.exec(`DELETE FROM ngram${n}`);
    }
    const keys = [...COUNT_META_KEYS];
    for (let n = 1; n <= MAX_ORDER; n++) keys.push(`total_${n}`, `distinct_${n}`);
    const remove = db.prepare('DELETE FROM meta WHERE key = ?');
    for (const key of keys) remove.run(key);
  })();
}
