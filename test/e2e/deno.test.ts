/**
 * lmpipe under Deno, beyond the smoke suite: a pool worker (a node:worker_threads Worker) that
 * exits, throws or leaves a rejection unhandled mid-job is noticed, replaced and its shard retried,
 * and fails the pool the second time; and the whole pipeline under Deno, killed with SIGKILL while
 * counting and while training (epochs of many steps) and resumed under Deno, ends identical to an
 * uninterrupted run under Node: every file and table (test/helpers/run-dump.ts), trained weights
 * included.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openRunDatabase } from '../../storage/schema.ts';
import { writeCorpus } from '../helpers/corpus-fixture.ts';
import { dumpRun } from '../helpers/run-dump.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const deno = join(root, 'node_modules', '.bin', 'deno');
const skip = !existsSync(deno) && `deno is not installed at ${deno}`;
const denoRun = (args: string[]) => ['run', '-A', '--config', join(root, 'deno.json'), ...args];
const tmp = () => mkdtempSync(join(tmpdir(), 'lmpipe-deno-'));

t.test('under Deno, a worker that exits, throws or leaves a rejection unhandled mid-job is noticed: retried once, then the pool fails', { skip }, async (t) => {
  // The timeout only turns a hang (a death nobody noticed) into a failure; the run takes seconds.
  const run = spawnSync(deno, denoRun([join(root, 'test/helpers/workers-deno.ts'), join(tmp(), 'marker')]), { cwd: root, encoding: 'utf8', timeout: 120_000 });
  t.equal(run.status, 0, `the pool returns or fails, it does not hang (${run.signal ?? run.stderr.slice(-500)})`);
  const outcomes = JSON.parse(run.stdout.trim().split('\n').pop()!);
  t.same(outcomes['exit-once'].indices, [0, 1, 2, 3, 4, 5], 'exited once: every shard counted once, in order');
  t.match(outcomes['exit-once'].log, [/^A count worker died on shard 2 of \/corpus\/a\.txt \(it exited with code 3\); retrying it$/], 'the death is logged and the shard retried');
  const died = (at: number, why: string) => ({
    name: 'LmpipeError', code: 'INTERNAL', file: '/corpus/a.txt', position: `bytes ${at * 100}-${at * 100 + 100}`,
    message: `A count worker died twice on shard ${at} (${why})`,
  });
  t.same(outcomes.exit.error, died(3, 'it exited with code 3'), 'Deno.exit() twice: the pool fails naming the shard');
  t.same(outcomes.exit.indices, [0, 1, 2], 'the shards before it were yielded');
  t.same(outcomes.uncaught.error, died(1, 'it threw boom'), 'an uncaught exception twice: the same');
  t.same(outcomes.reject.error, died(1, 'it threw rejected'), 'an unhandled rejection twice: the same');
  t.same(outcomes.transfer.payloads, [0, 1, 2, 3, 4, 5], 'transferred results arrive whole, in order');
  t.same(outcomes.transfer.received.sort(), [1024, 2048], 'each recycled buffer reached a worker once');
  t.ok(outcomes.transfer.detached, 'transferred, not copied');
});

t.test('the pipeline under Deno, killed while counting and while training, resumes to what Node computes', { skip }, async (t) => {
  const dir = tmp();
  const inputs = writeCorpus(dir, { files: 2, lines: 150 });
  const flags = (out: string) => ['--input', ...inputs, '--out', out, '--tokenizer', 'd2l-char', '--order', '3', '--workers', '2',
    '--shard-mb', '0.002', '--checkpoint-secs', '0', '--max-tokens', '0', '--hidden', '16', '--epochs', '2', '--batch', '4', '--steps', '8',
    '--checkpoint-every', '10', '--backend', 'cpu', '--prefix', 'the time', '--sample-length', '10', '--json'];
  const node = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/run-pipeline.ts'), ...flags(join(dir, 'node'))], { cwd: root, encoding: 'utf8' });
  t.equal(node.status, 0, 'the uninterrupted run under Node finishes');

  const out = join(dir, 'deno');
  /** Runs under Deno; SIGKILLs it at the `afterEvents`-th progress event of `stage`; resolves to the first stage not done. */
  const runDeno = (kill?: { stage: string; afterEvents: number }) => new Promise<string | undefined>((resolve, reject) => {
    const child = spawn(deno, denoRun([join(root, 'scripts/run-pipeline.ts'), ...flags(out)]), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let events = 0;
    let buffer = '';
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      const lines = (buffer + text).split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line);
        if (kill && event.type === 'progress' && event.stage === kill.stage && ++events === kill.afterEvents) child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      if (code === 0) return resolve(undefined);
      if (signal !== 'SIGKILL') return reject(new Error(`deno run failed (${code}): ${stderr}`));
      const db = openRunDatabase(join(out, 'lmpipe.sqlite'), { readonly: true });
      const done = new Set(db.prepare("SELECT name FROM stages WHERE state = 'done'").all().map((row) => row.name));
      db.close();
      resolve(['count', 'vocab', 'encode', 'train', 'sample'].find((name) => !done.has(name)));
    });
  });
  t.equal(await runDeno({ stage: 'count', afterEvents: 3 }), 'count', 'the first kill landed while counting');
  t.equal(await runDeno({ stage: 'train', afterEvents: 40 }), 'train', 'the second kill landed while training');
  t.equal(await runDeno(), undefined, 'the resumed run under Deno finishes');
  // Node's and Deno's V8 may differ in the last bit of a logarithm or exponential (measured: one
  // ulp in a Kneser-Ney perplexity), so the n-gram vs RNN table is compared to 12 digits.
  const rounded = (dump: ReturnType<typeof dumpRun>) => {
    const rows = (dump.tables as Record<string, unknown>).evaluations as Record<string, unknown>[];
    for (const row of rows) for (const key of ['perplexity', 'perplexity_with_oov']) row[key] = Number((row[key] as number).toPrecision(12));
    return dump;
  };
  t.same(rounded(dumpRun(out)), rounded(dumpRun(join(dir, 'node'))), 'every file and table equals the uninterrupted run under Node');
});
