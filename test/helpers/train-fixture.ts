/**
 * Run directories for the trainer's tests: a small text goes through the real count, vocab and
 * encode stages (through the runner, as users run them), then train and sample.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type Config } from '../../pipeline/config.ts';
import { createReporter } from '../../pipeline/progress.ts';
import { runPipeline } from '../../pipeline/runner.ts';
import type { StageEvent } from '../../pipeline/types.ts';
import { STAGES } from '../../stages/index.ts';

export { STAGES };

export const TIME_MACHINE = fileURLToPath(new URL('../../../shared/corpora/timemachine/timemachine.txt', import.meta.url));

/**
 * Why the tests that train on The Time Machine skip, or false when it is there. There is no
 * stand-in text: on a repeated sentence an untrained model already looks good (a vocabulary of 26
 * gives a uniform perplexity below the thresholds the tests set).
 */
export const corpusSkip = existsSync(TIME_MACHINE) ? false : `The Time Machine is not at ${TIME_MACHINE} (../shared/corpora)`;

/** The first `chars` characters of The Time Machine (tests that call this skip with `corpusSkip`). */
export function smallText(chars: number): string {
  return readFileSync(TIME_MACHINE, 'utf8').slice(0, chars);
}

/** A config for `dir` whose input is `text` written to dir/input.txt. Tiny training defaults. */
export function tinyConfig(dir: string, text: string, settings: Partial<Config> = {}): Config {
  mkdirSync(dir, { recursive: true });
  const input = join(dir, 'input.txt');
  writeFileSync(input, text);
  return resolveConfig({
    input: [input], out: join(dir, 'run'), workers: 1, quiet: true, maxTokens: 0, validFrac: 0.1,
    cell: 'rnn', optimizer: 'sgd', hidden: 16, batch: 4, steps: 8, epochs: 2, lr: 1, lrDecay: 1, dropout: 0, annealLr: false, clip: 1, backend: 'cpu', ...settings,
  });
}

/** Runs the pipeline up to `config.until`; returns the progress events of the train stage. */
export async function runStages(config: Config, options: { signal?: AbortSignal; onEvent?: (event: StageEvent) => void } = {}): Promise<StageEvent[]> {
  const { signal = new AbortController().signal, onEvent } = options;
  const events: StageEvent[] = [];
  const progress = (name: string, event: StageEvent) => {
    if (name !== 'train') return;
    events.push(event);
    onEvent?.(event);
  };
  const reporter = { ...createReporter({ quiet: true }), progress };
  const { db } = await runPipeline(config, { stages: STAGES, reporter, signal });
  db.close();
  return events;
}
