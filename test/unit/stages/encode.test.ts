import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../../../pipeline/config.ts';
import { runPipeline } from '../../../pipeline/runner.ts';
import { Rng } from '../../../lib/rng.ts';
import type { StageEvent } from '../../../pipeline/types.ts';
import { encodeStage, loadEncoded, splitSizes } from '../../../stages/encode.ts';
import type { Database } from '../../../storage/driver.ts';
import { openRunDatabase } from '../../../storage/schema.ts';
import { loadStage, setMeta } from '../../../storage/stages.ts';

interface Fixture {
  dir: string;
  db: Database;
  /** Token text by tokens.id, and the stream of tokens.id that tokens.bin holds. */
  texts: string[];
  stream: Int32Array;
  vocab: string[];
}

/** A run directory as count and vocab leave it: tokens table, vocab table, tokens.bin. */
function fixture(t: Test, texts: string[], stream: Int32Array, vocab: string[]): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-encode-'));
  const db = openRunDatabase(join(dir, 'lmpipe.sqlite'));
  t.teardown(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  db.transaction(() => {
    const token = db.prepare('INSERT INTO tokens (id, token) VALUES (?, ?)');
    texts.forEach((text, id) => token.run(id, text));
    const entry = db.prepare('INSERT INTO vocab (id, token, count) VALUES (?, ?, ?)');
    vocab.forEach((text, id) => entry.run(id, text, 0));
  })();
  writeFileSync(join(dir, 'tokens.bin'), Buffer.from(stream.buffer, stream.byteOffset, stream.byteLength));
  return { dir, db, texts, stream, vocab };
}

/** A Zipf-like stream over `types` word types; the vocabulary keeps <unk>, reserved and the `kept` most frequent. */
function wordCorpus(t: Test, options: { length: number; types: number; kept: number; seed: number }): Fixture {
  const rng = new Rng(options.seed);
  const draw = Int32Array.from({ length: options.length }, () => Math.floor(options.types ** rng.nextFloat()) - 1);
  // tokens.id is first-occurrence order, as the count stage assigns it.
  const idOf = new Map<number, number>();
  const texts: string[] = [];
  const stream = draw.map((word) => {
    if (!idOf.has(word)) idOf.set(word, idOf.size) && texts.push(word % 7 === 3 ? `w${word}\n"` : `w${word}`);
    return idOf.get(word)!;
  });
  const counts = new Map<string, number>();
  for (const id of stream) counts.set(texts[id], (counts.get(texts[id]) ?? 0) + 1);
  const byCount = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([text]) => text);
  return fixture(t, texts, stream, ['<unk>', '<pad>', '<bos>', '<eos>', ...byCount.slice(0, options.kept)]);
}

/** The oracle: token text -> vocab id through a string map, then truncate and cut. */
function expected(f: Fixture, settings: { maxTokens: number; validFrac: number }) {
  const index = new Map(f.vocab.map((text, id) => [text, id]));
  const ids = Int32Array.from(f.stream, (id) => index.get(f.texts[id]) ?? 0);
  const used = settings.maxTokens > 0 ? Math.min(settings.maxTokens, ids.length) : ids.length;
  const valid = Math.floor(used * settings.validFrac);
  return { train: ids.slice(0, used - valid), valid: ids.slice(used - valid, used) };
}

async function encode(f: Fixture, settings: { maxTokens: number; validFrac: number }, signal = new AbortController().signal) {
  const events: StageEvent[] = [];
  const ctx = { dir: f.dir, db: f.db, config: resolveConfig(settings), fingerprint: 'fp-test', signal, log() {} };
  for await (const event of encodeStage.run(ctx)) events.push(event);
  return events;
}

const vocabSha = (vocab: string[]) => createHash('sha256').update(vocab.map((text) => JSON.stringify(text) + '\n').join('')).digest('hex');

t.test('encodeStage maps tokens to vocab ids, unknown to 0, and keeps a contiguous validation tail', async (t) => {
  const f = wordCorpus(t, { length: 5000, types: 60, kept: 25, seed: 1 });
  for (const settings of [
    { maxTokens: 0, validFrac: 0.1 }, { maxTokens: 1000, validFrac: 0.1 }, { maxTokens: 10 ** 9, validFrac: 0 },
    { maxTokens: 777, validFrac: 0.5 }, { maxTokens: 3, validFrac: 0.9 },
  ]) {
    const events = await encode(f, settings);
    const got = loadEncoded(f.db);
    const want = expected(f, settings);
    t.same(got.train, want.train, `train ${JSON.stringify(settings)}`);
    t.same(got.valid, want.valid, `valid ${JSON.stringify(settings)}`);
    t.equal(got.vocabSize, f.vocab.length);
    t.equal(got.vocabHash, vocabSha(f.vocab), 'vocab hash: sha256 of JSON token lines in id order');
    t.match(events.at(-1)?.message, `${want.train.length} train, ${want.valid.length} valid, vocabulary of ${f.vocab.length}`);
  }
  t.ok(expected(f, { maxTokens: 0, validFrac: 0 }).train.includes(0), 'the corpus has unknown tokens');
  const record = loadStage(f.db, 'encode')!;
  t.equal(record.state, 'done');
  t.match(record.checkpoint, { version: 1, vocabSize: f.vocab.length, tokens: 5000, used: 3, train: 1, valid: 2 });
});

t.test('encodeStage streams tokens.bin across block boundaries with the cut inside a block', async (t) => {
  const rng = new Rng(2);
  const texts = Array.from({ length: 50 }, (_, i) => `t${i}`);
  const stream = Int32Array.from({ length: 1_500_000 }, () => rng.int(0, 49));
  const f = fixture(t, texts, stream, ['<unk>', ...texts.filter((_, i) => i % 3 !== 0)]);
  const settings = { maxTokens: 1_400_001, validFrac: 0.2 }; // train 1,120,001: the cut is in block 2
  const events = await encode(f, settings);
  const got = loadEncoded(f.db);
  const want = expected(f, settings);
  t.equal(got.train.length, 1_120_001);
  t.same(Buffer.from(got.train.buffer).equals(Buffer.from(want.train.buffer)), true, 'train');
  t.same(Buffer.from(got.valid.buffer).equals(Buffer.from(want.valid.buffer)), true, 'valid');
  t.same(events.map((e) => e.done), [1 << 20, 1_400_001, 1_400_001], 'one progress event per 1M-token block');
  t.same(readdirSync(join(f.dir, 'encoded')).sort(), ['train.bin', 'valid.bin'], 'no temporaries left');
});

t.test('encodeStage interrupted by the signal commits nothing, and a rerun gives the uninterrupted result', async (t) => {
  const rng = new Rng(3);
  const texts = Array.from({ length: 30 }, (_, i) => `t${i}`);
  const f = fixture(t, texts, Int32Array.from({ length: 1_200_000 }, () => rng.int(0, 29)), ['<unk>', ...texts.slice(5)]);
  const settings = { maxTokens: 0, validFrac: 0.2 };
  const controller = new AbortController();
  const events: StageEvent[] = [];
  const ctx = { dir: f.dir, db: f.db, config: resolveConfig(settings), fingerprint: 'fp-test', signal: controller.signal, log() {} };
  for await (const event of encodeStage.run(ctx)) {
    events.push(event);
    controller.abort();
  }
  t.equal(events.length, 1, 'stopped after the first block');
  t.equal(loadStage(f.db, 'encode')?.state, 'running');
  t.same(readdirSync(join(f.dir, 'encoded')), [], 'temporaries removed');
  t.throws(() => loadEncoded(f.db), { code: 'STATE', message: /Expected the encode stage to be done/ });
  // A kill -9 leaves temporaries and possibly one renamed split of an older run: both are overwritten.
  writeFileSync(join(f.dir, 'encoded', 'train.bin.tmp'), 'garbage');
  writeFileSync(join(f.dir, 'encoded', 'valid.bin'), 'stale');
  await encode(f, settings);
  const want = expected(f, settings);
  const got = loadEncoded(f.db);
  t.ok(Buffer.from(got.train.buffer).equals(Buffer.from(want.train.buffer)) && Buffer.from(got.valid.buffer).equals(Buffer.from(want.valid.buffer)));
  encodeStage.reset({ dir: f.dir, db: f.db });
  t.notOk(existsSync(join(f.dir, 'encoded')), 'reset removes the encoded files');
});

t.test('loadEncoded() refuses changed files and a changed vocabulary', async (t) => {
  const f = wordCorpus(t, { length: 3000, types: 40, kept: 20, seed: 4 });
  await encode(f, { maxTokens: 0, validFrac: 0.1 });
  const train = join(f.dir, 'encoded', 'train.bin');
  const original = readFileSync(train);
  const flipped = Buffer.from(original);
  flipped[100] ^= 1;
  writeFileSync(train, flipped);
  t.throws(() => loadEncoded(f.db), { code: 'STATE', message: /sha256/ });
  truncateSync(train, original.length - 4);
  t.throws(() => loadEncoded(f.db), { code: 'STATE', message: /to hold 2700 token ids/ });
  writeFileSync(train, original);
  t.equal(loadEncoded(f.db).train.length, 2700);
  f.db.prepare("UPDATE vocab SET token = 'changed' WHERE id = 4").run();
  t.throws(() => loadEncoded(f.db), { code: 'STATE', message: /Expected the vocabulary the corpus was encoded with/ });
});

t.test('encodeStage refuses a tokens.bin that does not match the tokens table', async (t) => {
  const texts = ['a', 'b', 'c'];
  const settings = { maxTokens: 0, validFrac: 0.1 };
  const outside = fixture(t, texts, Int32Array.from([0, 1, 2, 1, 3, 0]), ['<unk>', 'a', 'b']);
  await t.rejects(encode(outside, settings), {
    name: 'LmpipeError', code: 'STATE', stage: 'encode', position: 'token 4',
    message: 'Expected token ids below 3 (the tokens table) in tokens.bin, got 3',
  });
  t.equal(loadStage(outside.db, 'encode')?.state, 'running', 'a failed encode is not done');
  const negative = fixture(t, texts, Int32Array.from([0, -1]), ['<unk>', 'a']);
  await t.rejects(encode(negative, settings), { message: /got -1/ });
  const partial = fixture(t, texts, Int32Array.from([0, 1]), ['<unk>', 'a']);
  writeFileSync(join(partial.dir, 'tokens.bin'), Buffer.from([0, 0, 0, 0, 1, 0]));
  await t.rejects(encode(partial, settings), { code: 'STATE', message: /whole Int32 ids, got 6 bytes/ });
  const counted = fixture(t, texts, Int32Array.from([0, 1, 2]), ['<unk>', 'a']);
  setMeta(counted.db, 'total_1', '4');
  await t.rejects(encode(counted, settings), { message: /the 4 tokens the count stage counted, got 3/ });
  rmSync(join(counted.dir, 'tokens.bin'));
  await t.rejects(encode(counted, settings), { code: 'STATE', message: /from the count stage, got no such file/ });
  const gap = fixture(t, texts, Int32Array.from([0]), ['<unk>']);
  gap.db.prepare('UPDATE vocab SET id = 5 WHERE id = 0').run();
  await t.rejects(encode(gap, settings), { message: /Expected vocab ids to run from 0 to 0/ });
});

t.test('splitSizes() truncates to --max-tokens and floors the validation share', async (t) => {
  t.same(splitSizes(100, { maxTokens: 0, validFrac: 0.1 }), { used: 100, train: 90, valid: 10 });
  t.same(splitSizes(100, { maxTokens: 55, validFrac: 0.1 }), { used: 55, train: 50, valid: 5 });
  t.same(splitSizes(10, { maxTokens: 55, validFrac: 0.25 }), { used: 10, train: 8, valid: 2 });
  t.same(splitSizes(0, { maxTokens: 0, validFrac: 0.5 }), { used: 0, train: 0, valid: 0 });
});

const TIME_MACHINE = fileURLToPath(new URL('../../../../shared/corpora/timemachine/timemachine.txt', import.meta.url));
const endToEndSkip = spawnSync('python3', ['--version']).status !== 0 ? 'python3 is not installed'
  : !existsSync(TIME_MACHINE) ? `${TIME_MACHINE} is absent`
  : !existsSync(new URL('../../../stages/vocab.ts', import.meta.url)) ? 'the vocab stage is not there yet' : false;

t.test('count -> vocab -> encode on The Time Machine gives d2l load_corpus_time_machine(max_tokens=10000)', { skip: endToEndSkip }, async (t) => {
  const { countStage } = await import('../../../stages/count/index.ts');
  const { vocabStage } = await import('../../../stages/vocab.ts');
  const silent = { stage() {}, progress() {}, log() {}, summary() {} };
  for (const tokenizer of ['d2l-char', 'd2l-word'] as const) {
    const out = mkdtempSync(join(tmpdir(), 'lmpipe-encode-d2l-'));
    t.teardown(() => rmSync(out, { recursive: true, force: true }));
    const config = resolveConfig({ input: [TIME_MACHINE], out, tokenizer, until: 'encode', workers: 1, maxTokens: 10000, validFrac: 0.1 });
    const { db } = await runPipeline(config, { stages: [countStage, vocabStage, encodeStage], reporter: silent, signal: new AbortController().signal });
    const encoded = loadEncoded(db);
    db.close();
    const oracle = spawnSync('python3', [fileURLToPath(new URL('../../oracles/encode-oracle.py', import.meta.url)), TIME_MACHINE,
      tokenizer.slice(4), '10000', JSON.stringify(config.reserved)], { encoding: 'utf8', maxBuffer: 1 << 28 });
    t.equal(oracle.status, 0, oracle.stderr);
    const { vocab, corpus } = JSON.parse(oracle.stdout) as { vocab: string[]; corpus: number[] };
    t.same([encoded.train.length, encoded.valid.length], [9000, 1000], `${tokenizer}: 10,000 tokens, the last 1,000 held out`);
    t.same(Array.from(encoded.train).concat(Array.from(encoded.valid)), corpus, `${tokenizer}: ids as d2l's Vocab gives them`);
    t.equal(encoded.vocabSize, vocab.length);
    t.equal(encoded.vocabHash, vocabSha(vocab), `${tokenizer}: vocab hash of d2l's idx_to_token`);
  }
});
