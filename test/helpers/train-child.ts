/**
 * A training run in a child process, for the kill-and-resume test: runs the pipeline of the config
 * in argv[2] (a JSON file) up to its `until`, printing one line per train event ("checkpoint 40",
 * "epoch 2") and per log line ("log resuming at ...") to stdout, so the parent knows when to kill it.
 */
import { readFileSync } from 'node:fs';
import { resolveConfig } from '../../pipeline/config.ts';
import { createReporter } from '../../pipeline/progress.ts';
import { runPipeline } from '../../pipeline/runner.ts';
import { STAGES } from './train-fixture.ts';

const config = resolveConfig(JSON.parse(readFileSync(process.argv[2], 'utf8')));
const say = (line: string) => process.stdout.write(line + '\n');
const reporter = {
  ...createReporter({ quiet: true }),
  log: (message: string) => say(`log ${message}`),
  progress: (name: string, event: { unit: string; done: number; message?: string }) => {
    if (name !== 'train' || !event.message) return;
    say(event.unit === 'epochs' ? `epoch ${event.done}` : `checkpoint ${event.done}`);
  },
};
const { db } = await runPipeline(config, { stages: STAGES, reporter, signal: new AbortController().signal });
db.close();
say('finished');
