/**
 * The distributed-counting benchmark: the pipeline as coordinator plus two local NATS workers
 * (`--nats`, stages/count/nats/) against a local run with `--workers 2`, on the same corpus and
 * machine. The target: at least 0.8x the local speed (the cost of the protocol and the object store).
 *
 * It starts a throwaway nats-server (JetStream, a free loopback port, a temporary store), then
 * alternates the two, `repeat` times each, and compares the fastest and the medians of the process
 * times and of the count stage's own times and phases (bench/ingest.ts). The workers start before
 * the coordinator and are stopped after it; their log lines give each shard's counting time and
 * each partition's reduce time, from which the README's per-worker rates come. Skipped when
 * nats-server is not installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countStageTimes, measure } from './ingest.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface NatsBenchResult {
  bytes: number;
  runs: Record<'local' | 'nats', { seconds: number[]; countStageSeconds: number[]; phaseSeconds: Array<Record<string, number>> }>;
  /** Local time / distributed time: above 1 the distributed run is faster. Fastest and medians. */
  ratio: { process: number; countStage: number };
  medianRatio: { process: number; countStage: number };
  /** Seconds a worker took per shard (read, count, encode, store), over all runs; and the shard size. */
  shardSeconds: number[];
  shardBytes: number;
  /** Seconds a worker took per partition (fetch the sections, reduce, store the part). */
  partitionSeconds: number[];
}

export async function benchNats(corpus: string, options: { repeat?: number; timeoutS?: number; bytes: number; log?: (line: string) => void }): Promise<NatsBenchResult | undefined> {
  const { repeat = 3, timeoutS = 1800, bytes, log = () => {} } = options;
  if (spawnSync('nats-server', ['--version']).status !== 0) return undefined;
  const port = await _freePort();
  const store = mkdtempSync(join(tmpdir(), 'lmpipe-bench-nats-'));
  const scratch = mkdtempSync(join(tmpdir(), 'lmpipe-bench-'));
  const server = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: 'ignore' });
  const url = `nats://127.0.0.1:${port}`;
  const runs: NatsBenchResult['runs'] = { local: { seconds: [], countStageSeconds: [], phaseSeconds: [] }, nats: { seconds: [], countStageSeconds: [], phaseSeconds: [] } };
  const shardSeconds: number[] = [];
  const partitionSeconds: number[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (let r = 0; r < repeat; r++) {
      for (const mode of ['local', 'nats'] as const) {
        const argv = [process.execPath, '--import', 'tsx', join(ROOT, 'scripts/run-pipeline.ts'), '--input', corpus, '--out', join(scratch, mode),
          '--tokenizer', 'd2l-word', '--order', '3', '--until', 'count', '--fresh', '--json',
          ...(mode === 'local' ? ['--workers', '2'] : ['--nats', url])];
        const workers = mode === 'nats' ? [0, 1].map(() => _worker(url)) : [];
        const run = await measure(argv, timeoutS);
        for (const worker of workers) worker.child.kill('SIGTERM');
        await Promise.all(workers.map((worker) => worker.exited));
        if (run.exitCode !== 0) throw new Error(`lmpipe (${mode}) failed (exit ${run.exitCode}): ${run.stderr.slice(-500)}`);
        for (const worker of workers) {
          for (const match of worker.output().matchAll(/finished shard .* in ([\d.]+) s/g)) shardSeconds.push(Number(match[1]));
          for (const match of worker.output().matchAll(/finished partition .* in ([\d.]+) s/g)) partitionSeconds.push(Number(match[1]));
        }
        const times = countStageTimes(run.stdout);
        runs[mode].seconds.push(run.seconds);
        runs[mode].countStageSeconds.push(times.countStageSeconds);
        runs[mode].phaseSeconds.push(times.phaseSeconds);
        const phases = Object.entries(times.phaseSeconds).map(([phase, seconds]) => `${phase} ${seconds.toFixed(1)}`).join(', ');
        log(`  ${mode === 'local' ? 'local, --workers 2' : 'coordinator + 2 NATS workers'}: ${run.seconds.toFixed(2)} s, count stage ${times.countStageSeconds.toFixed(2)} s (${phases})`);
      }
    }
  } finally {
    server.kill('SIGTERM');
    rmSync(store, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
  const ratios = (pick: (values: number[]) => number) => ({
    process: pick(runs.local.seconds) / pick(runs.nats.seconds),
    countStage: pick(runs.local.countStageSeconds) / pick(runs.nats.countStageSeconds),
  });
  return { bytes, runs, ratio: ratios((values) => Math.min(...values)), medianRatio: ratios(_median), shardSeconds, shardBytes: 4 * 2 ** 20, partitionSeconds };
}

export function natsTable(result: NatsBenchResult): string {
  const best = (values: number[]) => Math.min(...values).toFixed(2);
  const perShard = _median(result.shardSeconds);
  return [
    `| ${(result.bytes / 1e6).toFixed(0)} MB, d2l-word, order 3 | process s | count stage s | vs local (fastest) | vs local (medians) |`,
    '|---|---:|---:|---:|---:|',
    `| local, \`--workers 2\` | ${best(result.runs.local.seconds)} | ${best(result.runs.local.countStageSeconds)} | 1.00× | 1.00× |`,
    `| coordinator + 2 NATS workers | ${best(result.runs.nats.seconds)} | ${best(result.runs.nats.countStageSeconds)} | ${result.ratio.countStage.toFixed(2)}× | ${result.medianRatio.countStage.toFixed(2)}× |`,
    '',
    `A worker took a median ${perShard.toFixed(2)} s per 4 MiB shard (${(result.shardBytes / 1e6 / perShard).toFixed(1)} MB/s of text): read, count, encode, store;`,
    `and a median ${_median(result.partitionSeconds).toFixed(2)} s per partition (${result.partitionSeconds.length} in all): fetch the sections, reduce, store the part.`,
    ...(['local', 'nats'] as const).map((mode) => {
      const phases = Object.keys(result.runs[mode].phaseSeconds[0] ?? {});
      return `Median phases, ${mode}: ${phases.map((phase) => `${phase} ${_median(result.runs[mode].phaseSeconds.map((seconds) => seconds[phase])).toFixed(1)} s`).join(', ')}.`;
    }),
  ].join('\n');
}

function _worker(url: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/worker.ts'), '--nats', url, '--workers', '1'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  return { child, output: () => output, exited: new Promise((resolve) => child.once('exit', resolve)) };
}

function _median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function _freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
