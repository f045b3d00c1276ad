/**
 * The count stage's three kinds of pool job, as one message a worker thread
 * (stages/count/_worker.ts) or the calling thread runs: `{ shard, options, recycle }` counts a shard
 * (stages/count/_shard.ts); with `options.job` 'reduce' the "shard" is a partition to reduce
 * (stages/count/_reduce.ts), with 'build' a table to write into its own database file
 * (stages/count/_write.ts). All are self-contained, so any process with the inputs and the run
 * directory could run them too.
 */
import { countJob, transferables, type CountJob } from './_shard.ts';
import { reducePartition, type ReduceJob } from './_reduce.ts';
import { buildTable, type BuildJob } from './_write.ts';

type PhaseMessage = { shard: ReduceJob | BuildJob; options: { job: 'reduce' | 'build' }; recycle?: ArrayBuffer[] };
export type PoolMessage = CountJob | PhaseMessage;

/** Runs one job. */
export async function runJob(message: PoolMessage): Promise<unknown> {
  if ('job' in message.options) {
    const { shard, options } = message as PhaseMessage;
    return options.job === 'reduce' ? reducePartition(shard as ReduceJob) : buildTable(shard as BuildJob);
  }
  return countJob(message as CountJob);
}

/** The buffers to transfer (not copy) with a job's result: a shard's arrays; the others have none. */
export function jobTransferables(result: unknown): ArrayBuffer[] {
  return typeof result === 'object' && result !== null && 'stream' in result ? transferables(result as Parameters<typeof transferables>[0]) : [];
}
