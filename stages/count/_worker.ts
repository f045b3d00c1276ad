/**
 * The count worker: for each `{ shard, options, recycle }` it receives, it runs the job
 * (stages/count/_jobs.ts: read -> tokenize -> count a shard, reduce a partition, or build an
 * order's file) and posts back `{ ok, result }` with the result's buffers transferred, or
 * `{ ok: false, error }`. `recycle` holds buffers of earlier results that the main thread is done
 * with, for this thread's pool. Jobs run one at a time, in the order they came, and are answered in
 * that order (lib/workers.ts's serve()): the pool may send the next job before this one is done,
 * and a thread's shards share its dictionary.
 *
 * The same module runs as a worker thread under Node (through lib/worker-bootstrap.mjs) and Deno.
 */
import { jobTransferables, runJob, type PoolMessage } from './_jobs.ts';
import { serve } from '../../lib/workers.ts';

await serve((job: PoolMessage) => runJob(job), jobTransferables);
