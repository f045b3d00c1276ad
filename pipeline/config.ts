/**
 * Every setting of a run, in one table (SETTINGS: default, check and doc of each key): the single
 * source of truth for the Config type, the flags, the JSON config file and `--help`. A config file,
 * then flags, override the defaults; unknown keys and values of the wrong type are rejected,
 * naming the key and the nearest known one.
 */
import { availableParallelism } from 'node:os';
import { didYouMean, nearest, toCamel, toKebab } from './args.ts';

/** The names each choice can take: modules take their types from these lists. */
export const TOKENIZERS = ['d2l-word', 'd2l-char', 'word', 'char'] as const;
export const SAMPLERS = ['random', 'sequential'] as const;
export const CELLS = ['rnn', 'gru', 'lstm'] as const;
export const OPTIMIZERS = ['sgd', 'adam'] as const;
/** After 'auto', in the order auto tries them (stages/train/backend.ts). */
export const BACKENDS = ['auto', 'tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type TokenizerName = (typeof TOKENIZERS)[number];
export type SamplerName = (typeof SAMPLERS)[number];
export type Cell = (typeof CELLS)[number];
export type OptimizerName = (typeof OPTIMIZERS)[number];
export type BackendChoice = (typeof BACKENDS)[number];

export const STAGE_ORDER = ['count', 'vocab', 'encode', 'train', 'sample'] as const;
export type StageName = (typeof STAGE_ORDER)[number];
/** read and tokenize are streaming stages inside count. */
export const STAGE_ALIASES: Record<string, (typeof STAGE_ORDER)[number]> = { read: 'count', tokenize: 'count' };

/** Returns what was expected when `value` is wrong, undefined when it is right. */
type Check = ((value: unknown, key: string) => string | undefined) & { choices?: readonly string[] };

const integer = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (value) =>
  Number.isInteger(value) && (value as number) >= min && (value as number) <= max
    ? undefined
    : max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
const number = (min: number, max: number, openMin = false): Check => (value) =>
  typeof value === 'number' && Number.isFinite(value) && (openMin ? value > min : value >= min) && value <= max
    ? undefined
    : `a number ${openMin ? 'above' : 'from'} ${min}${openMin ? ' and at most' : ' to'} ${max}`;
const oneOf = (choices: readonly string[]): Check => Object.assign(
  (value: unknown) => (typeof value === 'string' && choices.includes(value) ? undefined : `one of ${choices.join(', ')}`),
  { choices },
);
const boolean: Check = (value) => (typeof value === 'boolean' ? undefined : 'true or false');
const string: Check = (value) => (typeof value === 'string' ? undefined : 'a string');
const strings: Check = (value) =>
  Array.isArray(value) && value.every((v) => typeof v === 'string') ? undefined : 'a list of strings';
/** A stage name or alias, in pipeline order; '' for none (--from's default). */
const stage: Check = (() => {
  const named = oneOf([...Object.keys(STAGE_ALIASES), ...STAGE_ORDER]);
  return Object.assign((value: unknown, key: string) => (value === '' ? undefined : named(value, key)), { choices: named.choices });
})();

interface Setting<T> {
  default: T;
  check: Check;
  /** One line for --help and the README. */
  doc: string;
}

/**
 * Every setting: its default, its check and its one-line doc. The Config type, DEFAULTS, the
 * flags (`--max-tokens` for maxTokens), validation and `--help` all derive from this table.
 */
export const SETTINGS = {
  // --- ingest ---
  input: { default: [] as string[], check: strings,
    doc: 'Input files, directories (walked in sorted order), \'-\' for stdin, .gz, .json/.jsonl. Empty: The Time Machine.' },
  out: { default: 'runs/timemachine', check: string,
    doc: 'Run directory: lmpipe.sqlite, tokens.bin, encoded/, checkpoints/, report.html.' },
  tokenizer: { default: 'd2l-char' as TokenizerName, check: oneOf(TOKENIZERS),
    doc: 'd2l-word and d2l-char follow the d2l book\'s exact rules; word: Unicode words; char: code points.' },
  lowercase: { default: false, check: boolean,
    doc: 'word tokenizer: lowercase every token.' },
  skipBinary: { default: false, check: boolean,
    doc: 'Skip binary files (a NUL byte) with a count, instead of stopping at the first one.' },
  jsonField: { default: 'text', check: string,
    doc: 'JSON / JSON Lines inputs: the field holding the text (dotted path); an array is joined with "\\n".' },
  order: { default: 3, check: integer(1, 5),
    doc: 'Count n-grams of orders 1..order (at most 5).' },
  workers: { default: Math.max(1, availableParallelism()), check: integer(1, 256),
    doc: 'Count workers, this thread included (N workers start N-1 threads); one per core by default.' },
  memoryMb: { default: 1024, check: integer(16),
    doc: 'Memory the count stage may use in all (workers, reducers, buffers, SQLite cache); more means fewer, larger partitions.' },
  shardMb: { default: 4, check: number(0, 4096, true),
    doc: 'Plain-text files are cut into shards of about this size, at line boundaries.' },
  checkpointSecs: { default: 30, check: number(0, 86400),
    doc: 'Commit counts and progress at least this often (seconds); a kill loses at most this much work.' },
  // --- counting on NATS workers (stages/count/nats/); none of these changes a result ---
  nats: { default: '', check: string,
    doc: 'NATS server(s) whose workers count the shards: nats://[user:password@ | token@]host:4222 or tls://...; \'\' counts here.' },
  natsCreds: { default: '', check: string,
    doc: 'NATS credentials file: a .creds file (JWT and nkey seed) or an nkey seed file.' },
  natsCa: { default: '', check: string,
    doc: 'TLS: the CA certificate that signed the NATS server\'s.' },
  natsCert: { default: '', check: string,
    doc: 'TLS: a client certificate, for servers that verify clients.' },
  natsKey: { default: '', check: string,
    doc: 'TLS: the client certificate\'s private key.' },
  natsAckWait: { default: 30, check: number(0, 3600, true),
    doc: 'Seconds a NATS worker may go without a heartbeat before its job goes to another worker.' },
  shipInput: { default: false, check: boolean,
    doc: 'Put each shard\'s bytes in the run\'s NATS object store, for workers that cannot see the input files.' },
  // --- vocabulary (d2l semantics: <unk> is 0, then reserved, then by count, ties by first occurrence) ---
  reserved: { default: ['<pad>', '<bos>', '<eos>'] as string[], check: strings,
    doc: 'Tokens reserved right after <unk>.' },
  minFreq: { default: 0, check: integer(0),
    doc: 'Keep tokens seen at least this often.' },
  maxVocab: { default: 0, check: integer(0),
    doc: 'Keep at most this many entries (including <unk> and reserved); 0 means no limit.' },
  // --- training data ---
  // The whole corpus by default: on d2l's 10,000 characters any RNN memorizes and overfits, and the
  // n-gram vs RNN table at the end of the run is only worth showing on more text.
  maxTokens: { default: 0, check: integer(0),
    doc: 'Train on the first N tokens of the corpus (d2l uses 10,000 characters); 0 means all.' },
  validFrac: { default: 0.1, check: number(0, 0.9),
    doc: 'Fraction of the (truncated) corpus held out for validation, taken from its tail.' },
  sampler: { default: 'sequential' as SamplerName, check: oneOf(SAMPLERS),
    doc: 'random (d2l seq_data_iter_random) | sequential (d2l seq_data_iter_sequential).' },
  batch: { default: 32, check: integer(1),
    doc: 'Minibatch size.' },
  steps: { default: 35, check: integer(1),
    doc: 'Time steps per minibatch (the BPTT window).' },
  // --- model ---
  // The defaults (gru 128, Adam at 0.02 annealed, 12 epochs of the whole Time Machine) gave the
  // lowest validation perplexity measured within about two minutes on 2 cores (README, Quick
  // start); `npm run repro:d2l` keeps the book's rnn, 512, SGD and lr 1.
  cell: { default: 'gru' as Cell, check: oneOf(CELLS),
    doc: 'Recurrent cell.' },
  hidden: { default: 128, check: integer(1),
    doc: 'Hidden units per layer.' },
  layers: { default: 1, check: integer(1, 8),
    doc: 'Stacked recurrent layers.' },
  dropout: { default: 0, check: number(0, 0.95),
    doc: 'Training only: drop each unit of each layer\'s output (into the layer above or the output layer, never the recurrence) with this probability (Zaremba et al.); 0 disables.' },
  // --- training ---
  epochs: { default: 12, check: integer(1),
    doc: 'Passes over the training data; raising it (alone) continues a trained run from its checkpoint.' },
  lr: { default: 0.02, check: number(0, 1e6, true),
    doc: 'Learning rate (d2l: 1 with SGD).' },
  optimizer: { default: 'adam' as OptimizerName, check: oneOf(OPTIMIZERS),
    doc: 'Optimizer.' },
  annealLr: { default: true, check: boolean,
    doc: 'Divide lr by 4 when validation perplexity does not improve at an epoch end.' },
  lrDecay: { default: 1, check: number(0, 1, true),
    doc: 'Multiply lr by this at each epoch end (exponential decay, PyTorch\'s ExponentialLR; after --anneal-lr); 1 keeps it.' },
  clip: { default: 1, check: number(0, 1e9),
    doc: 'Clip gradients to this global norm (d2l: 1); 0 disables clipping.' },
  truncate: { default: 0, check: integer(0),
    doc: 'Stop the gradient every k steps inside a window; 0 means only at minibatch boundaries.' },
  truncatePi: { default: 1, check: number(0, 1, true),
    doc: 'Randomized truncation (Tallec & Ollivier): keep each step\'s gradient with probability pi; 1 disables.' },
  seed: { default: 42, check: integer(0, 2 ** 32 - 1),
    doc: 'Seed of every random choice (sampler, initialisation, truncation, sampling).' },
  checkpointEvery: { default: 200, check: integer(1),
    doc: 'Write a checkpoint every N optimizer steps (and at each epoch end).' },
  backend: { default: 'auto' as BackendChoice, check: oneOf(BACKENDS),
    doc: 'Where tensors run; auto takes the first that loads, in this order (webgpu on a hardware GPU only).' },
  // 1 by default: on the 2-core machines measured so far 2 workers were slower (README, Training),
  // and the worker count changes the summation order, so the default stays machine-independent.
  trainWorkers: { default: 1, check: integer(0, 256),
    doc: 'Training workers, this thread included: data-parallel replicas (wasm, cpu); 0: one per core for models big enough to gain. Part of the train fingerprint.' },
  // --- sampling ---
  prefix: { default: '', check: string,
    doc: 'Prefix the model is warmed up on before generating; empty: the first tokens of the validation split (The Time Machine: d2l\'s "time traveller").' },
  sampleLength: { default: 50, check: integer(0),
    doc: 'Tokens to generate.' },
  temperature: { default: 0, check: number(0, 100),
    doc: '0 means greedy (d2l\'s predict_ch8); above 0 samples with this temperature.' },
  topK: { default: 0, check: integer(0),
    doc: 'Sample only among the k most likely tokens (top-k); 0 means all.' },
  topP: { default: 1, check: number(0, 1, true),
    doc: 'Sample only among the most likely tokens holding this much probability (top-p, nucleus); 1 means all.' },
  allowUnk: { default: false, check: boolean,
    doc: 'Let generation emit <unk> (never <pad> or <bos>; <eos> ends the text).' },
  // --- runner ---
  until: { default: 'sample' as string, check: stage,
    doc: 'Stop after this stage (read, tokenize and count run together).' },
  from: { default: '' as string, check: stage,
    doc: 'Start at this stage, redoing it and everything after it.' },
  fresh: { default: false, check: boolean,
    doc: 'Delete the run directory\'s results and start over.' },
  quiet: { default: false, check: boolean,
    doc: 'No progress output.' },
  json: { default: false, check: boolean,
    doc: 'One JSON event per line on stdout instead of human output.' },
} satisfies Record<string, Setting<unknown>>;

export type ConfigKey = keyof typeof SETTINGS;
export type Config = { [K in ConfigKey]: (typeof SETTINGS)[K]['default'] };

export const DEFAULTS: Config = Object.fromEntries(
  Object.entries(SETTINGS).map(([key, setting]) => [key, setting.default]),
) as Config;

/** "--max-tokens" -> "maxTokens" */
export const flagToKey = (flag: string) => toCamel(flag.replace(/^--/, ''));
/** "maxTokens" -> "--max-tokens" */
export const keyToFlag = (key: string) => '--' + toKebab(key);

/** Checks one value against its key's rule; throws "Expected `--order` to be ..., got `7`". */
export function checkValue(key: string, value: unknown, origin = keyToFlag(key)): void {
  if (!(key in SETTINGS)) {
    const camel = toCamel(key);
    throw new TypeError(`Unknown setting \`${origin}\`${didYouMean(camel in SETTINGS ? camel : nearest(key, Object.keys(SETTINGS)))}`);
  }
  const expected = SETTINGS[key as ConfigKey].check(value, key);
  if (expected) throw new TypeError(`Expected \`${origin}\` to be ${expected}, got \`${JSON.stringify(value)}\``);
}

/** Validates a parsed config file: unknown keys and bad values are rejected with the key named. */
export function validateConfigObject(object: unknown, file: string): Partial<Config> {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) {
    throw new TypeError(`Expected ${file} to hold a JSON object of settings`);
  }
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    // A single string where a list is expected is the list of that one string.
    settings[key] = typeof value === 'string' && Array.isArray(SETTINGS[key as ConfigKey]?.default) ? [value] : value;
    checkValue(key, settings[key], `${key}\` in \`${file}`);
  }
  return settings as Partial<Config>;
}

/** Merges defaults, then a config file's settings, then flags; validates the result. */
export function resolveConfig(...layers: Partial<Config>[]): Config {
  const config = { ...DEFAULTS, ...Object.assign({}, ...layers) } as Config;
  for (const key of Object.keys(SETTINGS) as ConfigKey[]) checkValue(key, config[key]);
  return config;
}

/** One line per setting for --help: flag, doc, choices and default, all from SETTINGS. */
export function describeSettings(): string {
  return Object.entries(SETTINGS).map(([key, setting]) => {
    const value = setting.default as unknown;
    const shown = Array.isArray(value) ? value.join(' ') || '(none)' : String(value) || '(none)';
    const choices = (setting.check as Check).choices ? ` (${(setting.check as Check).choices!.join(' | ')})` : '';
    return `  ${keyToFlag(key).padEnd(20)} ${setting.doc}${choices} [default: ${shown}]`;
  }).join('\n');
}
