import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LmpipeError } from '../../../lib/errors.ts';
import { countStage } from '../../../stages/count/index.ts';
import { vocab, vocabStage } from '../../../stages/vocab.ts';
import { loadStage } from '../../../storage/stages.ts';
import { drain, random, randomText, stageContext, streamTokens } from '../../oracles/count-oracle.ts';

const ORACLE = fileURLToPath(new URL('../../oracles/count-vocab-oracle.py', import.meta.url));
const noPython = spawnSync('python3', ['--version']).status !== 0 && 'python3 is not installed';
const timeMachine = fileURLToPath(new URL('../../../../shared/corpora/timemachine/timemachine.txt', import.meta.url));

/** d2l's own Vocab class, run by python3 on the same token list. */
function d2lVocab(tokens: string[], reserved: string[], minFreq: number): { tokens: string[]; counts: number[] } {
  const result = spawnSync('python3', [ORACLE], {
    input: JSON.stringify({ tokens, reserved, min_freq: minFreq }), encoding: 'utf8', maxBuffer: 1 << 28,
  });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}

/** Every distinct token with its count, by descending count, ties by first occurrence. */
function byCount(tokens: string[]): Array<{ token: string; count: number }> {
  const counts = new Map<string, number>();
  for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
  return [...counts].map(([token, count]) => ({ token, count })).sort((a, b) => b.count - a.count);
}

t.test('vocab() orders by count, ties by first occurrence, <unk> counting what is dropped', async (t) => {
  const entries = vocab(byCount('b a c a b d a e'.split(' ')), { reserved: ['<pad>'], minFreq: 2, maxVocab: 0 });
  t.same(entries, [
    { token: '<unk>', count: 3 }, { token: '<pad>', count: 0 }, { token: 'a', count: 3 }, { token: 'b', count: 2 },
  ]);
});

t.test('vocab() keeps at most maxVocab entries, <unk> and reserved included', async (t) => {
  const entries = vocab(byCount('x y y z z z w'.split(' ')), { reserved: ['<bos>'], minFreq: 0, maxVocab: 4 });
  t.same(entries.map((e) => e.token), ['<unk>', '<bos>', 'z', 'y']);
  t.equal(entries[0].count, 2, 'x and w map to <unk>');
});

t.test('vocab() keeps a reserved token that occurs in the corpus at its reserved id, once', async (t) => {
  const entries = vocab(byCount('the <eos> the cat <unk> <eos> the'.split(' ')), { reserved: ['<pad>', '<eos>'], minFreq: 0, maxVocab: 0 });
  t.same(entries, [
    { token: '<unk>', count: 1 }, { token: '<pad>', count: 0 }, { token: '<eos>', count: 2 },
    { token: 'the', count: 3 }, { token: 'cat', count: 1 },
  ]);
});

t.test('vocab() rejects duplicate reserved tokens and a maxVocab below them', async (t) => {
  t.throws(() => vocab([], { reserved: ['<pad>', '<pad>'], minFreq: 0, maxVocab: 0 }), { code: 'USAGE', message: /`--reserved`.*`<pad>` twice/ });
  t.throws(() => vocab([], { reserved: ['<unk>'], minFreq: 0, maxVocab: 0 }), LmpipeError);
  t.throws(() => vocab([], { reserved: ['a', 'b'], minFreq: 0, maxVocab: 2 }), { message: 'Expected `--max-vocab` to be 0 or at least 3 (<unk> and the reserved tokens), got `2`' });
});

t.test('vocabStage matches d2l\'s Vocab class on a counted corpus', { skip: noPython }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-vocab-'));
  const next = random(99);
  writeFileSync(join(dir, 'a.txt'), randomText(next, 3000));
  for (const [reserved, minFreq, maxVocab] of [[['<pad>', '<bos>', '<eos>'], 0, 0], [['e', '<pad>'], 3, 0], [[], 0, 12]] as const) {
    const ctx = stageContext(join(dir, `run-${minFreq}-${maxVocab}`), {
      input: [join(dir, 'a.txt')], tokenizer: 'char', order: 1, workers: 1, reserved: [...reserved], minFreq, maxVocab,
    });
    await drain(countStage.run(ctx));
    await drain(vocabStage.run(ctx));
    const stream = streamTokens(ctx.dir, ctx.db);
    const expected = d2lVocab(stream, [...reserved], minFreq);
    const size = maxVocab > 0 ? maxVocab : expected.tokens.length;
    const rows = ctx.db.prepare('SELECT id, token, count FROM vocab ORDER BY id').all();
    t.same(rows.map((row) => row.token), expected.tokens.slice(0, size), `tokens, reserved ${reserved}, min-freq ${minFreq}, max-vocab ${maxVocab}`);
    if (maxVocab === 0) t.same(rows.map((row) => row.count), expected.counts, 'counts: each id receives its tokens');
    t.equal(rows.reduce((sum, row) => sum + row.count, 0), stream.length, 'counts add up to the corpus');
    t.same(rows.map((row) => row.id), rows.map((_, i) => i), 'ids are dense');
    t.equal(loadStage(ctx.db, 'vocab')?.state, 'done');
    vocabStage.reset(ctx);
    t.equal(ctx.db.prepare('SELECT count(*) AS n FROM vocab').get()?.n, 0, 'reset empties the table');
    ctx.close();
  }
});

t.test('vocabStage on The Time Machine (d2l-char, no reserved tokens) is d2l\'s 28 tokens', { skip: !existsSync(timeMachine) && 'corpus not found' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-vocab-'));
  const ctx = stageContext(dir, { input: [timeMachine], tokenizer: 'd2l-char', order: 1, workers: 1, reserved: [] });
  await drain(countStage.run(ctx));
  await drain(vocabStage.run(ctx));
  const tokens = ctx.db.prepare('SELECT token FROM vocab ORDER BY id').all().map((row) => row.token);
  t.same(tokens, ['<unk>', ' ', ...'etainoshrdlmucfwgypbvkxzjq']);
  ctx.close();
});
