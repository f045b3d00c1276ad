/**
 * The worker-scaling benchmark: how much faster 2 workers count than 1, on Tiny Shakespeare
 * repeated to about 100 MB (a corpus whose n-grams repeat, so that counting, not the SQLite write,
 * is the work), for each tokenizer given.
 *
 * Runs alternate between 1 and 2 workers, `repeat` times each, and the fastest of each are compared
 * (as in bench/ingest.ts: other load on a shared machine only ever slows a run down), three ways:
 *   - the process, spawn to exit (start-up of Node, tsx and tfjs included, the same for both);
 *   - the count stage, start to done (worker start-up, the final SQLite write and indexes included);
 *   - the steady counting rate, MB/s between 25% and 90% of the input (bench/ingest.ts).
 */
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORPORA } from './make-corpus.ts';
import { countStageTimes, measure } from './ingest.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface ScalingResult {
  tokenizer: string;
  corpus: string;
  copies: number;
  bytes: number;
  /** Per worker count: every run's seconds and rates. */
  runs: Record<'1' | '2', { seconds: number[]; countStageSeconds: number[]; steadyMbPerS: number[] }>;
  /** Fastest with 1 worker / fastest with 2 (for the rate: 2 / 1); also with medians. */
  speedup: { process: number; countStage: number; steady: number };
  medianSpeedup: { process: number; countStage: number; steady: number };
}

export interface ScalingOptions {
  tokenizers?: string[];
  repeat?: number;
  copies?: number;
  timeoutS?: number;
  log?: (line: string) => void;
}

export async function benchScaling(options: ScalingOptions = {}): Promise<ScalingResult[]> {
  const { tokenizers = ['d2l-word', 'd2l-char'], repeat = 3, copies = 90, timeoutS = 600, log = () => {} } = { ...options };
  const corpus = await repeatedCorpus(copies);
  const bytes = statSync(corpus).size;
  const scratch = mkdtempSync(join(tmpdir(), 'lmpipe-bench-'));
  const results: ScalingResult[] = [];
  try {
    for (const tokenizer of tokenizers) {
      const runs: ScalingResult['runs'] = { 1: empty(), 2: empty() };
      for (let r = 0; r < repeat; r++) {
        for (const workers of [1, 2] as const) {
          const argv = [process.execPath, '--import', 'tsx', join(ROOT, 'scripts/run-pipeline.ts'), '--input', corpus, '--out', join(scratch, `w${workers}`),
            '--tokenizer', tokenizer, '--until', 'count', '--fresh', '--json', '--workers', String(workers)];
          const run = await measure(argv, timeoutS);
          if (run.exitCode !== 0) throw new Error(`lmpipe failed (exit ${run.exitCode}): ${run.stderr.slice(-500)}`);
          const times = countStageTimes(run.stdout);
          runs[workers].seconds.push(run.seconds);
          runs[workers].countStageSeconds.push(times.countStageSeconds);
          runs[workers].steadyMbPerS.push(times.steadyMbPerS);
          log(`  ${tokenizer}, ${workers} worker(s): ${run.seconds.toFixed(2)} s, count stage ${times.countStageSeconds.toFixed(2)} s, steady ${times.steadyMbPerS.toFixed(1)} MB/s`);
        }
      }
      const ratios = (pick: (values: number[], key: keyof ScalingResult['runs']['1']) => number) => ({
        process: pick(runs[1].seconds, 'seconds') / pick(runs[2].seconds, 'seconds'),
        countStage: pick(runs[1].countStageSeconds, 'countStageSeconds') / pick(runs[2].countStageSeconds, 'countStageSeconds'),
        steady: pick(runs[2].steadyMbPerS, 'steadyMbPerS') / pick(runs[1].steadyMbPerS, 'steadyMbPerS'),
      });
      results.push({
        tokenizer, corpus: corpus.replace(ROOT, ''), copies, bytes, runs,
        speedup: ratios(_best), medianSpeedup: ratios((values) => _median(values)),
      });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return results;
}

export function scalingTable(results: ScalingResult[]): string {
  const rows = results.map(({ tokenizer, runs, speedup, medianSpeedup }) => {
    const cell = (key: keyof ScalingResult['runs']['1'], digits: number) => `${_best(runs[1][key], key).toFixed(digits)} / ${_best(runs[2][key], key).toFixed(digits)}`;
    const ratio = (key: keyof ScalingResult['speedup']) => `${speedup[key].toFixed(2)}× (${medianSpeedup[key].toFixed(2)}×)`;
    return `| ${tokenizer} | ${cell('seconds', 2)} | ${ratio('process')} | ${cell('countStageSeconds', 2)} | ${ratio('countStage')} | ${cell('steadyMbPerS', 1)} | ${ratio('steady')} |`;
  });
  const runs = results[0]?.runs[1].seconds.length;
  return [
    `worker scaling on Tiny Shakespeare ×${results[0]?.copies} (${((results[0]?.bytes ?? 0) / 1e6).toFixed(0)} MB), --until count; fastest of ${runs} alternating runs, 1 / 2 workers; speed-ups of the fastest (of the medians)`, '',
    '| tokenizer | process s | speed-up | count stage s | speed-up | steady MB/s | speed-up |', '|---|---:|---:|---:|---:|---:|---:|', ...rows,
  ].join('\n');
}

/** The fastest of the runs: the least time, or for a rate the most. */
function _best(values: number[], key: keyof ScalingResult['runs']['1']): number {
  return key === 'steadyMbPerS' ? Math.max(...values) : Math.min(...values);
}

function empty() {
  return { seconds: [] as number[], countStageSeconds: [] as number[], steadyMbPerS: [] as number[] };
}

function _median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Tiny Shakespeare `copies` times over, cached in .cache/bench/. */
async function repeatedCorpus(copies: number): Promise<string> {
  const source = join(CORPORA, 'tinyshakespeare', 'input.txt');
  if (!existsSync(source)) throw new Error(`Expected Tiny Shakespeare at ${source}`);
  const text = readFileSync(source);
  const dir = join(ROOT, '.cache', 'bench');
  const path = join(dir, `tinyshakespeare-x${copies}.txt`);
  if (existsSync(path) && statSync(path).size === text.length * copies) return path;
  mkdirSync(dir, { recursive: true });
  const out = createWriteStream(path);
  for (let i = 0; i < copies; i++) if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return path;
}
