import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TokenBatch } from '../../../../pipeline/types.ts';
import { count, countStage } from '../../../../stages/count/count.ts';
import { NgramTable, ngramHash } from '../../../../stages/count/_table.ts';
import { insertNgrams, saveCounts } from '../../../../storage/counts.ts';
import { sortByKey } from '../../../../stages/count/_sort.ts';
import { loadStage } from '../../../../storage/stages.ts';
import {
  charOracle, d2lWordOracle, wordOracle, databaseCounts, drain, dumpTables, oracleCounts, random, randomText, stageContext, streamTokens,
} from '../../../oracles/count-oracle.ts';

const corpora = new URL('../../../../../shared/corpora/', import.meta.url);
const timeMachine = new URL('timemachine/timemachine.txt', corpora).pathname;

t.test('count() matches a brute-force counter on random batches, orders 1..5', async (t) => {
  const next = random(7);
  const batches: TokenBatch[] = [];
  const documents: string[][] = [];
  for (let b = 0; b < 200; b++) {
    const documentStart = b === 0 || next() < 0.15;
    const ids = Int32Array.from({ length: Math.floor(next() * 9) }, () => Math.floor(next() * next() * 12));
    batches.push({ ids, documentStart });
    if (documentStart) documents.push([]);
    documents[documents.length - 1].push(...Array.from(ids, String));
  }
  const tables = await count(batches, { order: 5 });
  const expected = oracleCounts(documents, 5);
  const actual = new Map<string, number>();
  tables.keys.forEach((keys, i) => {
    const n = i + 1;
    tables.counts[i].forEach((value, row) => {
      actual.set(`${n}\t${JSON.stringify(Array.from(keys.subarray(row * n, row * n + n), String))}`, value);
    });
  });
  t.same(actual, expected);
  t.same(Array.from(tables.stream, String), documents.flat(), 'the stream is every token in order');
  t.equal(tables.documents, documents.length);
});

t.test('NgramTable keeps every key through many doublings', async (t) => {
  const table = new NgramTable(3, 16);
  const key = new Int32Array(3);
  const identity = Int32Array.from({ length: 5000 }, (_, id) => id);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 5000; i++) {
      key.set([i % 97, i % 89, i]);
      table.add(key, 0, ngramHash(key, 0, 3, identity), 1);
    }
  }
  t.equal(table.size, 5000);
  t.equal(table.total, 10000);
  let wrong = 0;
  table.forEach((keys, offset, value) => {
    if (value !== 2 || keys[offset] !== keys[offset + 2] % 97) wrong++;
  });
  t.equal(wrong, 0, 'each key counted twice, keys intact');
});

t.test('sortByKey orders keys of any size (and the sentence markers, < 0) as a comparison sort does; insertNgrams writes them, saveCounts adds unigrams', async (t) => {
  const ctx = stageContext(mkdtempSync(join(tmpdir(), 'lmpipe-count-')), {});
  const next = random(3);
  // Dense ids past 65535 (a counting sort with more than one 16-bit digit), then sparse ones, then
  // sentence keys: ids from -2 (</s> -2 and <s> -1, in the table sentenceN).
  for (const [order, size, range, shift] of [[3, 20000, 100_000, 0], [2, 700, 2 ** 31, 0], [3, 3000, 40, 2]] as const) {
    const distinct = new Map<string, number[]>();
    while (distinct.size < size) {
      const key = Array.from({ length: order }, () => Math.floor(next() * next() * range) - shift);
      distinct.set(key.join(' '), key);
    }
    const keys = Int32Array.from([...distinct.values()].flat());
    const sorted = sortByKey(keys, order, size);
    const expected = [...distinct.values()].sort((a, b) => a.reduce((c, x, k) => c || x - b[k], 0));
    t.same(Array.from(sorted, (row) => Array.from(keys.subarray(row * order, row * order + order))), expected, `order ${order}, ids below ${range}`);
    const rows = { keys: Int32Array.from(Array.from(sorted, (row) => Array.from(keys.subarray(row * order, row * order + order))).flat()), counts: Float64Array.from({ length: size }, (_, i) => i + 1) };
    const table = shift > 0 ? 'sentence' : 'ngram';
    insertNgrams(ctx.db, { name: table, n: order }, rows);
    const columns = order === 3 ? 'w1, w2, w3' : 'w1, w2';
    const stored = ctx.db.prepare(`SELECT ${columns}, count FROM ${table}${order}`).all().map((row) => Object.values(row).map(Number));
    t.same(stored, expected.map((key, i) => [...key, i + 1]), 'stored in key order with their counts');
  }
  const unigrams = (keys: Int32Array, counts: Float64Array) => [{ order: 1, keys, stride: 1, offset: 0, counts, countStride: 1, countOffset: 0, rows: Int32Array.from(keys, (_, row) => row) }];
  saveCounts(ctx.db, { firstTokenId: 0, tokens: ['a', 'b'], ngrams: unigrams(Int32Array.of(0, 2, 5), Float64Array.of(1, 2, 3)) }, { fingerprint: 'f', record: {} });
  saveCounts(ctx.db, { firstTokenId: 2, tokens: ['c'], ngrams: unigrams(Int32Array.of(2, 7), Float64Array.of(10, 1)) }, { fingerprint: 'f', record: {} });
  t.same(ctx.db.prepare('SELECT w1, count FROM ngram1').all().map((row) => [row.w1, row.count]), [[0, 1], [2, 12], [5, 3], [7, 1]]);
  t.same(ctx.db.prepare('SELECT token FROM tokens ORDER BY id').all().map((row) => row.token), ['a', 'b', 'c']);
  ctx.close();
});

/** Three text files (two cut in many shards) and a JSON Lines file of several documents. */
function writeCorpus(dir: string, seed: number): { inputs: string[]; documents: string[] } {
  const next = random(seed);
  const documents: string[] = [];
  const inputs: string[] = [];
  for (const [name, words] of [['a.txt', 1500], ['b.txt', 40], ['c.txt', 900]] as const) {
    const text = randomText(next, words);
    writeFileSync(join(dir, name), text);
    inputs.push(join(dir, name));
    documents.push(text);
  }
  const records = Array.from({ length: 12 }, () => randomText(next, Math.floor(next() * 30)));
  writeFileSync(join(dir, 'd.jsonl'), records.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  inputs.push(join(dir, 'd.jsonl'));
  documents.push(...records);
  return { inputs, documents };
}

// Worker threads take a while to start on a busy machine: only the first case compares 1, 2 and 4.
const cases = [
  ['char', charOracle, 5, [1, 2, 4]], ['char', charOracle, 1, [1]], ['d2l-word', d2lWordOracle, 3, [1]], ['word', wordOracle, 2, [1]],
] as const;
for (const [tokenizer, oracle, order, workerCounts] of cases) {
  t.test(`countStage equals the oracle across ~100 shard cuts (${tokenizer}, order ${order}, ${workerCounts.join(', ')} workers)`, async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'lmpipe-count-'));
    const { inputs, documents } = writeCorpus(root, 11);
    const tokenized = documents.map(oracle);
    const dumps: string[] = [];
    for (const workers of workerCounts) {
      const ctx = stageContext(join(root, `run${workers}`), { input: inputs, tokenizer, order, workers, shardMb: 0.0002 });
      t.teardown(() => ctx.close());
      const events = await drain(countStage.run(ctx));
      t.equal(events.at(-1)?.done, events.at(-1)?.total, 'progress ends at the total');
      t.same(databaseCounts(ctx.db), oracleCounts(tokenized, order), `${workers} worker(s): counts`);
      t.same(streamTokens(ctx.dir, ctx.db), tokenized.flat(), `${workers} worker(s): tokens.bin`);
      const ids = ctx.db.prepare('SELECT token FROM tokens ORDER BY id').all().map((row) => row.token);
      t.same(ids, [...new Set(tokenized.flat())], 'ids in first-occurrence order');
      t.equal(loadStage(ctx.db, 'count')?.state, 'done');
      dumps.push(dumpTables(ctx.db));
    }
    for (const dump of dumps.slice(1)) t.equal(dump, dumps[0], `${workerCounts.join(', ')} workers write identical tables`);
  });
}

t.test('countStage turns whitespace spanning whole shards into one \' \' (char)', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmpipe-count-'));
  const texts = [
    'ab c' + '\n'.repeat(700) + ' \n'.repeat(300) + 'de\n' + '\n'.repeat(900) + 'f',
    '\n'.repeat(500) + 'g h' + '\n \n'.repeat(400),
  ];
  const inputs = texts.map((text, i) => join(root, `${i}.txt`));
  texts.forEach((text, i) => writeFileSync(inputs[i], text));
  const ctx = stageContext(join(root, 'run'), { input: inputs, tokenizer: 'char', order: 3, workers: 1, shardMb: 0.0002 });
  await drain(countStage.run(ctx));
  const tokenized = texts.map(charOracle);
  t.same(tokenized, [['a', 'b', ' ', 'c', ' ', 'd', 'e', ' ', 'f'], ['g', ' ', 'h']], 'the oracle itself');
  t.same(streamTokens(ctx.dir, ctx.db), tokenized.flat());
  t.same(databaseCounts(ctx.db), oracleCounts(tokenized, 3));
  ctx.close();
});

t.test('countStage with a memory budget small enough for many runs and partitions gets the same result', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmpipe-count-'));
  const { inputs, documents } = writeCorpus(root, 5);
  const settings = { input: inputs, tokenizer: 'char' as const, order: 4, workers: 1, shardMb: 0.001 };
  const small = stageContext(join(root, 'small'), { ...settings, memoryMb: 0.01 });
  const partitions: number[] = [];
  const runs = new Set<string>();
  for await (const event of countStage.run(small)) {
    const record = loadStage<{ partitions: number }>(small.db, 'count')?.checkpoint;
    if (event.data?.phase === 'reduce' && record) partitions.push(record.partitions);
    if (existsSync(join(small.dir, 'count-runs'))) readdirSync(join(small.dir, 'count-runs')).forEach((name) => runs.add(name));
  }
  t.ok(partitions[0] >= 256, `${partitions[0]} partitions`);
  const shardRuns = [...runs].filter((name) => name.endsWith('.run')).length;
  t.ok(shardRuns >= 10 && runs.size - shardRuns >= 256, `${shardRuns} runs and ${runs.size - shardRuns} partitions written`);
  t.notOk(existsSync(join(small.dir, 'count-runs')), 'the runs are deleted at the end');
  t.same(databaseCounts(small.db), oracleCounts(documents.map(charOracle), 4));
  small.close();
});

t.test('countStage stops after a commit when aborted, and resumes to the same result', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmpipe-count-'));
  const { inputs } = writeCorpus(root, 9);
  const settings = { input: inputs, tokenizer: 'char' as const, order: 3, workers: 1, shardMb: 0.001 };
  const whole = stageContext(join(root, 'whole'), settings);
  await drain(countStage.run(whole));
  // Stopped in the worker pool, resumed in the main thread: workers never change the result.
  const ctx = stageContext(join(root, 'stopped'), { ...settings, workers: 2 });
  const controller = new AbortController();
  let seen = 0;
  for await (const _ of countStage.run({ ...ctx, signal: controller.signal })) if (++seen === 5) controller.abort();
  const record = loadStage<{ shardsDone: number }>(ctx.db, 'count');
  t.equal(record?.state, 'running');
  t.equal(record?.checkpoint.shardsDone, 4, 'the shard merged when the abort came was committed');
  await drain(countStage.run({ ...ctx, config: { ...ctx.config, workers: 1 } }));
  t.equal(dumpTables(ctx.db), dumpTables(whole.db));
  t.same(streamTokens(ctx.dir, ctx.db), streamTokens(whole.dir, whole.db));
  whole.close();
  ctx.close();
});

t.test('countStage.reset deletes what the stage wrote', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmpipe-count-'));
  const { inputs } = writeCorpus(root, 3);
  const ctx = stageContext(join(root, 'run'), { input: inputs, tokenizer: 'd2l-word', order: 2, workers: 1 });
  await drain(countStage.run(ctx));
  countStage.reset(ctx);
  for (const table of ['tokens', 'ngram1', 'ngram2']) {
    t.equal(ctx.db.prepare(`SELECT count(*) AS n FROM ${table}`).get()?.n, 0, `${table} is empty`);
  }
  t.equal(ctx.db.prepare(`SELECT count(*) AS n FROM meta WHERE key IN ('order', 'total_1')`).get()?.n, 0, 'meta keys gone');
  t.equal(ctx.db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'ngram2_by_count'`).get()?.n, 0, 'index gone');
  t.ok(!existsSync(join(root, 'run', 'tokens.bin')) || streamTokens(ctx.dir, ctx.db).length === 0, 'tokens.bin emptied');
  ctx.close();
});

t.test('countStage on The Time Machine gives the d2l figures', { skip: !existsSync(timeMachine) && 'corpus not found' }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmpipe-count-'));
  const word = stageContext(join(root, 'word'), { input: [timeMachine], tokenizer: 'd2l-word', order: 3, workers: 2, shardMb: 0.05 });
  await drain(countStage.run(word));
  const get = (sql: string) => Number(word.db.prepare(sql).get()?.n);
  t.equal(get(`SELECT count AS n FROM ngram_counts WHERE tokens = json_array('of','the')`), 309, 'top bigram (of, the) = 309');
  t.equal(get('SELECT count(*) AS n FROM ngram2'), 20234, 'distinct bigrams');
  t.equal(get('SELECT count(*) AS n FROM ngram3'), 29882, 'distinct trigrams');
  t.equal(get('SELECT count(*) AS n FROM ngram1'), 4579, 'word types');
  t.equal(get(`SELECT value AS n FROM meta WHERE key = 'tokens'`), 32775, 'word tokens');
  t.same(word.db.prepare('SELECT w1, w2 FROM ngram2 ORDER BY count DESC LIMIT 1').get(),
    word.db.prepare(`SELECT a.id AS w1, b.id AS w2 FROM tokens a, tokens b WHERE a.token = 'of' AND b.token = 'the'`).get(),
    'the count index orders (of, the) first');
  word.close();
  const char = stageContext(join(root, 'char'), { input: [timeMachine], tokenizer: 'd2l-char', order: 1, workers: 1 });
  await drain(countStage.run(char));
  t.equal(Number(char.db.prepare(`SELECT value AS n FROM meta WHERE key = 'tokens'`).get()?.n), 170580, 'char tokens');
  char.close();
});
