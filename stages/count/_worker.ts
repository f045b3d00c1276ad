/**
 * The count worker: for each `{ shard, options, recycle }` it receives, it runs read -> tokenize ->
 * count (stages/_count-shard.ts) and posts back `{ ok, result }` with the result's buffers
 * transferred, or `{ ok: false, error }`. `recycle` holds buffers of earlier results that the main
 * thread is done with, for this thread's pool. Jobs run one at a time, in the order they came, and
 * are answered in that order (lib/workers.ts's serve()): the pool may send the next job before this
 * one is done, and a thread's shards share its dictionary.
 *
 * The same module runs as a Node worker thread (through lib/worker-bootstrap.mjs) and as a Deno
 * web Worker.
 */
import { countJob, transferables, type CountJob } from './_shard.ts';
import { serve } from '../../lib/workers.ts';

await serve((job: CountJob) => countJob(job), transferables);
