/**
 * Storage for the count stage: the `tokens` dictionary, the `ngram1..5` tables and the sentence
 * n-gram tables `sentence2..5` (Kneser-Ney's counts, <s> = -1, </s> = -2). Counts arrive in
 * batches (spills) and merge by UPSERT, so a run can spill as often as its memory budget needs and
 * a resumed run adds to what a killed one committed.
 *
 * saveCounts(db, batch, checkpoint)
 *   One transaction: inserts the new tokens, adds each n-gram's count to its row (inserting it when
 *   new) and records the stage checkpoint, so counts and progress can never disagree.
 *     saveCounts(db, { firstTokenId: 0, tokens: ['of', 'the'], ngrams: [rows1, rows2] },
 *       { fingerprint, record: { shardsDone: 3 } });
 *
 * openNgramFile(path, table) -> Database
 *   A new database file holding only table `ngramN` or `sentenceN` (a CountTable), defined as in the
 *   run database, for its rows to be written (and indexed) apart from it, by another thread: SQLite
 *   has one writer per file. No journal: the caller writes it under a temporary name and renames
 *   it when whole.
 *
 * insertNgrams(db, table, rows)
 *   Inserts rows of exact counts (each n-gram once, in key order: they append to the WITHOUT ROWID
 *   b-tree). Call it inside a transaction.
 *     insertNgrams(db, { name: 'ngram', n: 2 }, { keys: Int32Array.of(0, 1, 1, 0), counts: Float64Array.of(5, 2) });
 *
 * indexNgrams(db, order)             the "top k by count" index `ngramN_by_count`, if missing
 *
 * copyNgrams(db, path, table, checkpoint)
 *   One transaction: copies the table (and `ngramN`'s index) from the file at `path`
 *   (openNgramFile's) into the same, empty table of `db` and records the stage checkpoint. Same
 *   definitions on both sides and an empty target let SQLite copy the b-trees' records as they are,
 *   in order (its "xfer" path), without decoding a row or sorting the index again.
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
import { countTableSql, MAX_ORDER } from './schema.ts';
import { markDone, saveCheckpoint } from './stages.ts';

/**
 * Rows to write for one order: row r's key is keys[r*stride + offset + k] for k < order, its count
 * counts[r*countStride + countOffset]. (A hash table's slots hold hash, count and key side by side.)
 */
export interface NgramRows {
  /** ngram1..5 (the default) or sentence2..5 (Kneser-Ney's counts). */
  table?: 'ngram' | 'sentence';
  order: number;
  keys: Int32Array;
  stride: number;
  offset: number;
  counts: Int32Array | Float64Array;
  countStride: number;
  countOffset: number;
  /** Which rows to write (the occupied slots of a hash table). */
  rows: Int32Array;
}

export interface CountBatch {
  /** Id of tokens[0]; the tokens continue the dictionary densely. */
  firstTokenId: number;
  tokens: readonly string[];
  ngrams: readonly NgramRows[];
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

function upsertSql(table: string, order: number, rows: number): string {
  const keys = columns(order);
  const tuple = `(${new Array(order + 1).fill('?').join(',')})`;
  return `INSERT INTO ${table}${order} (${keys.join(', ')}, count) VALUES ${new Array(rows).fill(tuple).join(',')}
    ON CONFLICT (${keys.join(', ')}) DO UPDATE SET count = count + excluded.count`;
}

/** One count table: `ngramN` (d2l counts) or `sentenceN` (Kneser-Ney's). */
export interface CountTable {
  name: 'ngram' | 'sentence';
  n: number;
}

/** Rows of one order: row r's ids are keys[r*order .. r*order+order), its count counts[r]. */
export interface KeyedRows {
  keys: Int32Array;
  counts: Float64Array;
}

export function openNgramFile(path: string, { name, n }: CountTable): Database {
  const db = openDatabase(path);
  db.exec('PRAGMA journal_mode = OFF');
  db.exec('PRAGMA synchronous = OFF');
  db.exec(countTableSql(name, n));
  return db;
}

export function insertNgrams(db: Database, { name, n }: CountTable, { keys, counts }: KeyedRows): void {
  const rows = Int32Array.from({ length: counts.length }, (_, row) => row);
  _insertRows(db, { table: name, order: n, keys, stride: n, offset: 0, counts, countStride: 1, countOffset: 0, rows }, insertSql);
  crashPoint('write');
}

const indexSql = (n: number) => `CREATE INDEX IF NOT EXISTS ngram${n}_by_count ON ngram${n}(count DESC)`;

export function indexNgrams(db: Database, order: number): void {
  // "top k by count" and Zipf queries scan this index instead of sorting millions of rows.
  db.exec(indexSql(order));
}

export function copyNgrams(db: Database, path: string, { name, n }: CountTable, checkpoint: CountCheckpoint): void {
  // ATTACH is not allowed inside a transaction.
  db.prepare('ATTACH DATABASE ? AS part').run(path);
  try {
    db.transaction(() => {
      if (name === 'ngram') indexNgrams(db, n);
      db.exec(`INSERT INTO main.${name}${n} SELECT * FROM part.${name}${n}`);
      crashPoint('copy');
      saveCheckpoint(db, 'count', checkpoint.fingerprint, checkpoint.record);
    })();
  } finally {
    db.exec('DETACH DATABASE part');
  }
}

function insertSql(table: string, order: number, rows: number): string {
  const keys = columns(order);
  const tuple = `(${new Array(order + 1).fill('?').join(',')})`;
  return `INSERT INTO ${table}${order} (${keys.join(', ')}, count) VALUES ${new Array(rows).fill(tuple).join(',')}`;
}

export function saveCounts(db: Database, batch: CountBatch, checkpoint: CountCheckpoint): void {
  db.transaction(() => {
    const insertToken = db.prepare('INSERT INTO tokens (id, token) VALUES (?, ?)');
    batch.tokens.forEach((token, i) => insertToken.run(batch.firstTokenId + i, token));
    for (const rows of batch.ngrams) _upsertRows(db, rows);
    saveCheckpoint(db, 'count', checkpoint.fingerprint, checkpoint.record);
  })();
}

function _upsertRows(db: Database, rows: NgramRows): void {
  if (rows.rows.length === 0) return;
  // Keys sorted ascending insert into the WITHOUT ROWID b-tree about twice as fast as random ones.
  _insertRows(db, { ...rows, rows: _sortRows(rows.keys, rows.stride, rows.offset, rows.order, rows.rows) }, upsertSql);
}

/** Inserts `rows` in the order given, ROWS_PER_STATEMENT to a statement of `sql`'s. */
function _insertRows(
  db: Database, { table = 'ngram', order, keys, stride, offset, counts, countStride, countOffset, rows }: NgramRows,
  sql: (table: string, order: number, rows: number) => string,
): void {
  const many = db.prepare(sql(table, order, ROWS_PER_STATEMENT));
  const params = new Array<number>(ROWS_PER_STATEMENT * (order + 1));
  let r = 0;
  for (; r + ROWS_PER_STATEMENT <= rows.length; r += ROWS_PER_STATEMENT) {
    let p = 0;
    for (let j = r; j < r + ROWS_PER_STATEMENT; j++) {
      const row = rows[j];
      for (let k = 0; k < order; k++) params[p++] = keys[row * stride + offset + k];
      params[p++] = counts[row * countStride + countOffset];
    }
    many.run(...params);
  }
  if (r === rows.length) return;
  const rest = db.prepare(sql(table, order, rows.length - r));
  const tail: number[] = [];
  for (; r < rows.length; r++) {
    const row = rows[r];
    for (let k = 0; k < order; k++) tail.push(keys[row * stride + offset + k]);
    tail.push(counts[row * countStride + countOffset]);
  }
  rest.run(...tail);
}

/**
 * Sorts `rows` by their keys: an LSD counting sort, one stable pass per column (ids are dense, so
 * a column's buckets are its ids; the sentence markers' negative ids get the first buckets).
 * Linear, and each pass reads the keys in a predictable order. Sparse ids (never from the count
 * stage) fall back to a comparison sort.
 */
function _sortRows(keys: Int32Array, stride: number, offset: number, order: number, rows: Int32Array): Int32Array {
  let from = Int32Array.from(rows);
  let to = new Int32Array(rows.length);
  let max = 0;
  let min = 0;
  for (let i = 0; i < rows.length; i++) {
    for (let k = 0; k < order; k++) {
      const id = keys[rows[i] * stride + offset + k];
      max = Math.max(max, id);
      min = Math.min(min, id);
    }
  }
  if (max - min > 4 * rows.length + (1 << 16)) {
    return from.sort((a, b) => {
      for (let k = 0; k < order; k++) {
        const difference = keys[a * stride + offset + k] - keys[b * stride + offset + k];
        if (difference !== 0) return difference;
      }
      return 0;
    });
  }
  const starts = new Int32Array(max - min + 2);
  for (let column = order - 1; column >= 0; column--) {
    const at = offset + column;
    starts.fill(0);
    for (let i = 0; i < rows.length; i++) starts[keys[rows[i] * stride + at] - min + 1]++;
    for (let bucket = 0; bucket <= max - min; bucket++) starts[bucket + 1] += starts[bucket];
    for (let i = 0; i < from.length; i++) {
      const row = from[i];
      to[starts[keys[row * stride + at] - min]++] = row;
    }
    [from, to] = [to, from];
  }
  return from;
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
      if (n >= 2) db.exec(`DELETE FROM sentence${n}`);
    }
    const keys = [...COUNT_META_KEYS];
    for (let n = 1; n <= MAX_ORDER; n++) keys.push(`total_${n}`, `distinct_${n}`);
    const remove = db.prepare('DELETE FROM meta WHERE key = ?');
    for (const key of keys) remove.run(key);
  })();
}
