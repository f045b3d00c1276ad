/**
 * The whole pipeline (scripts/run-pipeline.ts, as users run it) killed with SIGKILL inside every
 * one of its stages, resumed each time with the same command, ends identical to an uninterrupted
 * run: every file of the run directory and every table (test/helpers/run-dump.ts says exactly what
 * is compared and the few things that are not).
 *
 * Each kill is aimed at a random moment inside one stage: a random fraction of how long that stage
 * took in the uninterrupted run, after its start event. Whether it landed there is read afterwards
 * from the `stages` table (the first stage not done), and the test asserts how many kills landed in
 * each stage. vocab, encode and sample last tens of milliseconds here (a vocabulary of thousands of
 * made-up words, capped at 100 for training), so a kill can be aimed inside them; one that misses
 * (the stage ended first) is retried with `--from STAGE`, which redoes that stage.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCorpus } from '../helpers/corpus-fixture.ts';
import { dumpRun } from '../helpers/run-dump.ts';
import { openRunDatabase } from '../../storage/schema.ts';

const STAGES = ['count', 'vocab', 'encode', 'train', 'sample'] as const;
type StageName = (typeof STAGES)[number];
/** Kills that must land inside each stage. */
const WANTED: Record<StageName, number> = { count: 2, vocab: 1, encode: 1, train: 3, sample: 1 };

/** The stage a killed run was in: the first one not done. */
function stageReached(out: string): StageName | 'end' {
  const db = openRunDatabase(join(out, 'lmpipe.sqlite'), { readonly: true });
  const done = new Set(db.prepare("SELECT name FROM stages WHERE state = 'done'").all().map((row) => row.name));
  db.close();
  return STAGES.find((name) => !done.has(name)) ?? 'end';
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (inputs: string[], out: string) => ['--import', 'tsx', join(root, 'scripts/run-pipeline.ts'),
  '--input', ...inputs, '--out', out, '--tokenizer', 'd2l-word', '--order', '3', '--workers', '2', '--shard-mb', '0.004',
  '--max-vocab', '100', '--max-tokens', '2400', '--hidden', '24', '--epochs', '4', '--batch', '4', '--steps', '10',
  '--checkpoint-every', '7', '--checkpoint-secs', '0', '--backend', 'cpu', '--prefix', 'the time', '--sample-length', '20', '--json'];

interface Attempt {
  /** The stage the run was killed in (the first not done), or undefined if it finished first. */
  killedIn?: StageName | 'end';
  /** Milliseconds each stage took, from its start event to its done event. */
  durations: Partial<Record<StageName, number>>;
}

/**
 * Runs the command; with `kill`, SIGKILLs it `kill.delayMs` after stage `kill.stage` starts (or
 * resumes, or is redone).
 */
function run(inputs: string[], out: string, extra: string[], kill?: { stage: StageName; delayMs: number }): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...cli(inputs, out), ...extra], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const started: Partial<Record<StageName, number>> = {};
    const durations: Partial<Record<StageName, number>> = {};
    let buffer = '';
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.on('data', (chunk) => {
      const lines = (buffer + chunk).split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line);
        if (event.type !== 'stage') continue;
        if (event.state === 'start' || event.state === 'redo') {
          started[event.stage as StageName] = Date.now();
          if (kill && event.stage === kill.stage) setTimeout(() => child.kill('SIGKILL'), kill.delayMs);
        }
        if (event.state === 'done') durations[event.stage as StageName] = Date.now() - started[event.stage as StageName]!;
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ killedIn: stageReached(out), durations });
      else if (code === 0) resolve({ durations });
      else reject(new Error(`pipeline failed (${code}): ${stderr}`));
    });
  });
}

t.test('kill -9 inside every stage, resumed with the same command, equals an uninterrupted run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-e2e-'));
  const inputs = writeCorpus(dir, { files: 3, lines: 700, rareWords: 0.5 });
  const reference = join(dir, 'reference');
  const { durations } = await run(inputs, reference, []);
  t.comment(`uninterrupted: ${STAGES.map((stage) => `${stage} ${durations[stage]} ms`).join(', ')}`);

  const resumed = join(dir, 'resumed');
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const landed: Record<StageName | 'end', number> = { count: 0, vocab: 0, encode: 0, train: 0, sample: 0, end: 0 };
  const attempts: string[] = [];
  for (const stage of STAGES) {
    for (let attempt = 0; landed[stage] < WANTED[stage] && attempt < WANTED[stage] + 4; attempt++) {
      // A stage already done (an earlier kill landed after it) is entered again with --from.
      const reached = attempt > 0 ? stageReached(resumed) : stage;
      const from = reached === 'end' || STAGES.indexOf(stage) < STAGES.indexOf(reached) ? ['--from', stage] : [];
      const delayMs = Math.round(random() * 0.7 * durations[stage]!);
      const { killedIn } = await run(inputs, resumed, from, { stage, delayMs });
      if (killedIn) landed[killedIn]++;
      attempts.push(`${stage} +${delayMs} ms${from.length ? ' (--from)' : ''}: ${killedIn ? `killed in ${killedIn}` : 'finished first'}`);
    }
  }
  t.comment(attempts.join('\n'));
  for (const stage of STAGES) t.ok(landed[stage] >= WANTED[stage], `${landed[stage]} kills landed inside ${stage} (wanted ${WANTED[stage]})`);
  await run(inputs, resumed, []);
  t.same(dumpRun(resumed), dumpRun(reference), 'every file and table equals the uninterrupted run');
});
