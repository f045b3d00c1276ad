/**
 * Raising --epochs (and only that) continues a trained run from its checkpoint: the longer run is
 * exactly the run that had asked for that many epochs from the start. Any other change starts over.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint } from '../../../../lib/checkpoint.ts';
import { backend } from '../../../../stages/train/backend.ts';
import { moreEpochs, trainSettings } from '../../../../stages/train/state.ts';
import { runPaths } from '../../../../storage/run-paths.ts';
import { openRunDatabase } from '../../../../storage/schema.ts';
import { runStages, smallText, tinyConfig } from '../../../helpers/train-fixture.ts';

await backend('cpu');

const losses = (out: string) => {
  const db = openRunDatabase(join(out, 'lmpipe.sqlite'), { readonly: true });
  const rows = db.prepare('SELECT epoch, split, loss FROM metrics ORDER BY epoch, split').all();
  db.close();
  return rows;
};
const params = (out: string) => {
  const saved = readCheckpoint(runPaths(out).trainCheckpoint)!;
  return Object.entries(saved.tensors).filter(([name]) => name.startsWith('param/')).map(([name, tensor]) => [name, Array.from(tensor.values)]);
};

t.test('raising --epochs continues from the checkpoint and matches a run asked for that many epochs', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'lmpipe-more-epochs-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const text = smallText(2500);
  const reference = tinyConfig(join(base, 'a'), text, { epochs: 3 });
  const grown = tinyConfig(join(base, 'b'), text, { epochs: 2 });
  await runStages({ ...reference, until: 'train' });
  await runStages({ ...grown, until: 'train' });
  const events = await runStages({ ...grown, epochs: 3, until: 'train' });
  t.same(events.filter((e) => e.unit === 'epochs').map((e) => e.done), [3], 'only the third epoch is trained');
  t.same(losses(grown.out), losses(reference.out));
  t.same(params(grown.out), params(reference.out));
});

t.test('moreEpochs() accepts a raise of --epochs alone', async (t) => {
  const settings = trainSettings(tinyConfig(mkdtempSync(join(tmpdir(), 'lmpipe-more-epochs-')), 'x', { epochs: 30 }));
  t.equal(moreEpochs(settings, { ...settings, epochs: 40 }), 'epochs 30 -> 40');
  t.equal(moreEpochs(settings, { ...settings, epochs: 20 }), undefined, 'fewer epochs: train again');
  t.equal(moreEpochs(settings, { ...settings, epochs: 40, lr: 0.5 }), undefined, 'another change too: train again');
  t.equal(moreEpochs(undefined, settings), undefined);
});
