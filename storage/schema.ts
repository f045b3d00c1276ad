/**
 * The run database's schema, versioned with `PRAGMA user_version`. Each migration runs once, in
 * order, inside one transaction. Add a migration; never edit one that has shipped.
 *
 * Public contract (documented in the README; users query it from the `sqlite3` shell):
 *   vocab(id INTEGER PRIMARY KEY, token TEXT UNIQUE NOT NULL, count INTEGER NOT NULL)
 *   VIEW ngram_counts(n INTEGER, tokens TEXT, count INTEGER)   -- tokens is a JSON array text
 *   metrics(run, epoch, step, split, loss, perplexity, tokens_per_s)
 * Everything else is internal: n-gram tables key on `tokens.id` (first-occurrence order); the
 * sentence tables sentence2..5 (Kneser-Ney's counts, stages/count/_sentences.ts) too, with <s> = -1
 * and </s> = -2.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { openDatabase, type Database, type OpenOptions } from './driver.ts';

export const MAX_ORDER = 5;

const columns = (n: number) => Array.from({ length: n }, (_, i) => `w${i + 1}`);

/**
 * The definition of table `${name}${n}` (ngramN, sentenceN): ids w1..wn and a count, keyed on the
 * ids. The count stage's per-order files use it too, and must match the run database exactly.
 */
export function countTableSql(name: string, n: number): string {
  const keys = columns(n);
  return `CREATE TABLE ${name}${n} (${keys.map((k) => `${k} INTEGER NOT NULL`).join(', ')}, ` +
    `count INTEGER NOT NULL, PRIMARY KEY (${keys.join(', ')})) WITHOUT ROWID;`;
}

/** Tables `${name}${first}` .. `${name}5`. */
function countTables(name: string, first: number): string {
  return Array.from({ length: MAX_ORDER - first + 1 }, (_, i) => countTableSql(name, first + i)).join('\n');
}

function ngramCountsView(): string {
  const branches: string[] = [];
  for (let n = 1; n <= MAX_ORDER; n++) {
    const keys = columns(n);
    const joins = keys.map((k, i) => `JOIN tokens t${i + 1} ON t${i + 1}.id = g.${k}`).join(' ');
    const tokens = keys.map((_, i) => `t${i + 1}.token`).join(', ');
    branches.push(`SELECT ${n} AS n, json_array(${tokens}) AS tokens, g.count AS count FROM ngram${n} g ${joins}`);
  }
  return `CREATE VIEW ngram_counts AS\n${branches.join('\nUNION ALL\n')};`;
}

const MIGRATIONS: string[] = [
  // 1: ingest, vocabulary, stage bookkeeping, training metrics.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE stages (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('running', 'done')),
    fingerprint TEXT NOT NULL,
    checkpoint TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE tokens (id INTEGER PRIMARY KEY, token TEXT NOT NULL UNIQUE);
  ${countTables('ngram', 1)}
  ${ngramCountsView()}
  CREATE TABLE vocab (id INTEGER PRIMARY KEY, token TEXT UNIQUE NOT NULL, count INTEGER NOT NULL);
  CREATE TABLE runs (
    run TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    config TEXT NOT NULL,
    started_at TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE metrics (
    run TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    split TEXT NOT NULL CHECK (split IN ('train', 'valid')),
    loss REAL NOT NULL,
    perplexity REAL NOT NULL,
    tokens_per_s REAL,
    PRIMARY KEY (run, epoch, split)
  ) WITHOUT ROWID;
  CREATE TABLE samples (
    run TEXT NOT NULL,
    prefix TEXT NOT NULL,
    strategy TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  `,
  // 2: sentence n-gram counts (Kneser-Ney: the n-grams of `<s> w1 .. wk </s>` per line; order 1
  // is never stored) and the n-gram-vs-RNN evaluations (analysis/eval.ts).
  `
  ${countTables('sentence', 2)}
  CREATE TABLE evaluations (
    run TEXT NOT NULL,
    split TEXT NOT NULL,
    model TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    oov INTEGER NOT NULL,
    perplexity REAL NOT NULL,
    perplexity_with_oov REAL NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run, split, model)
  ) WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings `db` up to SCHEMA_VERSION. Refuses a database written by a newer lmpipe. */
export function migrate(db: Database): void {
  const current = Number(db.prepare('PRAGMA user_version').get()?.user_version ?? 0);
  if (current > SCHEMA_VERSION) {
    throw new RangeError(`Expected schema version ${SCHEMA_VERSION} or older in ${db.path}, got ${current}`);
  }
  for (let version = current; version < SCHEMA_VERSION; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]);
      db.exec(`PRAGMA user_version = ${version + 1}`);
    })();
  }
}

/**
 * Opens (creating if needed) the run database at `path` with the settings bulk counting wants:
 * WAL, a 256 MiB page cache, NORMAL sync (WAL keeps it crash-safe for process kills).
 */
export function openRunDatabase(path: string, options: OpenOptions = {}): Database {
  if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
  const db = openDatabase(path, options);
  db.exec('PRAGMA busy_timeout = 5000');
  if (options.readonly) return db;
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA cache_size = -262144');
  db.exec('PRAGMA temp_store = MEMORY');
  migrate(db);
  return db;
}
