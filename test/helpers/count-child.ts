/**
 * The process test/e2e/count-phases.test.ts kills: runs the count and vocab stages on a run directory
 * the way the runner does (skip when done, reset when the fingerprint changed, else resume), with
 * a checkpoint after every shard and a memory budget small enough for dozens of partitions,
 * printing one line per event (stage, done, phase). The test aims its kills with LMPIPE_CRASH_AT
 * (lib/crash.ts). With COUNT_CHILD_CHECKPOINT_MS set, it commits that often instead, and then the
 * memory budget makes it commit before each shard's merge (the pending counts' share is full).
 *
 *   node --import tsx test/helpers/count-child.ts DIR WORKERS INPUT...
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { resolveConfig } from '../../pipeline/config.ts';
import type { Stage, StageContext } from '../../pipeline/types.ts';
import { runCount } from '../../stages/count/index.ts';
import { countStage } from '../../stages/count/index.ts';
import { vocabStage } from '../../stages/vocab.ts';
import { openRunDatabase } from '../../storage/schema.ts';
import { forgetStage, loadStage } from '../../storage/stages.ts';
import { childSettings } from '../oracles/count-oracle.ts';


const [dir, workers, ...input] = process.argv.slice(2);
const config = { ...resolveConfig({ ...childSettings, reserved: [...childSettings.reserved], input, workers: Number(workers), out: dir }), memoryMb: 0.05 };
const db = openRunDatabase(join(dir, 'lmpipe.sqlite'));
for (const stage of [countStage, vocabStage] as Stage[]) {
  const basis = { settings: stage.settings(config), inputs: stage.inputs ? await stage.inputs(config) : null };
  const fingerprint = createHash('sha256').update(JSON.stringify(basis)).digest('hex').slice(0, 16);
  const record = loadStage(db, stage.name);
  if (record?.state === 'done' && record.fingerprint === fingerprint) continue;
  if (record && record.fingerprint !== fingerprint) {
    stage.reset({ dir, db });
    forgetStage(db, stage.name);
  }
  const ctx: StageContext = { dir, db, config, fingerprint, signal: new AbortController().signal, log: () => {} };
  const events = stage.name === 'count' ? runCount(ctx, { checkpointMs: Number(process.env.COUNT_CHILD_CHECKPOINT_MS ?? 0) }) : stage.run(ctx);
  for await (const event of events) process.stdout.write(`${stage.name} ${event.done} ${event.data?.phase ?? ''}\n`);
}
db.close();
process.stdout.write('finished\n');
