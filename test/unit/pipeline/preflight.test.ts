/**
 * Settings that would fail a later stage are refused before any stage runs (or, when the check
 * needs what count found, right after count): not after counting, encoding or a whole training.
 */
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../../pipeline/config.ts';
import { openRunDatabase } from '../../../storage/schema.ts';
import { runPaths } from '../../../storage/run-paths.ts';
import { loadStage } from '../../../storage/stages.ts';
import { runStages, smallText, tinyConfig } from '../../helpers/train-fixture.ts';

const attempt = async (t: { teardown(fn: () => void): void }, settings: Partial<Config>) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-preflight-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = tinyConfig(dir, smallText(2000), settings);
  const error = await runStages(config).then(() => undefined, (e: unknown) => e);
  const states = () => {
    if (!existsSync(runPaths(config.out).database)) return {};
    const db = openRunDatabase(runPaths(config.out).database);
    const found = Object.fromEntries(['count', 'vocab', 'encode', 'train'].map((name) => [name, loadStage(db, name)?.state ?? 'none']));
    db.close();
    return found;
  };
  return { error, states: states() };
};

t.test('a --prefix without a token of the tokenizer is refused before counting', async (t) => {
  const { error, states } = await attempt(t, { prefix: '123 !!' });
  t.match(error, { name: 'TypeError', message: 'Expected `--prefix` to hold at least one token of --tokenizer d2l-char, got `123 !!`' });
  t.match(states, { count: 'none' });
});

t.test('a --batch too large for the corpus is refused once count knows its length, before vocab', async (t) => {
  const { error, states } = await attempt(t, { batch: 1000 });
  t.match(error, { code: 'USAGE', stage: 'train', message: /^Expected the training corpus to hold at least 8009 tokens for --sampler sequential --batch 1000 --steps 8, got \d+$/ });
  t.match(states, { count: 'done', vocab: 'none', encode: 'none', train: 'none' });
});

t.test('a --backend that is not installed is refused before counting', async (t) => {
  const optional = '@tensorflow/tfjs-node';
  const installed = await import(optional).then(() => true, () => false);
  if (installed) return void t.pass(`${optional} is installed here: nothing to refuse`);
  const { error, states } = await attempt(t, { backend: 'tensorflow' });
  t.match(error, { code: 'USAGE', message: /^Expected `--backend tensorflow` to load, got: @tensorflow\/tfjs-node is not installed/ });
  t.match(states, { count: 'none' });
});

t.test('--epochs 0 is a usage error, not a train stage marked done with no model', async (t) => {
  const { resolveConfig } = await import('../../../pipeline/config.ts');
  t.throws(() => resolveConfig({ epochs: 0 }), { name: 'TypeError', message: 'Expected `--epochs` to be an integer of at least 1, got `0`' });
});
