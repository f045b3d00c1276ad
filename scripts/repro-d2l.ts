/**
 * Reproduces d2l's chapter 9.5 result ("RNN from scratch"): The Time Machine, d2l-char tokens, the
 * first 10,000 of them, hidden 512, batch 32, 35 steps, SGD lr 1, clipping at 1, sequential sampler,
 * 500 epochs. d2l reaches a training perplexity near 1.0 and its greedy continuation of
 * "time traveller" is text from the book. This runs the real pipeline stages (resumable like any
 * run), then checks both and prints the numbers and the time taken.
 *
 *   npm run repro:d2l                        # runs/repro-d2l, about half an hour on 2 busy cores
 *   npm run repro:d2l -- --epochs 50 --out /tmp/quick --backend cpu
 */
import { join } from 'node:path';
import { flagLines, parseCommandLine, type FlagSpec } from '../pipeline/args.ts';
import { SETTINGS, resolveConfig, type Config } from '../pipeline/config.ts';
import { findCorpus } from '../lib/data-hub.ts';
import { createReporter } from '../pipeline/progress.ts';
import { runPipeline } from '../pipeline/runner.ts';
import { runMain, userDir, type MainContext } from '../pipeline/run-main.ts';
import { loadEncoded } from '../stages/encode.ts';
import { STAGES } from '../stages/index.ts';
import { loadMetrics, loadSamples } from '../storage/metrics.ts';
import { loadStage } from '../storage/stages.ts';
import { vocabTokens } from '../storage/vocab.ts';

const D2L: Partial<Config> = {
  tokenizer: 'd2l-char', maxTokens: 10000, validFrac: 0, hidden: 512, batch: 32, steps: 35, lr: 1, clip: 1,
  sampler: 'sequential', epochs: 500, cell: 'rnn', layers: 1, optimizer: 'sgd', prefix: 'time traveller', sampleLength: 50,
  dropout: 0, lrDecay: 1, annealLr: false, truncate: 0, truncatePi: 1,
  checkpointEvery: 1000,
};

const FLAGS: Record<string, FlagSpec> = {
  out: { kind: 'string', value: 'DIR', help: 'Run directory', default: 'runs/repro-d2l' },
  epochs: { kind: 'integer', min: 1, help: 'Passes over the 10,000 characters', default: D2L.epochs as number },
  backend: { kind: 'string', value: 'B', help: SETTINGS.backend.doc, default: SETTINGS.backend.default },
  fresh: { kind: 'boolean', help: SETTINGS.fresh.doc, default: false },
};

const USAGE = `Usage: npm run repro:d2l -- [--out DIR] [--epochs N] [--backend B] [--fresh]

Reproduces d2l's RNN from scratch (chapter 9.5) on The Time Machine through the real pipeline:
d2l-char tokens, the first 10,000, hidden 512, batch 32, 35 steps, SGD lr 1, clipping at 1,
sequential sampler. Checks that the final training perplexity is near 1 and that the greedy text
appears verbatim in the book; exits 1 otherwise. Resumable like any run.

${flagLines(FLAGS).join('\n')}`;

async function main(argv: string[], { signal }: MainContext): Promise<void> {
  const { flags, help } = parseCommandLine(argv, { flags: FLAGS });
  if (help) return void process.stdout.write(USAGE + '\n');
  const input = await findCorpus('time_machine');
  const config = resolveConfig({
    ...D2L, input: [input], out: userDir(flags.out as string), fresh: flags.fresh as boolean,
    epochs: flags.epochs as number, backend: flags.backend as Config['backend'],
  });
  const started = Date.now();
  const reporter = createReporter({ plainEvery: 30 });
  const { db } = await runPipeline(config, { stages: STAGES, reporter, signal });
  try {
    const seconds = (Date.now() - started) / 1000;
    const run = String(loadStage(db, 'train')!.checkpoint.run);
    const rows = loadMetrics(db, run).filter((row) => row.split === 'train');
    const last = rows[rows.length - 1];
    const backendName = db.prepare('SELECT backend FROM runs WHERE run = ?').get(run)?.backend;
    const sample = loadSamples(db, run).pop()!;
    // The training text itself: the encoded ids the model saw, decoded through the vocabulary.
    const vocab = vocabTokens(db);
    const text = Array.from(loadEncoded(db, { dir: config.out }).train, (id) => vocab[id]).join('');
    const verbatim = text.includes(sample.text);
    const longest = _longestVerbatimPrefix(sample.text, text);
    const meanRate = rows.reduce((sum, row) => sum + (row.tokensPerSecond ?? 0), 0) / Math.max(1, rows.length);
    console.log([
      `d2l reproduction in ${join(config.out)} (backend ${backendName}): ${rows.length} epochs`,
      `  training perplexity: epoch 1 ${rows[0].perplexity.toFixed(2)}, epoch ${last.epoch} ${last.perplexity.toFixed(3)} (d2l: about 1.0)`,
      `  greedy from "${config.prefix}": ${JSON.stringify(sample.text)}`,
      `  appears verbatim in the training text: ${verbatim ? 'yes' : `no (its first ${longest} characters do)`}`,
      `  training speed: ${Math.round(meanRate).toLocaleString('en-US')} tokens/s on average; this command took ${(seconds / 60).toFixed(1)} min`,
    ].join('\n'));
    if (last.perplexity > 1.5 || !verbatim) process.exitCode = 1;
  } finally {
    db.close();
  }
}

/** How many leading characters of `sample` occur somewhere in `text`. */
function _longestVerbatimPrefix(sample: string, text: string): number {
  let length = 0;
  while (length < sample.length && text.includes(sample.slice(0, length + 1))) length++;
  return length;
}

runMain('repro:d2l', (context) => main(process.argv.slice(2), context), {
  interrupted: () => `Resume with: npm run repro:d2l -- ${process.argv.slice(2).join(' ')}`,
});
