/**
 * Every setting of a run, in one defaults object with a comment on each key: the single source of
 * truth for flags, the JSON config file and the docs. A config file, then flags, override it;
 * unknown keys and values of the wrong type are rejected, naming the key.
 */
import { availableParallelism } from 'node:os';

/** The names each choice can take: modules take their types from these lists. */
export const TOKENIZERS = ['d2l-word', 'd2l-char', 'word', 'char'] as const;
export const SAMPLERS = ['random', 'sequential'] as const;
export const CELLS = ['rnn', 'gru', 'lstm'] as const;
export const OPTIMIZERS = ['sgd', 'adam'] as const;
export const BACKENDS = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type TokenizerName = (typeof TOKENIZERS)[number];
export type SamplerName = (typeof SAMPLERS)[number];
export type Cell = (typeof CELLS)[number];
export type OptimizerName = (typeof OPTIMIZERS)[number];
export type BackendChoice = (typeof BACKENDS)[number];

export const DEFAULTS = {
  // --- ingest ---
  /** Input files, directories (walked in sorted order), '-' for stdin, .gz, .json/.jsonl. Empty: The Time Machine. */
  input: [] as string[],
  /** Run directory: lmpipe.sqlite, tokens.bin, encoded/, checkpoints/, report.html. */
  out: 'runs/timemachine',
  /** d2l-word | d2l-char (the d2l book's exact rules) | word (Unicode words) | char (code points). */
  tokenizer: 'd2l-char' as TokenizerName,
  /** word tokenizer: lowercase every token. */
  lowercase: false,
  /** JSON / JSON Lines inputs: the field holding the text (dotted path); an array is joined with "\n". */
  jsonField: 'text',
  /** Count n-grams of orders 1..order (at most 5). */
  order: 3,
  /** Count workers, this thread included (N workers start N-1 threads); one per core by default. */
  workers: Math.max(1, availableParallelism()),
  /** Memory for in-memory counts before they are spilled to SQLite. */
  memoryMb: 1024,
  /** Plain-text files are cut into shards of about this size, at line boundaries. */
  shardMb: 4,
  /** Commit counts and progress at least this often (seconds); a kill loses at most this much work. */
  checkpointSecs: 30,
  // --- vocabulary (d2l semantics: <unk> is 0, then reserved, then by count, ties by first occurrence) ---
  /** Tokens reserved right after <unk>. */
  reserved: ['<pad>', '<bos>', '<eos>'] as string[],
  /** Keep tokens seen at least this often. */
  minFreq: 0,
  /** Keep at most this many entries (including <unk> and reserved); 0 means no limit. */
  maxVocab: 0,
  // --- training data ---
  /** Train on the first N tokens of the corpus (d2l uses 10,000 characters); 0 means all. */
  maxTokens: 10000,
  /** Fraction of the (truncated) corpus held out for validation, taken from its tail. */
  validFrac: 0.1,
  /** random (d2l seq_data_iter_random) | sequential (d2l seq_data_iter_sequential). */
  sampler: 'sequential' as SamplerName,
  /** Minibatch size. */
  batch: 32,
  /** Time steps per minibatch (the BPTT window). */
  steps: 35,
  // --- model ---
  /** rnn | gru | lstm. */
  cell: 'rnn' as Cell,
  /** Hidden units per layer. */
  hidden: 512,
  /** Stacked recurrent layers. */
  layers: 1,
  // --- training ---
  /** Passes over the training data. */
  epochs: 60,
  /** Learning rate (d2l: 1 with SGD). */
  lr: 1,
  /** sgd | adam. */
  optimizer: 'sgd' as OptimizerName,
  /** Divide lr by 4 when validation perplexity does not improve at an epoch end. */
  annealLr: false,
  /** Clip gradients to this global norm (d2l: 1); 0 disables clipping. */
  clip: 1,
  /** Stop the gradient every k steps inside a window; 0 means only at minibatch boundaries. */
  truncate: 0,
  /** Randomized truncation (Tallec & Ollivier): keep each step's gradient with probability pi; 1 disables. */
  truncatePi: 1,
  /** Seed of every random choice (sampler, initialisation, truncation, sampling). */
  seed: 42,
  /** Write a checkpoint every N optimizer steps (and at each epoch end). */
  checkpointEvery: 200,
  /** auto | tensorflow-gpu | tensorflow | wasm | cpu. */
  backend: 'auto' as BackendChoice,
  /**
   * Training workers, this thread included: each holds a replica of the model and trains on its
   * share of every minibatch's rows (wasm and cpu backends). 0: one per core, at most one per 8 rows,
   * and 1 for models too small to gain. It is part of the train fingerprint (it changes the order
   * gradients are summed in).
   */
  trainWorkers: 0,
  // --- sampling ---
  /** Prefix the model is warmed up on before generating (d2l: "time traveller"). */
  prefix: 'time traveller',
  /** Tokens to generate. */
  sampleLength: 50,
  /** 0 means greedy (d2l's predict_ch8); above 0 samples with this temperature. */
  temperature: 0,
  // --- runner ---
  /** Stop after this stage (read, tokenize and count run together). */
  until: 'sample' as string,
  /** Start at this stage, redoing it and everything after it. */
  from: '' as string,
  /** Delete the run directory's results and start over. */
  fresh: false,
  /** No progress output. */
  quiet: false,
  /** One JSON event per line on stdout instead of human output. */
  json: false,
};

export type Config = typeof DEFAULTS;
export type ConfigKey = keyof Config;

export const STAGE_ORDER = ['count', 'vocab', 'encode', 'train', 'sample'] as const;
export type StageName = (typeof STAGE_ORDER)[number];
/** read and tokenize are streaming stages inside count. */
export const STAGE_ALIASES: Record<string, (typeof STAGE_ORDER)[number]> = { read: 'count', tokenize: 'count' };

type Check = (value: unknown, key: string) => string | undefined;

const integer = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (value) =>
  Number.isInteger(value) && (value as number) >= min && (value as number) <= max
    ? undefined
    : max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
const number = (min: number, max: number, openMin = false): Check => (value) =>
  typeof value === 'number' && Number.isFinite(value) && (openMin ? value > min : value >= min) && value <= max
    ? undefined
    : `a number ${openMin ? 'above' : 'from'} ${min}${openMin ? ' and at most' : ' to'} ${max}`;
const oneOf = (choices: readonly string[]): Check => (value) =>
  typeof value === 'string' && choices.includes(value) ? undefined : `one of ${choices.join(', ')}`;
const boolean: Check = (value) => (typeof value === 'boolean' ? undefined : 'true or false');
const string: Check = (value) => (typeof value === 'string' ? undefined : 'a string');
const strings: Check = (value) =>
  Array.isArray(value) && value.every((v) => typeof v === 'string') ? undefined : 'a list of strings';
const stage: Check = (value) =>
  value === '' || (typeof value === 'string' && (STAGE_ORDER as readonly string[]).concat(Object.keys(STAGE_ALIASES)).includes(value))
    ? undefined
    : `one of ${['read', 'tokenize', ...STAGE_ORDER].join(', ')}`;

const CHECKS: Record<ConfigKey, Check> = {
  input: strings,
  out: string,
  tokenizer: oneOf(TOKENIZERS),
  lowercase: boolean,
  jsonField: string,
  order: integer(1, 5),
  workers: integer(1, 256),
  memoryMb: integer(16),
  shardMb: number(0, 4096, true),
  checkpointSecs: number(0, 86400),
  reserved: strings,
  minFreq: integer(0),
  maxVocab: integer(0),
  maxTokens: integer(0),
  validFrac: number(0, 0.9),
  sampler: oneOf(SAMPLERS),
  batch: integer(1),
  steps: integer(1),
  cell: oneOf(CELLS),
  hidden: integer(1),
  layers: integer(1, 8),
  epochs: integer(0),
  lr: number(0, 1e6, true),
  optimizer: oneOf(OPTIMIZERS),
  annealLr: boolean,
  clip: number(0, 1e9),
  truncate: integer(0),
  truncatePi: number(0, 1, true),
  seed: integer(0, 2 ** 32 - 1),
  checkpointEvery: integer(1),
  backend: oneOf(BACKENDS),
  trainWorkers: integer(0, 256),
  prefix: string,
  sampleLength: integer(0),
  temperature: number(0, 100),
  until: stage,
  from: stage,
  fresh: boolean,
  quiet: boolean,
  json: boolean,
};

/** "--max-tokens" -> "maxTokens" */
export const flagToKey = (flag: string) => flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
/** "maxTokens" -> "--max-tokens" */
export const keyToFlag = (key: string) => '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** Checks one value against its key's rule; throws "Expected `--order` to be ..., got `7`". */
export function checkValue(key: string, value: unknown, origin = keyToFlag(key)): void {
  if (!(key in CHECKS)) throw new TypeError(`Unknown setting \`${origin}\``);
  const expected = CHECKS[key as ConfigKey](value, key);
  if (expected) throw new TypeError(`Expected \`${origin}\` to be ${expected}, got \`${JSON.stringify(value)}\``);
}

/** Validates a parsed config file: unknown keys and bad values are rejected with the key named. */
export function validateConfigObject(object: unknown, file: string): Partial<Config> {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) {
    throw new TypeError(`Expected ${file} to hold a JSON object of settings`);
  }
  for (const [key, value] of Object.entries(object)) checkValue(key, value, `${key}\` in \`${file}`);
  return object as Partial<Config>;
}

/** Merges defaults, then a config file's settings, then flags; validates the result. */
export function resolveConfig(...layers: Partial<Config>[]): Config {
  const config = { ...DEFAULTS, ...Object.assign({}, ...layers) } as Config;
  for (const key of Object.keys(CHECKS) as ConfigKey[]) checkValue(key, config[key]);
  return config;
}
