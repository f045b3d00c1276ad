/**
 * Text from a trained run directory, as d2l's predict_ch8: warm up on the prefix, then greedy
 * (temperature 0) or sampled tokens. Reads the run read-only; prints the text (prefix included).
 *
 *   npm run generate -- --out runs/timemachine --prefix "time traveller" --length 50
 *   npm run generate -- --out runs/timemachine --temperature 0.8 --seed 7
 *   npm run generate -- --out runs/timemachine --temperature 1 --top-p 0.9 --save
 *
 * With --save the result is also written to the run's samples table (holding the run's lock).
 */
import { LmpipeError } from '../lib/errors.ts';
import { flagLines, parseCommandLine, type FlagSpec } from '../pipeline/args.ts';
import { BACKENDS, DEFAULTS, SETTINGS, checkValue, type BackendChoice } from '../pipeline/config.ts';
import { acquireLock } from '../pipeline/lock.ts';
import { runMain, userPath } from '../pipeline/run-main.ts';
import { sample, type Sample } from '../stages/sample.ts';
import { addSample } from '../storage/metrics.ts';
import { runPaths } from '../storage/run-paths.ts';
import { openRunDatabase } from '../storage/schema.ts';

/** A flag that is also a pipeline setting: its default, doc and check come from the settings table. */
const setting = (key: 'topK' | 'topP' | 'allowUnk', spec: Pick<FlagSpec, 'kind' | 'value'>): FlagSpec =>
  ({ ...spec, help: SETTINGS[key].doc, default: DEFAULTS[key], check: (value, flag) => checkValue(key, value, flag) });

const FLAGS: Record<string, FlagSpec> = {
  out: { kind: 'string', value: 'DIR', help: 'Run directory', default: DEFAULTS.out },
  prefix: { kind: 'string', value: 'TEXT', help: 'Warm-up text; none: the first tokens of the run\'s validation split' },
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
  topK: setting('topK', { kind: 'integer', value: 'K' }),
  topP: setting('topP', { kind: 'number', value: 'P' }),
  allowUnk: setting('allowUnk', { kind: 'boolean' }),
  save: { kind: 'boolean', help: 'Also write the text to the run\'s samples table', default: false },
  json: { kind: 'boolean', help: 'Print {text, strategy, run, unknown} as JSON', default: false },
};

const USAGE = `Usage: npm run generate -- --out DIR [--prefix TEXT] [--length N] [--temperature T] [--top-k K] [--top-p P] [--allow-unk] [--seed S] [--save] [--json]

Generates text from the model trained in DIR (DIR/checkpoints/train.ckpt), tokenizing the prefix with
the run's tokenizer. The output starts with the prefix.

${flagLines(FLAGS, { width: 18, kebab: true }).join('\n')}`;

async function main(argv: string[]): Promise<void> {
  const { flags, help } = parseCommandLine(argv, { flags: FLAGS, kebab: true });
  if (help) return void process.stdout.write(USAGE + '\n');
  const result = await sample(userPath(flags.out as string), {
    prefix: (flags.prefix as string | undefined) ?? DEFAULTS.prefix,
    length: flags.length as number,
    temperature: flags.temperature as number,
    topK: flags.topK as number,
    topP: flags.topP as number,
    allowUnk: flags.allowUnk as boolean,
    seed: flags.seed as number,
    backend: flags.backend as BackendChoice,
  }).catch((error: unknown) => {
    // The sample stage's errors are this command's errors here.
    throw error instanceof LmpipeError && error.stage === 'sample' ? new LmpipeError(error.code, error.message, { ...error, stage: 'generate' }) : error;
  });
  if (flags.save) save(userPath(flags.out as string), result);
  if (flags.json) return void process.stdout.write(JSON.stringify(result) + '\n');
  if (!result.finished) process.stderr.write('generate: training has not finished; using its latest checkpoint\n');
  if (result.endOfText) process.stderr.write('generate: the model ended the text (<eos>) before --length tokens\n');
  if (result.unknown.length > 0) process.stderr.write(`generate: not in the vocabulary, fed as <unk>: ${result.unknown.join(' ')}\n`);
  process.stdout.write(result.text + '\n');
}

/** Adds the text to the samples table, as the sample stage does (under the run's lock). */
function save(dir: string, result: Sample): void {
  const lock = acquireLock(dir);
  try {
    const db = openRunDatabase(runPaths(dir).database);
    try {
      addSample(db, { run: result.run, prefix: result.prefix, strategy: result.strategy, text: result.text });
    } finally {
      db.close();
    }
  } finally {
    lock.release();
  }
}

runMain('generate', () => main(process.argv.slice(2)));
