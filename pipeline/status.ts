/**
 * `run-pipeline status`: each stage's state in a run directory, read without taking the lock. A
 * count on NATS workers also keeps DIR/nats-status.json (workers connected, jobs pending, running and
 * done), rewritten every few seconds by the coordinator and deleted when the count is done.
 */
import { existsSync, readFileSync } from 'node:fs';
import { runPaths } from '../storage/run-paths.ts';
import { openRunDatabase } from '../storage/schema.ts';
import { loadStage } from '../storage/stages.ts';
import { STAGE_ORDER } from './config.ts';

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
  /** count, while NATS workers count it. */
  nats?: NatsStatus;
}

/** What DIR/nats-status.json holds. */
export interface NatsStatus {
  updatedAt: string;
  run: string;
  workers: Array<{ id: string; host: string; runtime: string; busy: number; done: number }>;
  /** The phase's jobs: shards to count, then partitions to reduce (absent in files written before reduce jobs). */
  jobs: { kind?: 'count' | 'reduce'; pending: number; running: number; done: number; total: number };
}

/** "nats: 3 workers (2 node, 1 deno); count jobs 4 pending, 2 running, 10 done of 16" */
export function describeNatsStatus(status: NatsStatus): string {
  const runtimes = new Map<string, number>();
  for (const worker of status.workers) runtimes.set(worker.runtime, (runtimes.get(worker.runtime) ?? 0) + 1);
  const kinds = [...runtimes].map(([runtime, count]) => `${count} ${runtime}`).join(', ');
  const { kind, pending, running, done, total } = status.jobs;
  return `nats: ${status.workers.length} workers${kinds ? ` (${kinds})` : ''}; ${kind ? `${kind} ` : ''}jobs ${pending} pending, ${running} running, ${done} done of ${total}`;
}

/** Each stage's state in run directory `dir`; undefined when nothing has run there. */
export function readStatus(dir: string): StageStatus[] | undefined {
  const path = runPaths(dir).database;
  if (!existsSync(path)) return undefined;
  const db = openRunDatabase(path, { readonly: true });
  try {
    return STAGE_ORDER.map((stage) => {
      const record = loadStage(db, stage);
      const natsStatus = runPaths(dir).natsStatus;
      const nats = stage === 'count' && record?.state !== 'done' && existsSync(natsStatus)
        ? { nats: JSON.parse(readFileSync(natsStatus, 'utf8')) as NatsStatus } : {};
      if (!record) return { stage, state: 'not started', ...nats };
      return { stage, state: record.state === 'done' ? 'done' : 'partly done', updatedAt: record.updatedAt, checkpoint: record.checkpoint, ...nats };
    });
  } finally {
    db.close();
  }
}

export function describeStatus(dir: string): string {
  const stages = readStatus(dir);
  if (!stages) return `${dir}: no run yet (no ${runPaths(dir).database})`;
  const lines = [`${dir}:`];
  for (const { stage, state, updatedAt, checkpoint, nats } of stages) {
    const label = stage === 'count' ? 'read+tokenize+count' : stage;
    lines.push(`  ${label.padEnd(20)} ${state}${updatedAt ? `  ${updatedAt}  ${brief(checkpoint!)}` : ''}`);
    if (nats) lines.push(`  ${''.padEnd(20)} ${describeNatsStatus(nats)}  (at ${nats.updatedAt})`);
  }
  return lines.join('\n');
}
