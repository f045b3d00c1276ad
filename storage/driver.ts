/**
 * The one seam between lmpipe and SQLite. On Node it is better-sqlite3 (version 12); under Deno,
 * which cannot load N-API addons, it is the built-in `node:sqlite`. Both are synchronous, and this
 * interface is the subset of better-sqlite3's API that both offer.
 *
 *   const db = openDatabase('runs/tm/lmpipe.sqlite');
 *   const insert = db.prepare('INSERT INTO vocab VALUES (?, ?, ?)');
 *   db.transaction(() => { insert.run(0, '<unk>', 0); })();
 */
import { createRequire } from 'node:module';

export type SqlValue = number | bigint | string | null | Uint8Array;
// deno-lint-ignore no-explicit-any
export type Row = Record<string, any>;

export interface Statement {
  run(...params: SqlValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...params: SqlValue[]): Row | undefined;
  all(...params: SqlValue[]): Row[];
  iterate(...params: SqlValue[]): IterableIterator<Row>;
}

export interface Database {
  readonly driver: 'better-sqlite3' | 'node:sqlite';
  readonly path: string;
  exec(sql: string): void;
  prepare(sql: string): Statement;
  /** Wraps `fn` in BEGIN IMMEDIATE / COMMIT, rolling back if it throws. Never `await` inside. */
  transaction<A extends unknown[], T>(fn: (...args: A) => T): (...args: A) => T;
  close(): void;
}

export interface OpenOptions {
  readonly?: boolean;
}

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';

export function openDatabase(path: string, options: OpenOptions = {}): Database {
  return isDeno ? openNodeSqlite(path, options) : openBetterSqlite(path, options);
}

function openBetterSqlite(path: string, options: OpenOptions): Database {
  // Loaded through require so that Deno never tries to resolve the native addon.
  const require = createRequire(import.meta.url);
  const BetterSqlite = require('better-sqlite3');
  const db = new BetterSqlite(path, { readonly: options.readonly ?? false });
  return {
    driver: 'better-sqlite3',
    path,
    exec: (sql) => void db.exec(sql),
    prepare: (sql) => db.prepare(sql),
    transaction: (fn) => db.transaction(fn).immediate,
    close: () => db.close(),
  };
}

function openNodeSqlite(path: string, options: OpenOptions): Database {
  const require = createRequire(import.meta.url);
  const { DatabaseSync } = require('node:sqlite');
  const db = new DatabaseSync(path, { readOnly: options.readonly ?? false });
  let depth = 0;
  const transaction = <A extends unknown[], T>(fn: (...args: A) => T) => (...args: A): T => {
    // Nested calls run inside the outer transaction, as better-sqlite3's savepoint-free default would.
    if (depth > 0) return fn(...args);
    db.exec('BEGIN IMMEDIATE');
    depth++;
    try {
      const result = fn(...args);
      db.exec('COMMIT');
      return result;
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    } finally {
      depth--;
    }
  };
  return {
    driver: 'node:sqlite',
    path,
    exec: (sql) => db.exec(sql),
    prepare: (sql) => {
      const statement = db.prepare(sql);
      return {
        run: (...params: SqlValue[]) => statement.run(...params),
        get: (...params: SqlValue[]) => statement.get(...params),
        all: (...params: SqlValue[]) => statement.all(...params),
        iterate: (...params: SqlValue[]) => statement.iterate(...params),
      };
    },
    transaction,
    close: () => db.close(),
  };
}
