/**
 * The count stage's two kinds of pool job, as one message a worker thread (stages/count/_worker.ts)
 * or the calling thread runs: `{ shard, options, recycle }` counts a shard (stages/count/_shard.ts);
 * with `options.reduce` the "shard" is a partition to reduce (stages/count/_reduce.ts). Both are
 * self-contained, so any process with the inputs and the run directory could run them too.
 */
import { countJob, transferables, type CountJob } from './_shard.ts';
import { reducePartition, type ReduceJob } from './_reduce.ts';

export type ReduceMessage = { shard: ReduceJob; options: { reduce: true }; recycle?: ArrayBuffer[] };
export type PoolMessage = CountJob | ReduceMessage;

/** Runs one job; returns its result and the buffers to transfer (not copy) with it. */
export async function runJob(message: PoolMessage): Promise<{ result: unknown; transfer: ArrayBuffer[] }> {
  if ('reduce' in message.options) return { result: reducePartition((message as ReduceMessage).shard), transfer: [] };
  const result = await countJob(message as CountJob);
  return { result, transfer: transferables(result) };
}
