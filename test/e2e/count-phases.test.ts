/**
 * The count stage killed in each of its phases (README "Counting at scale") resumes to exactly the
 * uninterrupted result. The kills are aimed with crash points (lib/crash.ts: LMPIPE_CRASH_AT makes
 * the process SIGKILL itself the n-th time it passes one), so each lands where the test says, and
 * the test checks the checkpoint's phase after each: after a shard is merged (before its commit),
 * inside a run's file (spill), inside a partition's file (reduce), while an order's file is written
 * and inside the transaction that copies it into the run database (write). The child
 * (test/helpers/count-child.ts) runs with a memory budget small enough for dozens of partitions.
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countStage } from '../../stages/count/index.ts';
import { planShards } from '../../stages/ingest/index.ts';
import { vocabStage } from '../../stages/vocab.ts';
import { openRunDatabase } from '../../storage/schema.ts';
import { loadStage } from '../../storage/stages.ts';
import { childSettings, drain, dumpTables, random, randomText, stageContext } from '../oracles/count-oracle.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const child = fileURLToPath(new URL('../helpers/count-child.ts', import.meta.url));

interface Kill {
  /** The crash point (lib/crash.ts) to die at: "phase:n", or none to run to the end. */
  crashAt?: string;
  workers: number;
  /** Commit this often (ms) instead of after every shard: the budget then commits before merges. */
  checkpointMs?: number;
}

/** Runs the child until it finishes or dies at its crash point. */
function runChild(dir: string, inputs: string[], kill: Kill): Promise<{ killed: boolean; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const process_ = spawn(process.execPath, ['--import', 'tsx', child, dir, String(kill.workers), ...inputs], {
      cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LMPIPE_CRASH_AT: kill.crashAt ?? '', COUNT_CHILD_CHECKPOINT_MS: String(kill.checkpointMs ?? 0) },
    });
    const lines: string[] = [];
    let stderr = '';
    process_.stdout.setEncoding('utf8').on('data', (text: string) => lines.push(...text.split('\n').filter(Boolean)));
    process_.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    process_.on('error', reject);
    process_.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' || code === 0) resolve({ killed: signal === 'SIGKILL', lines });
      else reject(new Error(`count-child exited with ${code}: ${stderr}`));
    });
  });
}

/** The uninterrupted run of the count and vocab stages on `inputs` (1 worker), and its shard count. */
async function uninterrupted(dir: string, inputs: string[]) {
  const reference = stageContext(join(dir, 'reference'), { ...childSettings, reserved: [...childSettings.reserved], input: inputs, workers: 1 });
  await drain(countStage.run(reference));
  await drain(vocabStage.run(reference));
  const shards = (await planShards(inputs, { shardBytes: Math.round(childSettings.shardMb * 2 ** 20) })).length;
  return { reference, shards };
}

/** Runs the child to the end on `run` and checks that it gives exactly the uninterrupted result. */
async function finishesAsUninterrupted(t: Test, run: string, inputs: string[], kill: Kill, reference: ReturnType<typeof stageContext>): Promise<void> {
  const last = await runChild(run, inputs, kill);
  t.same(last.lines.at(-1), 'finished');
  const db = openRunDatabase(join(run, 'lmpipe.sqlite'));
  t.equal(dumpTables(db), dumpTables(reference.db), `${kill.workers} worker(s): tables equal the uninterrupted run`);
  t.ok(readFileSync(join(run, 'tokens.bin')).equals(readFileSync(join(reference.dir, 'tokens.bin'))), 'tokens.bin is identical');
  t.notOk(existsSync(join(run, 'count-runs')), 'the runs are deleted');
  db.close();
}

t.test('count killed with SIGKILL in each phase (count, spill, reduce, write) resumes to the uninterrupted result', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-phases-'));
  const next = random(77);
  const inputs = ['a.txt', 'b.jsonl'].map((name) => join(dir, name));
  writeFileSync(inputs[0], randomText(next, 3000));
  writeFileSync(inputs[1], Array.from({ length: 10 }, () => JSON.stringify({ text: randomText(next, 30) })).join('\n'));
  const { reference, shards } = await uninterrupted(dir, inputs);

  for (const workers of [1, 2]) {
    const run = join(dir, `run-${workers}`);
    const pick = (below: number) => 1 + Math.floor(next() * below);
    // Crash points: after a shard is merged (before its commit), inside a run's file (before the
    // rename), inside a partition's file, while a table's file is written, inside the transaction
    // that copies it into the run database (the first, then the second: a resume then copies
    // what is built and builds the rest). Each process counts its own.
    const kills = [`count:${pick(shards / 3)}`, `spill:${pick(shards / 3)}`, `reduce:${pick(8)}`, 'write:1', 'copy:1', 'copy:2'];
    for (const crashAt of kills) {
      const { killed, lines } = await runChild(run, inputs, { crashAt, workers });
      if (!killed) t.comment(lines.slice(-5).join(' | '));
      const phase = crashAt.split(':')[0];
      const db = openRunDatabase(join(run, 'lmpipe.sqlite'));
      const record = loadStage<{ phase: string; shardsDone: number; reduced: number[]; copied: number[] }>(db, 'count');
      db.close();
      t.ok(killed, `${workers} worker(s), ${crashAt}: killed`);
      const left = existsSync(join(run, 'count-runs')) ? readdirSync(join(run, 'count-runs')).filter((name) => name.endsWith('.tmp')) : [];
      t.equal(record?.state, 'running');
      const expected = { count: 'count', spill: 'count', reduce: 'reduce', write: 'write', copy: 'write' }[phase];
      t.equal(record?.checkpoint.phase, expected, `${crashAt}: the kill landed in the ${expected} phase`);
      if (phase !== 'count' && phase !== 'copy') t.ok(left.length >= 1, `${crashAt}: a half-written file was left behind`);
      t.comment(`${crashAt}: ${record?.checkpoint.shardsDone} shards, ${record?.checkpoint.reduced.length} partitions, tables ${record?.checkpoint.copied} copied`);
    }
    await finishesAsUninterrupted(t, run, inputs, { workers }, reference);
  }
  reference.close();
});

t.test('count killed just after a commit made before a merge (the pending counts\' share full), or after a merge, resumes to the uninterrupted result', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-flush-'));
  const next = random(78);
  const inputs = [join(dir, 'a.txt')];
  writeFileSync(inputs[0], randomText(next, 2000));
  const { reference, shards } = await uninterrupted(dir, inputs);
  for (const workers of [1, 2]) {
    const run = join(dir, `run-${workers}`);
    const pick = (below: number) => 2 + Math.floor(next() * below);
    const checkpointMs = 3_600_000;
    const committed: number[] = [];
    for (const crashAt of [`flush:${pick(shards / 3)}`, `count:${pick(shards / 3)}`]) {
      const { killed } = await runChild(run, inputs, { crashAt, workers, checkpointMs });
      t.ok(killed, `${workers} worker(s), ${crashAt}: killed`);
      const db = openRunDatabase(join(run, 'lmpipe.sqlite'));
      committed.push(loadStage<{ shardsDone: number }>(db, 'count')?.checkpoint.shardsDone ?? 0);
      db.close();
    }
    t.ok(committed[0] >= 2 && committed[1] > committed[0], `each kill came after a commit of its own (${committed.join(', ')} shards committed, an hour between timed commits)`);
    await finishesAsUninterrupted(t, run, inputs, { workers, checkpointMs }, reference);
  }
  reference.close();
});
