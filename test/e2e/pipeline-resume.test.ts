/**
 * The whole pipeline killed with SIGKILL at random moments across its stages (at least 5 kills),
 * resumed each time with the same command, ends identical to an uninterrupted run: counts,
 * vocabulary, encoded corpus, every loss, the samples and the trained weights.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCorpus } from '../helpers/corpus-fixture.ts';
import { dumpRun } from '../helpers/run-dump.ts';
import { openRunDatabase } from '../../storage/schema.ts';

/** The stage a killed run was in: the first one not done. */
function stageReached(out: string): string {
  try {
    const db = openRunDatabase(join(out, 'lmpipe.sqlite'), { readonly: true });
    const done = new Set(db.prepare("SELECT name FROM stages WHERE state = 'done'").all().map((row) => row.name));
    db.close();
    return ['count', 'vocab', 'encode', 'train', 'sample'].find((name) => !done.has(name)) ?? 'end';
  } catch {
    return 'start';
  }
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (inputs: string[], out: string) => ['--import', 'tsx', join(root, 'scripts/run-pipeline.ts'),
  '--input', ...inputs, '--out', out, '--tokenizer', 'd2l-char', '--order', '4', '--workers', '2', '--shard-mb', '0.004',
  '--max-tokens', '4000', '--hidden', '24', '--epochs', '12', '--batch', '4', '--steps', '10', '--checkpoint-every', '7', '--checkpoint-secs', '0',
  '--backend', 'cpu', '--prefix', 'the time', '--sample-length', '20', '--quiet'];

/** Runs to completion; returns seconds taken. */
function runToEnd(inputs: string[], out: string): number {
  const started = Date.now();
  const run = spawnSync(process.execPath, cli(inputs, out), { cwd: root, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`pipeline failed (${run.status}): ${run.stderr}`);
  return (Date.now() - started) / 1000;
}

/**
 * Starts the run and SIGKILLs it `delay` seconds after it first reports work in stage `target`
 * (its --json events); resolves to the stage it was killed in, or undefined if it ended first.
 */
function runAndKill(inputs: string[], out: string, target: string, delay: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const args = cli(inputs, out).map((arg) => (arg === '--quiet' ? '--json' : arg));
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] });
    let current: string | undefined;
    let armed = false;
    let buffer = '';
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line);
        if (event.stage) current = event.stage;
        if (!armed && event.stage === target && (event.type === 'progress' || event.state === 'start')) {
          armed = true;
          setTimeout(() => child.kill('SIGKILL'), delay * 1000);
        }
      }
    });
    child.on('exit', (code, signal) => resolve(signal === 'SIGKILL' ? current : undefined));
  });
}

t.test('kill -9 at random moments across stages, resumed, equals an uninterrupted run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-e2e-'));
  const inputs = writeCorpus(dir, { files: 3, lines: 300 });
  const reference = join(dir, 'reference');
  const seconds = runToEnd(inputs, reference);

  const resumed = join(dir, 'resumed');
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  // Each attempt is killed at a random moment after it reaches its target stage; count commits
  // after every shard here, and train checkpoints every 7 steps, so kills land mid-stage.
  const targets = ['count', 'count', 'train', 'train', 'train', 'train', 'sample'];
  const killedIn: string[] = [];
  for (const target of targets) {
    const stage = await runAndKill(inputs, resumed, target, random() * (target === 'train' ? 0.6 : 0.1));
    if (stage) killedIn.push(stage);
  }
  t.ok(killedIn.length >= 5, `killed ${killedIn.length} times, in ${killedIn.join(', ')} (a full run takes ${seconds.toFixed(1)} s)`);
  t.ok(new Set(killedIn).size >= 2, 'the kills landed in more than one stage');
  runToEnd(inputs, resumed);
  t.same(dumpRun(resumed), dumpRun(reference));
});
