import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_HUB, SHARED_CORPORA, findCorpus } from '../../../lib/data-hub.ts';

const shared = join(SHARED_CORPORA, 'timemachine', 'timemachine.txt');
const tmp = () => mkdtempSync(join(tmpdir(), 'lmpipe-corpus-'));

t.test('findCorpus() prefers the verified shared copy and never downloads it', { skip: !existsSync(shared) && 'no ../shared/corpora' }, async (t) => {
  const path = await findCorpus('time_machine', { cacheDir: tmp(), fetch: () => t.fail('no download') as never });
  t.equal(path, shared);
  t.equal(createHash('sha1').update(readFileSync(path)).digest('hex'), DATA_HUB.time_machine.sha1);
});

t.test('findCorpus() downloads once, verifies SHA-1 and caches', { skip: !existsSync(shared) && 'no ../shared/corpora' }, async (t) => {
  const cacheDir = tmp();
  let downloads = 0;
  const fetchCopy = (async () => {
    downloads++;
    return new Response(readFileSync(shared));
  }) as unknown as typeof fetch;
  const options = { sharedDir: tmp(), cacheDir, fetch: fetchCopy };
  const path = await findCorpus('time_machine', options);
  t.equal(path, join(cacheDir, 'timemachine.txt'));
  await findCorpus('time_machine', options);
  t.equal(downloads, 1, 'second call reads the cache');
});

t.test('findCorpus() rejects a corrupt download and explains the offline case', async (t) => {
  const bad = (async () => new Response('not the book')) as unknown as typeof fetch;
  await t.rejects(findCorpus('time_machine', { sharedDir: tmp(), cacheDir: tmp(), fetch: bad }), { code: 'INPUT', message: /SHA-1 .* expected 090b5e7e/ });
  const offline = (async () => { throw new Error('getaddrinfo ENOTFOUND'); }) as unknown as typeof fetch;
  await t.rejects(findCorpus('time_machine', { sharedDir: tmp(), cacheDir: tmp(), fetch: offline }), { code: 'INPUT', message: /download .* failed \(getaddrinfo ENOTFOUND\); pass your text with --input PATH/ });
});
