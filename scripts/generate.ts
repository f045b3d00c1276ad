/**
 * Text from a trained run directory, as d2l's predict_ch8: warm up on the prefix, then greedy
 * (temperature 0) or sampled tokens. Reads the run read-only; prints the text (prefix included).
 *
 *   npm run generate -- --out runs/timemachine --prefix "time traveller" --length 50
 *   npm run generate -- --out runs/timemachine --temperature 0.8 --seed 7
 */
import { parseArgs } from 'node:util';
import { describeFailure } from '../lib/errors.ts';
import { BACKENDS, DEFAULTS } from '../pipeline/config.ts';
import { sample } from '../stages/sample.ts';
import type { BackendChoice } from '../stages/train/index.ts';

const USAGE = `Usage: npm run generate -- --out DIR [--prefix TEXT] [--length N] [--temperature T] [--seed S] [--backend B] [--json]

Generates text from the model trained in DIR (DIR/checkpoints/train.ckpt), tokenizing the prefix with
the run's tokenizer. The output starts with the prefix.

  --out DIR          run directory (default ${DEFAULTS.out})
  --prefix TEXT      warm-up text (default "${DEFAULTS.prefix}")
  --length N         tokens to generate (default ${DEFAULTS.sampleLength})
  --temperature T    0 = greedy, the most likely token each time (default); above 0 samples
                     from softmax(logits / T): below 1 sharper, above 1 flatter
  --seed S           seed of the sampling generator (default ${DEFAULTS.seed})
  --backend B        ${BACKENDS.join(' | ')} (default auto)
  --json             print {text, strategy, run, unknown} as JSON`;

function number(flag: string, raw: string | undefined, fallback: number, check: (n: number) => boolean, expected: string): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !check(value)) throw new TypeError(`Expected \`${flag}\` to be ${expected}, got \`${raw}\``);
  return value;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' }, prefix: { type: 'string' }, length: { type: 'string' }, temperature: { type: 'string' },
      seed: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(USAGE + '\n');
  if (values.backend !== undefined && !(BACKENDS as readonly string[]).includes(values.backend)) {
    throw new TypeError(`Expected \`--backend\` to be one of ${BACKENDS.join(', ')}, got \`${values.backend}\``);
  }
  const result = await sample(values.out ?? DEFAULTS.out, {
    prefix: values.prefix ?? DEFAULTS.prefix,
    length: number('--length', values.length, DEFAULTS.sampleLength, (n) => Number.isInteger(n) && n >= 0, 'an integer of at least 0'),
    temperature: number('--temperature', values.temperature, 0, (n) => n >= 0 && n <= 100, 'a number from 0 to 100'),
    seed: number('--seed', values.seed, DEFAULTS.seed, (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32, 'an integer from 0 to 4294967295'),
    backend: (values.backend ?? 'auto') as BackendChoice,
  });
  if (values.json) return void process.stdout.write(JSON.stringify(result) + '\n');
  if (!result.finished) process.stderr.write('generate: training has not finished; using its latest checkpoint\n');
  if (result.unknown.length > 0) process.stderr.write(`generate: not in the vocabulary, fed as <unk>: ${result.unknown.join(' ')}\n`);
  process.stdout.write(result.text + '\n');
}

main(process.argv.slice(2)).catch((error) => {
  const { line, exitCode } = describeFailure(error);
  process.stderr.write(line + '\n');
  process.exitCode = exitCode;
});
