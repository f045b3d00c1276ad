/**
 * The count worker: for each `{ shard, options, recycle }` it receives, it runs read -> tokenize ->
 * count (stages/_count-shard.ts) and posts back `{ ok, result }` with the result's buffers
 * transferred, or `{ ok: false, error }`. `recycle` holds buffers of earlier results that the main
 * thread is done with, for this thread's pool. Jobs run one at a time, in the order they came;
 * pipeline/workers.ts feeds it.
 *
 * The same module runs as a Node worker thread (through count-worker-bootstrap.mjs) and as a Deno
 * web Worker.
 */
import { countJob, transferables, type CountJob } from './_shard.ts';
import { serializeError, type WorkerReply } from '../../lib/workers.ts';

interface Port {
  post(reply: WorkerReply<unknown>, transfer?: ArrayBuffer[]): void;
  listen(handle: (message: CountJob) => void): void;
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
      const result = await countJob(job);
      port.post({ ok: true, result }, transferables(result));
    } catch (error) {
      port.post({ ok: false, error: serializeError(error) });
    }
  });
});
