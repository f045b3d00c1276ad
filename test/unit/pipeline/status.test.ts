import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeNatsStatus, describeStatus, type NatsStatus } from '../../../pipeline/status.ts';
import { openRunDatabase } from '../../../storage/schema.ts';
import { runPaths } from '../../../storage/run-paths.ts';
import { markDone, saveCheckpoint } from '../../../storage/stages.ts';

const status: NatsStatus = {
  updatedAt: '2026-12-02T02:00:00.000Z',
  run: 'abc',
  workers: [
    { id: 'a', host: 'h1', runtime: 'node', busy: 1, done: 3 },
    { id: 'b', host: 'h2', runtime: 'deno', busy: 0, done: 2 },
    { id: 'c', host: 'h2', runtime: 'node', busy: 1, done: 4 },
  ],
  jobs: { pending: 4, running: 2, done: 10, total: 16 },
};

t.test('describeNatsStatus() counts the workers by runtime and the jobs by state', async (t) => {
  t.equal(describeNatsStatus(status), 'nats: 3 workers (2 node, 1 deno); jobs 4 pending, 2 running, 10 done of 16');
  t.equal(describeNatsStatus({ ...status, workers: [] }), 'nats: 0 workers; jobs 4 pending, 2 running, 10 done of 16');
  t.equal(describeNatsStatus({ ...status, jobs: { ...status.jobs, kind: 'reduce' } }), 'nats: 3 workers (2 node, 1 deno); reduce jobs 4 pending, 2 running, 10 done of 16');
});

t.test('describeStatus() shows a count on NATS workers while it runs, and not once it is done', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-status-'));
  const paths = runPaths(dir);
  const db = openRunDatabase(paths.database);
  saveCheckpoint(db, 'count', 'f', { shardsDone: 6 });
  writeFileSync(paths.natsStatus, JSON.stringify(status));
  t.match(describeStatus(dir), /read\+tokenize\+count\s+partly done.*\n\s+nats: 3 workers \(2 node, 1 deno\); jobs 4 pending, 2 running, 10 done of 16 {2}\(at 2026-12-02T02:00:00\.000Z\)/);
  markDone(db, 'count', 'f');
  db.close();
  t.notMatch(describeStatus(dir), /nats:/);
});
