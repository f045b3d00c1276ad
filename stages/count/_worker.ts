/**
 * The count worker: for each `{ shard, options, recycle }` it receives, it runs the job
 * (stages/count/_jobs.ts: read -> tokenize -> count a shard, or reduce a partition) and posts back
 * `{ ok, result }` with the result's buffers transferred, or `{ ok: false, error }`. `recycle` holds buffers of earlier results that the main
 * thread is done with, for this thread's pool. Jobs run one at a time, in the order they came;
 * pipeline/workers.ts feeds it.
 *
 * The same module runs as a Node worker thread (through count-worker-bootstrap.mjs) and as a Deno
 * web Worker.
 */
import { runJob, type PoolMessage } from './_jobs.ts';
import { serializeError, type WorkerReply } from '../../lib/workers.ts';

interface Port {
  post(reply: WorkerReply<unknown>, transfer?: ArrayBuffer[]): void;
  listen(handle: (message: PoolMessage) => void): void;
}

async function openPort(): Promise<Port> {
  if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') {
    const scope = globalThis as unknown as {
      postMessage(message: unknown, transfer: ArrayBuffer[]): void;
      onmessage: ((event: MessageEvent) => void) | null;
    };
    return {
      post: (reply, transfer = []) => scope.postMessage(reply, transfer),
      listen: (handle) => void (scope.onmessage = (event) => handle(event.data)),
    };
  }
  const { parentPort } = await import('node:worker_threads');
  if (!parentPort) throw new Error('stages/count/_worker.ts runs as a worker thread, not as a script');
  return {
    post: (reply, transfer = []) => parentPort.postMessage(reply, transfer),
    listen: (handle) => void parentPort.on('message', handle),
  };
}

const port = await openPort();
// Jobs run one after another, in the order they came, and are answered in that order: the pool may
// send the next job before this one is done, and a thread's shards share its dictionary.
let queue = Promise.resolve();
port.listen((job) => {
  queue = queue.then(async () => {
    try {
      const { result, transfer } = await runJob(job);
      port.post({ ok: true, result }, transfer);
    } catch (error) {
      port.post({ ok: false, error: serializeError(error) });
    }
  });
});
