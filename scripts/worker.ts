/**
 * lmpipe worker: counts shards and reduces partitions for pipelines run with `--nats`, on this machine.
 *
 *   npm run worker -- --nats nats://host:4222                 # one job per core, until Ctrl-C
 *   npx deno task worker --nats nats://host:4222 --workers 2
 *   npm run worker -- --nats nats://127.0.0.1:4222 --exit-when-idle 10
 *
 * It serves every lmpipe run on the server, one after another, and stays up for the next until
 * SIGTERM or Ctrl-C (it finishes the job in hand first; a second Ctrl-C quits at once, and the job
 * goes to another worker after the ack wait). `--workers N` runs N worker processes (this one and
 * N-1 children): counting is CPU-bound, one job per core. The NATS flags are the pipeline's
 * settings (pipeline/config.ts), with the same docs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { flagLines, parseCommandLine, type FlagSpec } from '../pipeline/args.ts';
import { SETTINGS } from '../pipeline/config.ts';
import { runMain } from '../pipeline/run-main.ts';
import { connectNats, serveJobs, type NatsSettings } from '../stages/count/nats/index.ts';

const NATS_KEYS = ['nats', 'natsCreds', 'natsCa', 'natsCert', 'natsKey'] as const;

const FLAGS: Record<string, FlagSpec> = {
  ...Object.fromEntries(NATS_KEYS.map((key) => [key, { kind: 'string', help: SETTINGS[key].doc, default: SETTINGS[key].default } satisfies FlagSpec])),
  workers: { kind: 'integer', min: 1, help: 'Worker processes on this machine, one job each (default: one per core)', default: availableParallelism() },
  exitWhenIdle: { kind: 'number', min: 0, value: 'S', help: 'Exit after this many seconds without a job; 0 runs until SIGTERM or Ctrl-C', default: 0 },
  quiet: { kind: 'boolean', help: 'Print only errors', default: false },
};

const USAGE = `Usage: npm run worker -- --nats URL [--workers N] [--exit-when-idle S] [credentials]

Pulls count and reduce jobs from pipelines run with --nats URL and runs them, one job per worker process,
until SIGTERM or Ctrl-C. See the README, "Counting on several machines".

${flagLines(FLAGS, { kebab: true }).join('\n')}`;

/** N-1 more worker processes: the same command with --workers 1. */
function startChildren(count: number): ChildProcess[] {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
  const args = process.argv.slice(2).filter((arg, i, all) => !arg.startsWith('--workers') && all[i - 1] !== '--workers');
  const command = isDeno ? ['run', '-A', process.argv[1], ...args, '--workers', '1'] : [...process.execArgv, process.argv[1], ...args, '--workers', '1'];
  return Array.from({ length: count }, () => spawn(process.execPath, command, { stdio: 'inherit' }));
}

runMain('worker', async ({ signal }) => {
  const { flags, help } = parseCommandLine(process.argv.slice(2), { flags: FLAGS, kebab: true });
  if (help) return void process.stdout.write(`${USAGE}\n`);
  if (!flags.nats) throw new TypeError('Expected `--nats URL`, for example --nats nats://127.0.0.1:4222');
  const settings = Object.fromEntries(NATS_KEYS.map((key) => [key, flags[key]])) as unknown as NatsSettings;
  const log = flags.quiet ? () => {} : (message: string) => process.stderr.write(`worker: ${message}\n`);
  const children = startChildren((flags.workers as number) - 1);
  signal.addEventListener('abort', () => children.forEach((child) => child.kill('SIGTERM')));
  const nc = await connectNats(settings, 'lmpipe worker');
  log(`connected to ${nc.getServer()}; waiting for jobs`);
  const done = await serveJobs(nc, { signal, exitWhenIdleMs: (flags.exitWhenIdle as number) * 1000, log });
  await nc.close();
  await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
  log(`stopped after ${done} jobs`);
});
