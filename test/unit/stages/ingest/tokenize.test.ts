import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TextChunk, TokenizerName } from '../../../../pipeline/types.ts';
import { planShards, read } from '../../../../stages/ingest/read.ts';
import { createTokenizer, Interner, tokenize, tokenizeText } from '../../../../stages/ingest/tokenize.ts';
import { collect, fromArray, random, randomCuts, randomText } from '../../../helpers/tokenize-fixtures.ts';

const corpora = fileURLToPath(new URL('../../../../../shared/corpora/', import.meta.url));
const timeMachine = join(corpora, 'timemachine/timemachine.txt');
const tangPoems = join(corpora, 'chinese-poetry/quan_tang_shi/poet.tang.0.json');
const oracle = fileURLToPath(new URL('../../../oracles/d2l-oracle.py', import.meta.url));
const hasPython = spawnSync('python3', ['--version']).status === 0;
const noCorpus = !existsSync(timeMachine) && `corpus not found: ${timeMachine}`;
const TOKENIZERS: TokenizerName[] = ['d2l-word', 'd2l-char', 'word', 'char'];

const dir = mkdtempSync(join(tmpdir(), 'lmpipe-tokenize-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Tokens of a file through planShards -> read -> tokenize, one tokenizer per shard. */
async function fileTokens(path: string, tokenizer: TokenizerName, shardBytes = 1 << 30): Promise<string[]> {
  const tokens: string[] = [];
  for (const shard of await planShards([path], { shardBytes })) {
    const interner = new Interner();
    for await (const batch of tokenize(read([shard]), { tokenizer, interner })) {
      for (const id of batch.ids) tokens.push(interner.token(id));
    }
  }
  return tokens;
}

/** d2l's Vocab order: descending count, ties by first occurrence. */
function byFrequency(tokens: string[]): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]); // stable: Map keeps first-occurrence order
}

interface OracleResult {
  word: string[];
  char: string[];
  word_freqs: Array<[string, number]>;
  char_freqs: Array<[string, number]>;
}

/** One python3 run for all the files: its start-up alone takes seconds on a busy machine. */
function runOracle(paths: string[]): OracleResult[] {
  const result = spawnSync('python3', [oracle, ...paths], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (result.status !== 0) throw new Error(`d2l-oracle.py failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** Equal token lists, compared fast (tap's deep comparison of 170k items takes seconds). */
function sameTokens(t: Test, actual: string[], expected: string[], message: string): void {
  if (JSON.stringify(actual) === JSON.stringify(expected)) return void t.pass(message);
  const at = actual.findIndex((token, k) => token !== expected[k]);
  t.same(actual.slice(Math.max(0, at - 5), at + 5), expected.slice(Math.max(0, at - 5), at + 5), `${message}: first difference at token ${at}`);
}

function chunk(text: string, documentStart: boolean, documentEnd?: boolean): TextChunk {
  return { text, documentStart, documentEnd, source: 'test', position: 0 };
}

t.test('tokenize() on The Time Machine gives the d2l book figures', { skip: noCorpus }, async (t) => {
  const chars = await fileTokens(timeMachine, 'd2l-char');
  t.equal(chars.length, 170580, '170,580 char tokens');
  const charVocab = byFrequency(chars).map(([token]) => token);
  t.same(charVocab, [' ', ...'etainoshrdlmucfwgypbvkxzjq'], "27 chars in the book's order");
  const words = await fileTokens(timeMachine, 'd2l-word');
  t.equal(words.length, 32775, '32,775 word tokens');
  t.equal(new Set(words).size, 4579, '4,579 word types');
  sameTokens(t, await fileTokens(timeMachine, 'd2l-char', 20000), chars, 'the same char stream from 20 kB shards');
  sameTokens(t, await fileTokens(timeMachine, 'd2l-word', 20000), words, 'the same word stream from 20 kB shards');
});

t.test('tokenize() on The Time Machine equals the d2l code in Python', { skip: noCorpus || (!hasPython && 'python3 not found') }, async (t) => {
  const [chars, words] = [await fileTokens(timeMachine, 'd2l-char'), await fileTokens(timeMachine, 'd2l-word')];
  const [expected] = runOracle([timeMachine]);
  sameTokens(t, chars, expected.char, 'char stream equals the d2l code in Python');
  sameTokens(t, words, expected.word, 'word stream equals the d2l code in Python');
  t.same(byFrequency(words).slice(0, 50), expected.word_freqs.slice(0, 50), "top 50 of d2l's Vocab.token_freqs");
  t.same(byFrequency(chars), expected.char_freqs, "d2l's char token_freqs");
});

t.test('d2l tokenizers equal the d2l Python code on random text with punctuation, CR/LF and Unicode', { skip: !hasPython && 'python3 not found' }, async (t) => {
  const rng = random(7);
  const paths = [0, 1, 2, 3].map((round) => join(dir, `random-${round}.txt`));
  for (const path of paths) writeFileSync(path, randomText(rng, 3000));
  const results = runOracle(paths);
  for (const [round, path] of paths.entries()) {
    const expected = results[round];
    const shardBytes = 200 + Math.floor(rng() * 3000);
    sameTokens(t, await fileTokens(path, 'd2l-word', shardBytes), expected.word, `d2l-word, round ${round}`);
    sameTokens(t, await fileTokens(path, 'd2l-char', shardBytes), expected.char, `d2l-char, round ${round}`);
  }
});

t.test('char tokenizer equals code points with whitespace runs as one space, trimmed', async (t) => {
  const rng = random(11);
  for (let round = 0; round < 20; round++) {
    const text = randomText(rng, 200);
    t.same(tokenizeText(text, { tokenizer: 'char' }), Array.from(text.trim().replace(/\s+/g, ' ')), `round ${round}`);
  }
  t.same(tokenizeText('  A😀b  \n', { tokenizer: 'char', lowercase: true }), ['a', '😀', 'b'], 'code points, lowercased, trimmed');
});

t.test('word tokenizer equals Intl.Segmenter word-like segments on the whole text', async (t) => {
  const segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });
  const rng = random(13);
  for (let round = 0; round < 25; round++) {
    const text = randomText(rng, 400);
    const expected = Array.from(segmenter.segment(text)).filter((s) => s.isWordLike).map((s) => s.segment);
    t.same(tokenizeText(text, { tokenizer: 'word' }), expected, `round ${round}`);
    if (round === 0) {
      const lower = tokenizeText(text, { tokenizer: 'word', lowercase: true });
      t.same(lower, expected.map((token) => token.toLowerCase()), 'lowercase');
    }
  }
  // Text of the direct scanner's units only, against the segmenter on every mark combination.
  const marks = ['a', 'B', '7', '_', '.', "'", ':', ',', ';', ' ', '\n', '-', '"', '\u2018', '\u2019', '\u2024', '\u201c', '\u201d', '\u2013', '\u2014', '\u2026', '\u00ab', '\u00bb', '\u00a0'];
  let ascii = '';
  for (let k = 0; k < 30000; k++) ascii += marks[Math.floor(rng() * marks.length)];
  const lines = ascii.split('\n');
  const expected = lines.flatMap((line) => Array.from(segmenter.segment(line)).filter((s) => s.isWordLike).map((s) => s.segment));
  t.same(tokenizeText(ascii, { tokenizer: 'word' }), expected, 'ASCII and common marks: UAX #29 rules as ICU applies them');
});

t.test('word tokenizer splits Tang poems into CJK words', { skip: !existsSync(tangPoems) && 'corpus not found' }, async (t) => {
  const segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });
  const records = (await collect(read(await planShards([tangPoems]), { jsonField: 'paragraphs' }))).slice(0, 200);
  t.equal(records.length, 200);
  let tokens = 0;
  for (const record of records) {
    const words = tokenizeText(record.text, { tokenizer: 'word' });
    const expected = Array.from(segmenter.segment(record.text)).filter((s) => s.isWordLike).map((s) => s.segment);
    if (JSON.stringify(words) !== JSON.stringify(expected)) t.same(words, expected, `record ${record.position}`);
    if (!words.every((word) => /^\p{Script=Han}+$/u.test(word))) t.fail(`non-Han token in record ${record.position}`);
    tokens += words.length;
  }
  t.ok(tokens > 5000, `${tokens} Han words from 200 poems, all equal to Intl.Segmenter on the whole poem`);
});

/**
 * Each tokenizer written from its spec in a line or two, with nothing of lmpipe's: d2l cleans each
 * line (Python's universal newlines: \n, \r\n, \r) with re.sub('[^A-Za-z]+', ' ', line).strip().lower(),
 * then splits it (d2l-word) or joins the lines with no separator (d2l-char); char collapses
 * whitespace runs and trims; word keeps Intl.Segmenter's word-like segments.
 */
function specTokens(text: string, tokenizer: TokenizerName): string[] {
  const d2lLines = () => text.split(/\r\n|\r|\n/).map((line) => line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase());
  if (tokenizer === 'd2l-word') return d2lLines().flatMap((line) => line.split(' ').filter(Boolean));
  if (tokenizer === 'd2l-char') return Array.from(d2lLines().join(''));
  if (tokenizer === 'char') return Array.from(text.trim().replace(/\s+/g, ' '));
  const segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });
  return Array.from(segmenter.segment(text)).filter((s) => s.isWordLike).map((s) => s.segment);
}

t.test('invariance: tokenize() gives the same tokens wherever the chunks are cut, and they follow each spec', async (t) => {
  const rng = random(17);
  for (const tokenizer of TOKENIZERS) {
    for (let round = 0; round < 6; round++) {
      const documents = [randomText(rng, 300), randomText(rng, 5), randomText(rng, 300)];
      const markEnd = round % 2 === 0; // with documentEnd, and without (then tokenize() calls end())
      const chunks = documents.flatMap((text) => {
        const pieces = randomCuts(rng, text, 1 + Math.floor(rng() * 40));
        if (pieces.length === 0) pieces.push('');
        return pieces.map((piece, k) => chunk(piece, k === 0, markEnd ? k === pieces.length - 1 : undefined));
      });
      const interner = new Interner();
      const perDocument: string[][] = [];
      for await (const batch of tokenize(fromArray(chunks), { tokenizer, interner })) {
        if (batch.documentStart) perDocument.push([]);
        perDocument[perDocument.length - 1].push(...Array.from(batch.ids, (id) => interner.token(id)));
      }
      const whole = documents.map((text) => tokenizeText(text, { tokenizer }));
      t.same(perDocument, whole, `${tokenizer}, round ${round}${markEnd ? '' : ', no documentEnd'}: as the uncut documents`);
      t.same(perDocument, documents.map((text) => specTokens(text, tokenizer)), `${tokenizer}, round ${round}: as the spec`);
    }
  }
});

t.test('char tokenizer gap flags rebuild the whole document across shard cuts', async (t) => {
  const rng = random(19);
  for (let round = 0; round < 10; round++) {
    const text = randomText(rng, 400) + (round % 3 === 0 ? '\n   \n  \n' + randomText(rng, 50) : '');
    const lines = text.split(/(?<=\n)/);
    // Shards of a few lines each, tokenized apart, merged as the count merger does.
    const shards: string[] = [];
    for (let at = 0; at < lines.length; ) {
      const next = at + 1 + Math.floor(rng() * 4);
      shards.push(lines.slice(at, next).join(''));
      at = next;
    }
    const merged: string[] = [];
    let gap = false;
    shards.forEach((shard, k) => {
      const interner = new Interner();
      const tokenizer = createTokenizer({ tokenizer: 'char', interner });
      const ids = tokenizer.push(chunk(shard, k === 0, k === shards.length - 1));
      const tokens = Array.from(ids, (id) => interner.token(id));
      if (tokens.length === 0) {
        gap = gap || tokenizer.leadingGap || tokenizer.trailingGap;
        return;
      }
      if (merged.length > 0 && (gap || tokenizer.leadingGap)) merged.push(' ');
      merged.push(...tokens);
      gap = tokenizer.trailingGap;
    });
    t.same(merged, tokenizeText(text, { tokenizer: 'char' }), `round ${round}, ${shards.length} shards`);
  }
});

t.test('Interner gives ids in first-occurrence order and back', async (t) => {
  const interner = new Interner();
  const words = Array.from({ length: 5000 }, (_, k) => `w${(k * 7919) % 3001}`);
  const ids = words.map((word) => interner.id(word));
  const firstSeen = [...new Set(words)];
  t.same(interner.tokens(), firstSeen, 'tokens() in first-occurrence order');
  t.equal(interner.size, firstSeen.length);
  t.ok(ids.every((id, k) => interner.token(id) === words[k]), 'token(id(x)) is x');
  t.equal(interner.id(''), firstSeen.length, 'the empty string is a token too');
  t.throws(() => interner.token(99999), RangeError);
});

t.test('createTokenizer() rejects an unknown tokenizer name', async (t) => {
  t.throws(
    () => createTokenizer({ tokenizer: 'bpe' as TokenizerName, interner: new Interner() }),
    { message: 'Expected `--tokenizer` to be one of d2l-word, d2l-char, word, char, got `bpe`' },
  );
});
