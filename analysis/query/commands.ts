/**
 * The subcommands of `npm run query`. Each takes the parsed arguments and the run's queries and
 * returns both renderings of its answer: `json` (printed with --json) and `text` (a table).
 */
import type { CommandSpec, FlagSpec, FlagValue } from '../../pipeline/args.ts';
import { formatInteger, formatNumber, keyValues, showNgram, showToken, showValue, table } from './_format.ts';
import type { Queries } from '../../storage/queries.ts';
import { MAX_ORDER } from '../../storage/schema.ts';
import { ngramModel } from '../ngram-model.ts';
import { heldOutKnPerplexity, heldOutPerplexity, modelCounts } from './_perplexity.ts';
import { arpaChunks, BOS, knKnows, knScore, storedKneserNey, UNK, type KnModel } from '../kn/index.ts';
import { writeFileAtomic } from '../../lib/checkpoint.ts';
import { zipfFit } from '../zipf-fit.ts';
import { LmpipeError } from '../../lib/errors.ts';

export interface QueryContext {
  q: Queries;
  positionals: string[];
  flags: Record<string, FlagValue | undefined>;
}

export interface QueryAnswer {
  json: unknown;
  text: string;
}

export interface QueryCommand extends CommandSpec {
  run(ctx: QueryContext): Promise<QueryAnswer> | QueryAnswer;
}

const EPS_FLAGS: Record<string, FlagSpec> = Object.fromEntries(
  Array.from({ length: MAX_ORDER }, (_, i) => [
    `eps${i + 1}`,
    { kind: 'number', min: 0, default: 1, help: `ε${i + 1}, smoothing of ${i + 1}-gram estimates` } satisfies FlagSpec,
  ]),
);

const epsOf = (flags: QueryContext['flags']) => Array.from({ length: MAX_ORDER }, (_, i) => flags[`eps${i + 1}`] as number);

const SMOOTHING_FLAG: FlagSpec = {
  kind: 'string', value: 'S', default: 'laplace',
  help: 'laplace (d2l 8.3) or kn (interpolated modified Kneser-Ney, as KenLM lmplz, of the sentence counts)',
};
const FALLBACK_FLAG: FlagSpec = { kind: 'boolean', default: false, help: "kn: lmplz's fallback discounts (0.5 1 1.5, with a warning) where the data cannot give them" };

function smoothingOf(flags: QueryContext['flags']): 'laplace' | 'kn' {
  const smoothing = flags.smoothing as string;
  if (smoothing !== 'laplace' && smoothing !== 'kn') throw new TypeError(`Expected \`--smoothing\` to be laplace or kn, got \`${smoothing}\``);
  return smoothing;
}

function knModel(q: Queries, order: number, flags: QueryContext['flags']): KnModel {
  return storedKneserNey(q, { order, discountFallback: flags['discount-fallback'] === true, warn: (line) => process.stderr.write(`warning: ${line}\n`) });
}

/** The counted order; 0 means the count stage has written nothing yet. */
function countedOrder(q: Queries): number {
  const order = q.order();
  if (order === 0) throw new LmpipeError('STATE', 'The database holds no n-gram counts yet; run `npm start` (or `npm run pipeline`) first');
  return order;
}

function checkN(q: Queries, n: number, flag = '--n'): void {
  const order = countedOrder(q);
  if (n > order) throw new RangeError(`Expected \`${flag}\` to be at most ${order} (the order this run counted), got \`${n}\``);
}

const top: QueryCommand = {
  name: 'top',
  usage: 'top [--n N] [--k K]',
  summary: 'The K most frequent n-grams of order N, with counts and relative frequencies',
  flags: {
    n: { kind: 'integer', min: 1, default: 1, help: 'N-gram order' },
    k: { kind: 'integer', min: 1, default: 10, value: 'K', help: 'How many to show' },
  },
  positionals: { min: 0, max: 0, name: 'nothing' },
  notes: ['Example: npm run query -- top --n 2 --k 10', 'Ties are listed in first-occurrence order of their tokens.'],
  run({ q, flags }) {
    const n = flags.n as number;
    checkN(q, n);
    const { total, distinct } = q.totals(n);
    const rows = q.top(n, flags.k as number).map((row, i) => ({ rank: i + 1, ...row, frequency: row.count / total }));
    const text = [
      `Top ${rows.length} of ${formatInteger(distinct)} distinct ${n}-grams (${formatInteger(total)} occurrences)`,
      table(['rank', 'n-gram', 'count', 'frequency'], rows.map((row) =>
        [String(row.rank), showNgram(row.tokens), formatInteger(row.count), formatNumber(row.frequency)]), [true, false, true, true]),
    ].join('\n');
    return { json: { n, total, distinct, rows }, text };
  },
};

const count: QueryCommand = {
  name: 'count',
  usage: 'count <tokens...>',
  summary: 'How often the n-gram made of these tokens occurs (n = number of tokens)',
  flags: {},
  positionals: { min: 1, max: MAX_ORDER, name: 'one or more tokens' },
  notes: ['Examples: npm run query -- count of the', "          npm run query -- count t ' ' m     (d2l-char: a space token)"],
  run({ q, positionals }) {
    checkN(q, positionals.length, 'the number of tokens');
    const ids = positionals.map((token) => q.tokenId(token));
    const unknown = positionals.filter((_, i) => ids[i] === undefined);
    const value = unknown.length > 0 ? 0 : q.ngramCount(ids as number[]);
    const pairs: [string, string][] = [['n-gram', showNgram(positionals)], ['count', formatInteger(value)]];
    if (unknown.length > 0) pairs.push([`unknown token${unknown.length > 1 ? 's' : ''}`, unknown.map(showToken).join(', ')]);
    return { json: { tokens: positionals, n: positionals.length, count: value, unknown }, text: keyValues(pairs) };
  },
};

const vocab: QueryCommand = {
  name: 'vocab',
  usage: 'vocab [--k K]',
  summary: 'The first K vocabulary entries (id, token, count) and the vocabulary size',
  flags: { k: { kind: 'integer', min: 0, default: 20, value: 'K', help: 'How many entries to show' } },
  positionals: { min: 0, max: 0, name: 'nothing' },
  notes: ['Example: npm run query -- vocab --k 28', 'Ids follow d2l: <unk> is 0, then the reserved tokens, then by count.'],
  run({ q, flags }) {
    const size = q.vocabSize();
    if (size === 0) throw new LmpipeError('STATE', 'The vocabulary is empty; run `npm run pipeline -- --until vocab` first');
    const rows = q.vocab(flags.k as number);
    const text = [
      `Vocabulary of ${formatInteger(size)} tokens${rows.length < size ? ` (first ${rows.length} shown)` : ''}`,
      table(['id', 'token', 'count'], rows.map((row) => [String(row.id), showToken(row.token), formatInteger(row.count)]), [true, false, true]),
    ].join('\n');
    return { json: { size, rows }, text };
  },
};

const prob: QueryCommand = {
  name: 'prob',
  usage: 'prob <token> [--given <tokens...>]',
  summary: 'Maximum-likelihood and Laplace-smoothed P(token | given) (d2l 8.3)',
  flags: {
    given: { kind: 'list', value: '<tokens...>', help: 'The history, oldest token first', default: [] },
    smoothing: SMOOTHING_FLAG, 'discount-fallback': FALLBACK_FLAG, ...EPS_FLAGS,
  },
  positionals: { min: 1, max: 1, name: 'a token' },
  notes: [
    'Example: npm run query -- prob time --given the --eps2 0.5',
    'P(x) = (n(x) + ε1/m) / (n + ε1); P(w|h) = (n(h,w) + εk·P(w|h minus its first token)) / (n(h) + εk), k = |h|+1;',
    'n = tokens, m = distinct tokens. An unseen history backs off to the shorter one.',
    '--smoothing kn: the Kneser-Ney model of the highest counted order, as KenLM scores a word',
    '(the longest n-gram in the model, times the backoffs of the longer histories); no --given means',
    'the null context, --given "<s>" the start of a sentence. Unknown tokens are <unk>.',
  ],
  run({ q, positionals, flags }) {
    const [token] = positionals;
    const given = flags.given as string[];
    if (smoothingOf(flags) === 'kn') return knProb(q, token, given, flags);
    const order = countedOrder(q);
    if (given.length > order - 1) {
      throw new RangeError(`Expected at most ${order - 1} tokens after \`--given\` (this run counted up to order ${order}), got ${given.length}`);
    }
    const counts = modelCounts(q);
    const eps = epsOf(flags);
    const model = ngramModel(counts, { eps, order });
    const levels = model.estimates(q.tokenId(token), given.map((word) => q.tokenId(word))).map((level) => ({
      given: given.slice(given.length - level.history),
      ...level,
    }));
    const last = levels.at(-1)!;
    const label = (history: string[]) => `P(${showToken(token)}${history.length ? ' | ' + showNgram(history) : ''})`;
    const unknown = [token, ...given].filter((word) => q.tokenId(word) === undefined);
    const text = [
      `n = ${formatInteger(counts.tokens)} tokens, m = ${formatInteger(counts.types)} types, ` +
        eps.slice(0, given.length + 1).map((e, i) => `ε${i + 1} = ${e}`).join(', '),
      table(['estimate', 'n(h,w)', 'n(h)', 'MLE', 'smoothed'], levels.map((level) => [
        label(level.given), formatInteger(level.count), formatInteger(level.historyCount), formatNumber(level.mle), formatNumber(level.smoothed),
      ]), [false, true, true, true, true]),
      ...(unknown.length ? [`unknown: ${unknown.map(showToken).join(', ')}`] : []),
    ].join('\n');
    const json = { token, given, tokens: counts.tokens, types: counts.types, eps: eps.slice(0, given.length + 1), mle: last.mle, smoothed: last.smoothed, levels, unknown };
    return { json, text };
  },
};

function knProb(q: Queries, token: string, given: string[], flags: QueryContext['flags']): QueryAnswer {
  const order = Math.max(2, q.sentenceOrder());
  if (given.length > order - 1) {
    throw new RangeError(`Expected at most ${order - 1} tokens after \`--given\` (the sentence counts go up to order ${order}), got ${given.length}`);
  }
  const model = knModel(q, order, flags);
  const idOf = (word: string) => {
    if (word === '<s>') return BOS;
    const id = q.tokenId(word);
    return knKnows(model, id) ? id : UNK;
  };
  const { logProb, ngramLength } = knScore(model, given.map(idOf), idOf(token));
  const unknown = [token, ...given].filter((word) => word !== '<s>' && idOf(word) === UNK);
  const label = `P(${showToken(token)}${given.length ? ' | ' + showNgram(given) : ''})`;
  const text = keyValues([
    ['model', `interpolated modified Kneser-Ney, order ${order} (as KenLM lmplz)`],
    ['estimate', label],
    ['n-gram found', `${ngramLength}-gram${ngramLength < given.length + 1 ? ' (backed off)' : ''}`],
    ['log10 P', formatNumber(logProb)],
    ['P', formatNumber(10 ** logProb)],
    ...(unknown.length ? [['unknown (<unk>)', unknown.map(showToken).join(', ')] as [string, string]] : []),
  ]);
  return { json: { token, given, smoothing: 'kn', order, log10Prob: logProb, prob: 10 ** logProb, ngramLength, unknown }, text };
}

const arpa: QueryCommand = {
  name: 'arpa',
  usage: 'arpa [--order N] [--file PATH]',
  summary: 'Interpolated modified Kneser-Ney of the sentence counts, as KenLM lmplz writes it (ARPA)',
  flags: {
    order: { kind: 'integer', min: 2, help: 'Model order, 2 to 5 [default: the counted order]' },
    file: { kind: 'string', value: 'PATH', help: 'Write the model here (temp file + rename) instead of to stdout' },
    'discount-fallback': FALLBACK_FLAG,
  },
  positionals: { min: 0, max: 0, name: 'nothing' },
  notes: [
    'Example: npm run -s query -- arpa --order 3 --out runs/tm > tm3.arpa',
    'Sentences are the lines of the input (<s> ... </s>), as lmplz reads its text; the same',
    'n-grams, adjusted counts, discounts (Chen & Goodman eq. 26) and log10 values as lmplz, no pruning.',
  ],
  run({ q, flags }) {
    const order = (flags.order as number | undefined) ?? Math.max(2, q.sentenceOrder());
    if (order > MAX_ORDER) throw new RangeError(`Expected \`--order\` to be an integer from 2 to ${MAX_ORDER}, got \`${order}\``);
    const model = knModel(q, order, flags);
    const tokens = q.tokens();
    const chunks = [...arpaChunks(model, (id) => tokens[id])];
    const ngrams = model.grams.map((grams) => grams.size);
    const json = { order, ngrams, discounts: model.discounts, file: flags.file ?? null };
    const file = flags.file as string | undefined;
    if (file === undefined) return { json: { ...json, arpa: chunks.join('') }, text: chunks.join('').replace(/\n$/, '') };
    const encoder = new TextEncoder();
    writeFileAtomic(file, chunks.map((chunk) => encoder.encode(chunk)));
    const text = `${file}: order ${order}, ${ngrams.map((count, i) => `${formatInteger(count)} ${i + 1}-grams`).join(', ')}`;
    return { json, text };
  },
};

const zipf: QueryCommand = {
  name: 'zipf',
  usage: 'zipf [--n N] [--from R1] [--to R2]',
  summary: "Least-squares fit of Zipf's law log n_i = -α·log i + c over ranks R1..R2",
  flags: {
    n: { kind: 'integer', min: 1, default: 1, help: 'N-gram order' },
    from: { kind: 'integer', min: 1, default: 1, value: 'R1', help: 'First rank fitted' },
    to: { kind: 'integer', min: 2, value: 'R2', help: 'Last rank fitted [default: the last rank with a count above 1]' },
  },
  positionals: { min: 0, max: 0, name: 'nothing' },
  notes: [
    'Example: npm run query -- zipf --n 1 --from 10 --to 1000',
    'Ranks are ordinal (ties get consecutive ranks). The default range leaves out the n-grams seen once:',
    'they share one count, and their arbitrary ranks form a flat tail that would drag α down.',
  ],
  run({ q, flags }) {
    const n = flags.n as number;
    checkN(q, n);
    const fit = zipfFit(q.spectrum(n), { from: flags.from as number, to: flags.to as number | undefined });
    const text = [
      `Zipf fit of ${n}-gram counts over ranks ${formatInteger(fit.from)}..${formatInteger(fit.to)} of ${formatInteger(fit.ranks)}`,
      keyValues([['alpha', formatNumber(fit.alpha)], ['c', formatNumber(fit.c)], ['R²', formatNumber(fit.r2)], ['points', formatInteger(fit.points)]]),
    ].join('\n');
    return { json: { n, ...fit }, text };
  },
};

const perplexity: QueryCommand = {
  name: 'perplexity',
  usage: 'perplexity <file> [--n N]',
  summary: 'Perplexity of the smoothed N-gram model on held-out text',
  flags: {
    n: { kind: 'integer', min: 1, default: 3, help: 'Model order (at most the counted order)' },
    smoothing: SMOOTHING_FLAG, 'discount-fallback': FALLBACK_FLAG, ...EPS_FLAGS,
  },
  positionals: { min: 1, max: 1, name: 'a file (or - for standard input)' },
  notes: [
    'Example: npm run query -- perplexity ../shared/corpora/wikitext-2/valid.txt --n 2',
    "The input is read and tokenized as the run's corpus was (text, .gz, JSON with the run's --json-field);",
    'histories never reach before a document start. Tokens never counted (OOV) are not scored (as',
    "SRILM's ppl) but count in the histories they are in, which then back off past them.",
    "--smoothing kn scores as KenLM's query: each line a sentence, its words and </s>, OOVs as <unk>;",
    'it prints the perplexity including and excluding OOVs.',
  ],
  async run({ q, positionals, flags }) {
    const n = flags.n as number;
    if (smoothingOf(flags) === 'kn') return knPerplexity(q, positionals[0], n, flags);
    checkN(q, n);
    const [file] = positionals;
    const result = await heldOutPerplexity(q, file, { order: n, eps: epsOf(flags) });
    const pairs: [string, string][] = [
      ['file', file], ['order', String(n)], ['tokenizer', result.tokenizer], ['tokens', formatInteger(result.tokens)],
      ['oov', formatInteger(result.oov)], ['evaluated', formatInteger(result.evaluated)],
      ['cross-entropy', `${formatNumber(result.crossEntropy)} nats/token`], ['perplexity', formatNumber(result.perplexity)],
    ];
    if (result.invalidUtf8 > 0) pairs.push(['invalid UTF-8', `${formatInteger(result.invalidUtf8)} sequences replaced with U+FFFD`]);
    return { json: { file, n, ...result }, text: keyValues(pairs) };
  },
};

async function knPerplexity(q: Queries, file: string, n: number, flags: QueryContext['flags']): Promise<QueryAnswer> {
  if (n < 2 || n > MAX_ORDER) throw new RangeError(`Expected \`--n\` to be from 2 to ${MAX_ORDER} with --smoothing kn, got \`${n}\``);
  const result = await heldOutKnPerplexity(q, file, knModel(q, n, flags));
  const pairs: [string, string][] = [
    ['file', file], ['model', `Kneser-Ney order ${n}`], ['tokenizer', result.tokenizer], ['sentences', formatInteger(result.sentences)],
    ['tokens', `${formatInteger(result.tokens)} (words and </s>)`], ['oov', formatInteger(result.oovs)],
    ['perplexity including OOVs', formatNumber(result.includingOovs)], ['perplexity excluding OOVs', formatNumber(result.excludingOovs)],
  ];
  if (result.invalidUtf8 > 0) pairs.push(['invalid UTF-8', `${formatInteger(result.invalidUtf8)} sequences replaced with U+FFFD`]);
  return { json: { file, n, smoothing: 'kn', ...result }, text: keyValues(pairs) };
}

/** SQL values as JSON: integers past 2^53 as strings (exact), blobs as hex. */
function jsonValue(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : String(value);
  if (value instanceof Uint8Array) return Array.from(value, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return value;
}

const sql: QueryCommand = {
  name: 'sql',
  usage: 'sql "<SELECT ...>"',
  summary: 'Runs one read-only statement (SELECT, WITH, VALUES, EXPLAIN, reading PRAGMA)',
  flags: { 'max-rows': { kind: 'integer', min: 0, default: 1000, help: 'Rows shown at most (0: all)' } },
  positionals: { min: 1, max: 1, name: 'one SQL statement (quoted)' },
  notes: [
    `Example: npm run query -- sql "SELECT count FROM ngram_counts WHERE tokens = json_array('of','the')"`,
    'Public tables: vocab(id, token, count), ngram_counts(n, tokens, count), metrics, samples, meta.',
  ],
  run({ q, positionals, flags }) {
    const result = q.select(positionals[0], flags['max-rows'] as number);
    const rows = result.rows.map((row) => result.columns.map((column) => showValue(row[column])));
    const numeric = result.columns.map((column) => result.rows.every((row) => typeof row[column] === 'number' || typeof row[column] === 'bigint'));
    const text = result.columns.length === 0 ? '(no rows)' : [
      table(result.columns, rows, numeric),
      ...(result.truncated ? [`(only the first ${rows.length} rows shown; use --max-rows 0 for all)`] : []),
    ].join('\n');
    const jsonRows = result.rows.map((row) => Object.fromEntries(Object.entries(row).map(([key, value]) => [key, jsonValue(value)])));
    const json = { columns: result.columns, rows: jsonRows, truncated: result.truncated };
    return { json, text };
  },
};

export const QUERY_COMMANDS: readonly QueryCommand[] = [top, count, vocab, prob, zipf, perplexity, arpa, sql];
