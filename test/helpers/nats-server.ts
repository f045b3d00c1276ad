/**
 * A throwaway nats-server for the NATS tests: JetStream on, a free loopback port, a temporary store
 * directory (file storage survives `restart()`), and lmpipe workers as child processes (Node or
 * Deno, the real `scripts/worker.ts`, or a test worker from test/helpers/nats-test-worker.ts).
 *
 *   const server = await startNatsServer();          // undefined when nats-server is not installed
 *   const worker = startWorker(server.url, 'deno');
 *   ...
 *   await stopAll(worker); await server.stop();
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { random, randomText } from '../oracles/count-oracle.ts';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The tap `skip` option of a test that needs nats-server: false, or why it is skipped. */
export const skipWithoutNats = (): false | string => (natsServerBinary() ? false : 'nats-server is not installed (apt-get install nats-server)');

/** Two seeded random text files (count-oracle's generator) in a fresh directory: `part0.txt`, `part1.txt`. */
export function writeInputs(seed: number, words: number): { dir: string; files: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-input-'));
  const next = random(seed);
  const files = [0, 1].map((i) => {
    const path = join(dir, `part${i}.txt`);
    writeFileSync(path, randomText(next, words));
    return path;
  });
  return { dir, files };
}

export function natsServerBinary(): string | undefined {
  for (const candidate of ['nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}: ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nats-server did not listen on ${port}: ${log()}`);
}

export interface NatsServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM) and starts it again on the same port and store. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNatsServer(extraArgs: string[] = []): Promise<NatsServer | undefined> {
  const binary = natsServerBinary();
  if (!binary) return undefined;
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
  let child: ChildProcess;
  let output = '';
  const start = async () => {
    output = '';
    child = spawn(binary, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    await waitForPort(port, child, () => output);
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async restart() {
      await stop();
      await start();
    },
    async stop() {
      await stop();
      rmSync(store, { recursive: true, force: true });
    },
  };
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves with its exit code. */
  exited: Promise<number | null>;
}

/**
 * Starts a worker process: `scripts/worker.ts` (or a test worker script) under Node (tsx) or Deno,
 * that exits after `idleSeconds` without a job.
 */
export function startWorker(url: string, options: { runtime?: 'node' | 'deno'; script?: string; idleSeconds?: number; args?: string[] } = {}): WorkerProcess {
  const { runtime = 'node', script = join(root, 'scripts/worker.ts'), idleSeconds = 30, args = [] } = options;
  const flags = ['--nats', url, '--workers', '1', '--exit-when-idle', String(idleSeconds), ...args];
  const child = runtime === 'deno'
    ? spawn(join(root, 'node_modules/.bin/deno'), ['run', '-A', script, ...flags], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, ['--import', 'tsx', script, ...flags], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Resolves once `predicate(output)` holds (checked as output arrives); rejects if the process exits first. */
export function waitForOutput(worker: WorkerProcess, predicate: (output: string) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (predicate(worker.output())) {
        worker.child.stdout!.off('data', check);
        worker.child.stderr!.off('data', check);
        resolve();
      }
    };
    worker.child.stdout!.on('data', check);
    worker.child.stderr!.on('data', check);
    worker.exited.then(() => reject(new Error(`worker exited before the expected output: ${worker.output()}`)));
    check();
  });
}

export async function stopWorkers(workers: WorkerProcess[]): Promise<void> {
  for (const worker of workers) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGTERM');
  await Promise.all(workers.map((worker) => worker.exited));
}
