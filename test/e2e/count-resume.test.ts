import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
  /** Kill after this many progress lines (count events) ... */
  afterEvents?: number;
  /** ... then wait this long (the child runs on: the kill lands mid-shard, mid-commit, anywhere). */
  delayMs?: number;
  /** Or kill this many ms after the start. */
  afterMs?: number;
  workers: number;
}

/** Runs the child until it finishes or until the kill point, then SIGKILLs it. */
function runChild(dir: string, inputs: string[], kill: Kill): Promise<{ killed: boolean; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const process_ = spawn(process.execPath, ['--import', 'tsx', child, dir, String(kill.workers), ...inputs], {
      cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let stderr = '';
    let killed = false;
    let aimed = false;
    const killNow = () => {
      killed = process_.kill('SIGKILL');
    };
    if (kill.afterMs !== undefined) setTimeout(killNow, kill.afterMs);
    process_.stdout.setEncoding('utf8').on('data', (text: string) => {
      lines.push(...text.split('\n').filter(Boolean));
      const events = lines.filter((line) => line.startsWith('count ')).length;
      if (kill.afterEvents !== undefined && events >= kill.afterEvents && !aimed) {
        aimed = true;
        setTimeout(killNow, kill.delayMs ?? 0);
      }
    });
    process_.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    process_.on('error', reject);
    process_.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' || code === 0) resolve({ killed: signal === 'SIGKILL', lines });
      else reject(new Error(`count-child exited with ${code}: ${stderr}`));
    });
  });
}

t.test('count and vocab killed with SIGKILL at random points resume to the uninterrupted result', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-resume-'));
  const next = random(2024);
  const inputs = ['a.txt', 'b.txt', 'c.jsonl'].map((name) => join(dir, name));
  writeFileSync(inputs[0], randomText(next, 5000));
  writeFileSync(inputs[1], randomText(next, 800));
  writeFileSync(inputs[2], Array.from({ length: 20 }, () => JSON.stringify({ text: randomText(next, 25) })).join('\n'));

  const reference = stageContext(join(dir, 'reference'), { ...childSettings, reserved: [...childSettings.reserved], input: inputs, workers: 1 });
  await drain(countStage.run(reference));
  await drain(vocabStage.run(reference));

  const shards = await planShards(inputs, { shardBytes: Math.round(childSettings.shardMb * 2 ** 20) });
  const fileOf = (shardsDone: number) => shards[Math.min(shardsDone, shards.length - 1)].path;
  t.ok(shards.filter((shard) => shard.path === inputs[0]).length > 20, 'a.txt is cut in many shards');

  const run = join(dir, 'run');
  const kills: Kill[] = [
    { afterEvents: 3, delayMs: Math.floor(Math.random() * 20), workers: 2 },
    { afterEvents: 4, delayMs: Math.floor(Math.random() * 20), workers: 1 },
    { afterMs: Math.floor(Math.random() * 300), workers: 2 },
    { afterEvents: 2 + Math.floor(Math.random() * 15), delayMs: Math.floor(Math.random() * 30), workers: 1 },
    { afterEvents: 2 + Math.floor(Math.random() * 8), delayMs: Math.floor(Math.random() * 30), workers: 2 },
  ];
  const checkpoints: number[] = [];
  for (const kill of kills) {
    const { killed } = await runChild(run, inputs, kill);
    const db = openRunDatabase(join(run, 'lmpipe.sqlite'));
    const record = loadStage<{ shardsDone?: number }>(db, 'count');
    db.close();
    checkpoints.push(record?.checkpoint.shardsDone ?? 0);
    t.comment(`kill ${JSON.stringify(kill)}: ${killed ? 'killed' : 'finished first'} with ${checkpoints.at(-1)} shards committed`);
    if (kill.afterEvents !== undefined) t.ok(killed, 'killed while counting');
  }
  t.ok(checkpoints[0] > 0 && checkpoints[1] > checkpoints[0] && fileOf(checkpoints[1]) === inputs[0],
    `the first two kills both landed inside a.txt (${checkpoints[0]}, then ${checkpoints[1]} of its shards done)`);

  const last = await runChild(run, inputs, { workers: 2 });
  t.same(last.lines.at(-1), 'finished');
  const db = openRunDatabase(join(run, 'lmpipe.sqlite'));
  t.equal(loadStage(db, 'count')?.state, 'done');
  t.equal(loadStage(db, 'vocab')?.state, 'done');
  t.equal(dumpTables(db), dumpTables(reference.db), 'tokens, n-gram, sentence n-gram and vocab tables equal the uninterrupted run');
  t.ok(Number(db.prepare('SELECT count(*) AS n FROM sentence3').get()?.n) > 100, 'sentence n-grams (Kneser-Ney) were counted, and survived the kills');
  t.ok(readFileSync(join(run, 'tokens.bin')).equals(readFileSync(join(reference.dir, 'tokens.bin'))), 'tokens.bin is identical');
  t.ok(Number(db.prepare('SELECT count(*) AS n FROM vocab').get()?.n) > 3, 'a vocabulary was written');
  db.close();
  reference.close();
});
