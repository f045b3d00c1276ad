/**
 * Stage bookkeeping: which stages are done, under which fingerprint, and each stage's checkpoint
 * (a flat JSON record). A stage that commits work calls `saveCheckpoint` inside the same
 * `db.transaction()` as that work, so progress and results can never disagree.
 *
 *   const state = loadStage(db, 'count');          // undefined when never started
 *   db.transaction(() => { upsertCounts(...); saveCheckpoint(db, 'count', fp, cursor); })();
 */
import type { Database } from './driver.ts';

export interface StageRecord<C = Record<string, unknown>> {
  name: string;
  state: 'running' | 'done';
  fingerprint: string;
  checkpoint: C;
  updatedAt: string;
}

export function loadStage<C = Record<string, unknown>>(db: Database, name: string): StageRecord<C> | undefined {
  const row = db.prepare('SELECT * FROM stages WHERE name = ?').get(name);
  if (!row) return undefined;
  return {
    name: row.name,
    state: row.state,
    fingerprint: row.fingerprint,
    checkpoint: JSON.parse(row.checkpoint) as C,
    updatedAt: row.updated_at,
  };
}

export function listStages(db: Database): StageRecord[] {
  return db.prepare('SELECT name FROM stages').all().map((row) => loadStage(db, row.name)!);
}

/** Records progress of a running stage. Call inside the transaction that commits the work. */
export function saveCheckpoint(db: Database, name: string, fingerprint: string, checkpoint: object): void {
  db.prepare(
    `INSERT INTO stages (name, state, fingerprint, checkpoint, updated_at) VALUES (?, 'running', ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET state = 'running', fingerprint = excluded.fingerprint,
       checkpoint = excluded.checkpoint, updated_at = excluded.updated_at`,
  ).run(name, fingerprint, JSON.stringify(checkpoint), new Date().toISOString());
}

/** Marks a stage finished. Call inside the transaction that commits its last work. */
export function markDone(db: Database, name: string, fingerprint: string, checkpoint: object = {}): void {
  db.prepare(
    `INSERT INTO stages (name, state, fingerprint, checkpoint, updated_at) VALUES (?, 'done', ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET state = 'done', fingerprint = excluded.fingerprint,
       checkpoint = excluded.checkpoint, updated_at = excluded.updated_at`,
  ).run(name, fingerprint, JSON.stringify(checkpoint), new Date().toISOString());
}

export function forgetStage(db: Database, name: string): void {
  db.prepare('DELETE FROM stages WHERE name = ?').run(name);
}

export function getMeta(db: Database, key: string): string | undefined {
  return db.prepare('SELECT value FROM meta WHERE key = ?').get(key)?.value;
}

export function setMeta(db: Database, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
    .run(key, value);
}
