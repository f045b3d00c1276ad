/**
 * The count and vocab stages, run as users run them (scripts/run-pipeline.ts --until vocab) and
 * killed with SIGKILL while counting, resume to exactly the uninterrupted result: every file and
 * table of the run directory (test/helpers/run-dump.ts).
 *
 * The runs commit on the real rhythm, by time (--checkpoint-secs 0.01, not after every shard), so a
 * kill loses the shards merged since the last commit and the resume must redo exactly those. Each
 * kill is aimed at a count progress event (one per merged shard), so it lands while counting; the
 * test checks that every kill landed inside the count stage, and two of them inside one file.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planShards } from '../../stages/ingest/index.ts';
import { openRunDatabase } from '../../storage/schema.ts';
import { loadStage } from '../../storage/stages.ts';
import { childSettings, random, randomText } from '../oracles/count-oracle.ts';
import { dumpRun } from '../helpers/run-dump.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const command = (inputs: string[], out: string, workers: number) => ['--import', 'tsx', join(root, 'scripts/run-pipeline.ts'),
  '--input', ...inputs, '--out', out, '--until', 'vocab', '--json', '--checkpoint-secs', '0.01', '--workers', String(workers),
  '--tokenizer', childSettings.tokenizer, '--order', String(childSettings.order), '--shard-mb', String(childSettings.shardMb),
  '--reserved', ...childSettings.reserved, '--min-freq', String(childSettings.minFreq)];

interface Kill {
  /** SIGKILL after this many count progress events (the first comes before any shard) ... */
  afterEvents: number;
  /** ... and this many ms more: the run goes on, so the kill lands mid-shard, mid-commit, anywhere. */
  delayMs: number;
  workers: number;
}

/** Runs the command to the end, or until the kill; resolves to whether it was killed and the count events it sent. */
function run(inputs: string[], out: string, workers: number, kill?: Kill): Promise<{ killed: boolean; events: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command(inputs, out, workers), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let events = 0;
    let buffer = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      const lines = (buffer + text).split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line);
        if (event.type === 'progress' && event.stage === 'count' && ++events === kill?.afterEvents) {
          setTimeout(() => child.kill('SIGKILL'), kill.delayMs);
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' || code === 0) resolve({ killed: signal === 'SIGKILL', events });
      else reject(new Error(`run-pipeline exited with ${code}: ${stderr}`));
    });
  });
}

t.test('count and vocab killed with SIGKILL while counting resume to the uninterrupted result', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-resume-'));
  const next = random(2024);
  const inputs = ['a.txt', 'b.txt', 'c.jsonl'].map((name) => join(dir, name));
  writeFileSync(inputs[0], randomText(next, 5000));
  writeFileSync(inputs[1], randomText(next, 800));
  writeFileSync(inputs[2], Array.from({ length: 20 }, () => JSON.stringify({ text: randomText(next, 25) })).join('\n'));
  const reference = join(dir, 'reference');
  await run(inputs, reference, 1);

  const shards = await planShards(inputs, { shardBytes: Math.round(childSettings.shardMb * 2 ** 20) });
  const fileOf = (shardsDone: number) => shards[Math.min(shardsDone, shards.length - 1)].path;
  t.ok(shards.filter((shard) => shard.path === inputs[0]).length > 40, 'a.txt is cut in many shards');

  const out = join(dir, 'run');
  const kills: Kill[] = [
    { afterEvents: 12, delayMs: Math.floor(Math.random() * 20), workers: 2 },
    { afterEvents: 12, delayMs: Math.floor(Math.random() * 20), workers: 1 },
    { afterEvents: 2 + Math.floor(Math.random() * 4), delayMs: Math.floor(Math.random() * 10), workers: 2 },
    { afterEvents: 2 + Math.floor(Math.random() * 15), delayMs: Math.floor(Math.random() * 30), workers: 1 },
    { afterEvents: 2 + Math.floor(Math.random() * 8), delayMs: Math.floor(Math.random() * 30), workers: 2 },
  ];
  const committed: number[] = [];
  let landed = 0;
  for (const kill of kills) {
    const { killed, events } = await run(inputs, out, kill.workers, kill);
    const db = openRunDatabase(join(out, 'lmpipe.sqlite'), { readonly: true });
    const record = loadStage<{ shardsDone?: number }>(db, 'count');
    db.close();
    committed.push(record?.checkpoint.shardsDone ?? 0);
    // Inside counting: after this run merged a shard (its second event), before the stage was done.
    if (killed && events >= 2 && record?.state !== 'done') landed++;
    t.comment(`kill ${JSON.stringify(kill)}: ${killed ? 'killed' : 'finished first'}, count ${record?.state ?? 'not started'} with ${committed.at(-1)} of ${shards.length} shards committed`);
  }
  t.equal(landed, kills.length, 'every kill landed inside the count stage');
  t.ok(committed[0] > 0 && committed[1] > committed[0] && fileOf(committed[1]) === inputs[0],
    `the first two kills both landed inside a.txt, after commits (${committed[0]}, then ${committed[1]} of its shards committed)`);

  t.equal((await run(inputs, out, 2)).killed, false, 'the last run finishes');
  const db = openRunDatabase(join(out, 'lmpipe.sqlite'), { readonly: true });
  t.equal(loadStage(db, 'vocab')?.state, 'done', 'vocab is done');
  t.ok(Number(db.prepare('SELECT count(*) AS n FROM sentence3').get()?.n) > 100, 'sentence n-grams (Kneser-Ney) were counted, and survived the kills');
  t.ok(Number(db.prepare('SELECT count(*) AS n FROM vocab').get()?.n) > 3, 'a vocabulary was written');
  db.close();
  t.same(dumpRun(out), dumpRun(reference), 'every file and table (tokens.bin, tokens, n-grams, vocab, stages) equals the uninterrupted run');
});
