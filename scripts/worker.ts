/**
 * lmpipe worker: counts shards for pipelines run with `--nats`, on this machine.
 *
 *   npm run worker -- --nats nats://host:4222                 # one job per core, until Ctrl-C
 *   npx deno task worker --nats nats://host:4222 --workers 2
 *   npm run worker -- --nats nats://127.0.0.1:4222 --exit-when-idle 10
 *
 * It serves every lmpipe run on the server, one after another, and stays up for the next until
 * SIGTERM or Ctrl-C (it finishes the job in hand first; a second Ctrl-C quits at once, and the job
 * goes to another worker after the ack wait). `--workers N` runs N worker processes (this one and
 * N-1 children): counting is CPU-bound, one job per core.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { describeFailure, EXIT_CODES } from '../lib/errors.ts';
import { connectNats, serveJobs } from '../stages/count/nats/index.ts';

const USAGE = `Usage: npm run worker -- --nats URL [--workers N] [--exit-when-idle SECONDS] [credentials]

Pulls count jobs from pipelines run with --nats URL and runs them, one job per worker process.

  --nats URL                 nats://host:4222, nats://user:password@host:4222, nats://token@host:4222,
                             tls://host:4222; several servers of a cluster comma-separated
  --workers N                worker processes on this machine (default: one per core)
  --exit-when-idle SECONDS   exit after this long without a job (default 0: run until SIGTERM/Ctrl-C)
  --nats-creds FILE          a .creds file (JWT and nkey seed) or an nkey seed file
  --nats-ca FILE             TLS: the CA certificate that signed the server's
  --nats-cert FILE           TLS: a client certificate (with --nats-key) for servers that verify clients
  --nats-key FILE
  --quiet                    print only errors`;

function parse() {
  const { values } = parseArgs({
    options: {
      nats: { type: 'string' }, workers: { type: 'string' }, 'exit-when-idle': { type: 'string' },
      'nats-creds': { type: 'string' }, 'nats-ca': { type: 'string' }, 'nats-cert': { type: 'string' }, 'nats-key': { type: 'string' },
      quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) return undefined;
  if (!values.nats) throw new TypeError('Expected `--nats URL`, for example --nats nats://127.0.0.1:4222');
  const number = (flag: string, raw: string | undefined, fallback: number, min: number) => {
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(value) || value < min) throw new TypeError(`Expected \`--${flag}\` to be a number of at least ${min}, got \`${raw}\``);
    return value;
  };
  return {
    settings: { nats: values.nats, natsCreds: values['nats-creds'] ?? '', natsCa: values['nats-ca'] ?? '', natsCert: values['nats-cert'] ?? '', natsKey: values['nats-key'] ?? '' },
    workers: Math.floor(number('workers', values.workers, availableParallelism(), 1)),
    exitWhenIdle: number('exit-when-idle', values['exit-when-idle'], 0, 0),
    quiet: values.quiet === true,
  };
}

/** N-1 more worker processes: the same command with --workers 1. */
function startChildren(count: number): ChildProcess[] {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
  const args = process.argv.slice(2).filter((arg, i, all) => arg !== '--workers' && all[i - 1] !== '--workers');
  const command = isDeno ? ['run', '-A', process.argv[1], ...args, '--workers', '1'] : [...process.execArgv, process.argv[1], ...args, '--workers', '1'];
  return Array.from({ length: count }, () => spawn(process.execPath, command, { stdio: 'inherit' }));
}

async function main(): Promise<number> {
  const options = parse();
  if (!options) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const controller = new AbortController();
  const children = startChildren(options.workers - 1);
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(EXIT_CODES.INTERRUPTED);
    for (const child of children) child.kill('SIGTERM');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const log = options.quiet ? () => {} : (message: string) => process.stderr.write(`worker: ${message}\n`);
  const nc = await connectNats(options.settings, 'lmpipe worker');
  log(`connected to ${nc.getServer()}; waiting for jobs`);
  const done = await serveJobs(nc, { signal: controller.signal, exitWhenIdleMs: options.exitWhenIdle * 1000, log });
  await nc.close();
  await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
  log(`stopped after ${done} jobs`);
  return 0;
}

main().then((code) => process.exit(code), (error) => {
  const { line, exitCode } = describeFailure(error);
  process.stderr.write(`${line}\n`);
  process.exit(exitCode);
});
