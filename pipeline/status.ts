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

export interface StageStatus {
  stage: string;
  state: 'not started' | 'partly done' | 'done';
  updatedAt?: string;
  checkpoint?: Record<string, unknown>;
}

/** Each stage's state in run directory `dir`; undefined when nothing has run there. */
export function readStatus(dir: string): StageStatus[] | undefined {
  const path = databasePath(dir);
  if (!existsSync(path)) return undefined;
  const db = openRunDatabase(path, { readonly: true });
  try {
    return STAGE_ORDER.map((stage) => {
      const record = loadStage(db, stage);
      if (!record) return { stage, state: 'not started' };
      return { stage, state: record.state === 'done' ? 'done' : 'partly done', updatedAt: record.updatedAt, checkpoint: record.checkpoint };
    });
  } finally {
    db.close();
  }
}

export function describeStatus(dir: string): string {
  const stages = readStatus(dir);
  if (!stages) return `${dir}: no run yet (no ${databasePath(dir)})`;
  const lines = [`${dir}:`];
  for (const { stage, state, updatedAt, checkpoint } of stages) {
    const label = stage === 'count' ? 'read+tokenize+count' : stage;
    lines.push(`  ${label.padEnd(20)} ${state}${updatedAt ? `  ${updatedAt}  ${brief(checkpoint!)}` : ''}`);
  }
  return lines.join('\n');
}
