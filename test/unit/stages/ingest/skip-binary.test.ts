/**
 * --skip-binary: a directory with a binary file in it is read without that file (which is counted
 * and named), instead of stopping at it. A NUL byte anywhere marks a file binary, so none is half read.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planShards } from '../../../../stages/ingest/index.ts';
import { runStages, tinyConfig } from '../../../helpers/train-fixture.ts';

t.test('planShards() with skipBinary leaves out files holding a NUL byte and names them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-binary-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const corpus = join(dir, 'corpus');
  mkdirSync(corpus);
  writeFileSync(join(corpus, 'a.txt'), 'the time machine\n');
  writeFileSync(join(corpus, 'b.dat'), Buffer.concat([Buffer.from('x'.repeat(200_000)), Buffer.from([0]), Buffer.from('tail')]));
  writeFileSync(join(corpus, 'c.txt'), 'by h g wells\n');
  const skipped: string[] = [];
  const shards = await planShards([corpus], { skipBinary: true, skipped });
  t.same(shards.map((shard) => shard.path), [join(corpus, 'a.txt'), join(corpus, 'c.txt')]);
  t.same(skipped, [join(corpus, 'b.dat')]);
  t.equal((await planShards([corpus])).length, 3, 'without it every file is read (and the binary one refused)');

  const config = tinyConfig(dir, '', { tokenizer: 'd2l-word', until: 'count' });
  await t.rejects(runStages({ ...config, input: [corpus] }), { code: 'INPUT', message: /binary/ });
  await t.resolves(runStages({ ...config, out: join(dir, 'skipping'), input: [corpus], skipBinary: true }));
});
