/** `run-pipeline status`: each stage's state in a run directory, read without taking the lock. */
import { existsSync } from 'node:fs';
import { openRunDatabase } from '../storage/schema.ts';
import { loadStage } from '../storage/stages.ts';
import { STAGE_ORDER } from './config.ts';
import { databasePath } from './runner.ts';

/** A checkpoint shortened for one line: long arrays and nested objects are elided. */
function brief(checkpoint: Record<string, unknown>): string {
  const parts = Object.entries(checkpoint)
    .filter(([, value]) => value === null || typeof value !== 'object')
    .slice(0, 6)
    .map(([key, value]) => `${key}=${typeof value === 'number' ? value.toLocaleString('en-US') : String(value)}`);
  return parts.join(' ');
}

export function describeStatus(dir: string): string {
  const path = databasePath(dir);
  if (!existsSync(path)) return `${dir}: no run yet (no ${path})`;
  const db = openRunDatabase(path, { readonly: true });
  try {
    const lines = [`${dir}:`];
    for (const name of STAGE_ORDER) {
      const record = loadStage(db, name);
      const label = name === 'count' ? 'read+tokenize+count' : name;
      if (!record) lines.push(`  ${label.padEnd(20)} not started`);
      else lines.push(`  ${label.padEnd(20)} ${record.state === 'done' ? 'done' : 'partly done'}  ${record.updatedAt}  ${brief(record.checkpoint)}`);
    }
    return lines.join('\n');
  } finally {
    db.close();
  }
}
