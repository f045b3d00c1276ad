/**
 * Text from a trained run directory, as d2l's predict_ch8: warm up on the prefix, then greedy
 * (temperature 0) or sampled tokens. Reads the run read-only; prints the text (prefix included).
 *
 *   npm run generate -- --out runs/timemachine --prefix "time traveller" --length 50
 *   npm run generate -- --out runs/timemachine --temperature 0.8 --seed 7
 */
import { LmpipeError } from '../lib/errors.ts';
import { flagLines, parseCommandLine, type FlagSpec } from '../pipeline/args.ts';
import { BACKENDS, DEFAULTS, type BackendChoice } from '../pipeline/config.ts';
import { runMain, userPath } from '../pipeline/run-main.ts';
import { sample } from '../stages/sample.ts';

const FLAGS: Record<string, FlagSpec> = {
  out: { kind: 'string', value: 'DIR', help: 'Run directory', default: DEFAULTS.out },
  prefix: { kind: 'string', value: 'TEXT', help: 'Warm-up text', default: DEFAULTS.prefix },
  length: { kind: 'integer', min: 0, help: 'Tokens to generate', default: DEFAULTS.sampleLength },
  temperature: {
    kind: 'number', min: 0, value: 'T', default: 0,
    help: '0 = greedy, the most likely token each time; above 0 samples from softmax(logits / T): below 1 sharper, above 1 flatter',
    check: (value, flag) => {
      if ((value as number) > 100) throw new TypeError(`Expected \`${flag}\` to be a number from 0 to 100, got \`${value}\``);
    },
  },
  seed: {
    kind: 'integer', min: 0, value: 'S', help: 'Seed of the sampling generator', default: DEFAULTS.seed,
    check: (value, flag) => {
      if ((value as number) >= 2 ** 32) throw new TypeError(`Expected \`${flag}\` to be an integer from 0 to 4294967295, got \`${value}\``);
    },
  },
  backend: {
    kind: 'string', value: 'B', help: BACKENDS.join(' | '), default: 'auto',
    check: (value, flag) => {
      if (!(BACKENDS as readonly string[]).includes(value as string)) {
        throw new TypeError(`Expected \`${flag}\` to be one of ${BACKENDS.join(', ')}, got \`${value}\``);
      }
    },
  },
  json: { kind: 'boolean', help: 'Print {text, strategy, run, unknown} as JSON', default: false },
};

const USAGE = `Usage: npm run generate -- --out DIR [--prefix TEXT] [--length N] [--temperature T] [--seed S] [--backend B] [--json]

Generates text from the model trained in DIR (DIR/checkpoints/train.ckpt), tokenizing the prefix with
the run's tokenizer. The output starts with the prefix.

${flagLines(FLAGS, { width: 18 }).join('\n')}`;

async function main(argv: string[]): Promise<void> {
  const { flags, help } = parseCommandLine(argv, { flags: FLAGS });
  if (help) return void process.stdout.write(USAGE + '\n');
  const result = await sample(userPath(flags.out as string), {
    prefix: flags.prefix as string,
    length: flags.length as number,
    temperature: flags.temperature as number,
    seed: flags.seed as number,
    backend: flags.backend as BackendChoice,
  }).catch((error: unknown) => {
    // The sample stage's errors are this command's errors here.
    throw error instanceof LmpipeError && error.stage === 'sample' ? new LmpipeError(error.code, error.message, { ...error, stage: 'generate' }) : error;
  });
  if (flags.json) return void process.stdout.write(JSON.stringify(result) + '\n');
  if (!result.finished) process.stderr.write('generate: training has not finished; using its latest checkpoint\n');
  if (result.unknown.length > 0) process.stderr.write(`generate: not in the vocabulary, fed as <unk>: ${result.unknown.join(' ')}\n`);
  process.stdout.write(result.text + '\n');
}

runMain('generate', () => main(process.argv.slice(2)));
