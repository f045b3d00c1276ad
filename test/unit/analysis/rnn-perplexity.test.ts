/**
 * rnnPerplexity(): a file holding exactly the run's validation split, read and tokenized from text,
 * scores the validation perplexity the trainer recorded for its last epoch (computed there from
 * the encode stage's ids); words outside the vocabulary are counted and scored as <unk>.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rnnPerplexity } from '../../../analysis/rnn-perplexity.ts';
import { runPaths } from '../../../storage/run-paths.ts';
import { openRunDatabase } from '../../../storage/schema.ts';
import { runStages, smallText, tinyConfig } from '../../helpers/train-fixture.ts';

t.test('rnnPerplexity() of the validation text equals the validation perplexity of training', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-rnn-ppl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = tinyConfig(dir, smallText(6000), { tokenizer: 'd2l-word', epochs: 2, validFrac: 0.2, batch: 2, steps: 5, until: 'train' });
  await runStages(config);
  const db = openRunDatabase(runPaths(config.out).database, { readonly: true });
  const vocab = db.prepare('SELECT token FROM vocab ORDER BY id').all().map((row) => row.token as string);
  const recorded = db.prepare("SELECT perplexity FROM metrics WHERE split = 'valid' ORDER BY epoch DESC LIMIT 1").get()!.perplexity as number;
  db.close();
  // The validation split as text: the encode stage's ids, written back as words.
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(runPaths(config.out).encodedValid);
  const ids = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const held = join(dir, 'held-out.txt');
  writeFileSync(held, Array.from(ids, (id) => vocab[id]).join(' ') + '\n');
  const scored = await rnnPerplexity(config.out, [held], { backend: 'cpu' });
  t.equal(scored.tokens, ids.length);
  t.equal(scored.unknown, 0);
  t.ok(Math.abs(scored.perplexity - recorded) < 1e-6 * recorded, `${scored.perplexity} vs ${recorded}`);
  t.ok(Math.abs(scored.perplexity - Math.exp(scored.crossEntropy)) < 1e-9 * scored.perplexity);

  const other = join(dir, 'other.txt');
  writeFileSync(other, 'the time zzyzx machine qqqx the\n');
  const unseen = await rnnPerplexity(config.out, [other], { backend: 'cpu' });
  t.match(unseen, { tokens: 6, unknown: 2 });
});
