/**
 * Opens a run database for the query tool: read-only, so that a query can never change a run
 * (and can run while the pipeline writes: WAL lets readers in), with `query_only` as a second lock
 * for statements the user types.
 *
 *   const db = openQueryDatabase('runs/timemachine/lmpipe.sqlite');
 */
import { existsSync } from 'node:fs';
import type { Database } from './driver.ts';
import { openRunDatabase, SCHEMA_VERSION } from './schema.ts';
import { LmpipeError } from '../lib/errors.ts';

export function openQueryDatabase(path: string): Database {
  if (!existsSync(path)) {
    throw new LmpipeError('STATE', `No database at ${path}; run \`npm start\` (or \`npm run pipeline -- --out DIR\`) first, or pass \`--db PATH\``);
  }
  let db: Database;
  try {
    db = openRunDatabase(path, { readonly: true });
  } catch (error) {
    throw new LmpipeError('STATE', `Cannot open ${path} as SQLite: ${(error as Error).message}`);
  }
  try {
    db.exec('PRAGMA query_only = ON');
    // Perplexity makes a point lookup per token and order; SQLite's 2 MB default cache would
    // reread the upper b-tree pages of a large table (the memory is taken only as pages are read).
    db.exec('PRAGMA cache_size = -65536');
    const version = Number(db.prepare('PRAGMA user_version').get()?.user_version ?? 0);
    if (version === 0) throw new LmpipeError('STATE', `Expected ${path} to be an lmpipe database, got one without lmpipe's schema`);
    if (version > SCHEMA_VERSION) {
      throw new LmpipeError('STATE', `Expected schema version ${SCHEMA_VERSION} or older in ${path}, got ${version}; update lmpipe`);
    }
  } catch (error) {
    db.close();
    if (error instanceof LmpipeError) throw error;
    throw new LmpipeError('STATE', `Cannot read ${path} as SQLite: ${(error as Error).message}`);
  }
  return db;
}
