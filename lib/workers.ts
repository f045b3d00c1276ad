/**
 * The worker pool: runs one job per shard on a pool of threads and yields the results strictly in
 * shard order, whatever order they finish in.
 *
 *   for await (const counts of workers(shards, { workers: 2, options: { order: 3, ... } })) merge(counts);
 *
 * - With `inline`, the calling thread is one of the `workers`: it runs jobs itself (between merging
 *   results) and only workers - 1 threads start, so `--workers 1` starts none. On 2 cores that is 2
 *   busy threads, not 3, and the first shard starts at once instead of after a thread's start-up
 *   (tsx and the modules load in each thread: about 0.3 s here). Each thread is then sent its next
 *   job before it finishes the current one: handing out work needs the calling thread, which may
 *   be in the middle of counting a shard.
 * - Protocol: a worker gets `{ shard, options, recycle }` messages and answers each with
 *   `{ ok, result }` or `{ ok: false, error }`, in the order the jobs came.
 * - Backpressure: p-queue holds at most `workers` jobs waiting, and at most `2 * workers` results
 *   wait for the consumer, so a slow consumer (the merger, SQLite) bounds memory.
 * - One module runs under both runtimes, on `node:worker_threads`: Node 20 starts the thread through
 *   a bootstrap that registers tsx (tsx does not register itself inside worker threads); Deno starts
 *   it on the .ts module directly. Not Deno's web Worker: one that exits (`Deno.exit()`,
 *   `process.exit()`, `close()`) fires no event at all, so its job would wait forever, whereas a
 *   worker_threads Worker reports every end as 'exit'. Results come back with their buffers
 *   transferred, not copied.
 * - A worker that throws fails its shard with the error it threw (an LmpipeError keeps its code,
 *   file and position). A worker that dies (crash, exit, out of memory) is replaced and its shard
 *   retried once; dying twice fails the run with an LmpipeError naming the shard's file and range.
 *   Never a silent partial count.
 * - startThread() gives one such thread to a caller that keeps state in it (the training replicas),
 *   and serve() is the worker side of the protocol for every worker module.
 */
import PQueue from 'p-queue';
import { LmpipeError, type ErrorCode } from './errors.ts';

/**
 * What the pool needs of a job: its place in the order results are yielded in, and where it reads
 * (for the error that names it when its worker dies twice). The count stage's shards are jobs.
 */
export interface PoolJob {
  index: number;
  path: string;
  format?: string;
  start?: number;
  end?: number;
}

export interface WorkersOptions<O, J extends PoolJob = PoolJob> {
  /** Workers: threads to start, or with `inline` the calling thread and workers - 1 threads. */
  workers: number;
  /** Sent with every shard: `{ shard, options }`. */
  options: O;
  /** The worker module: it answers `{ shard, options, recycle }` messages (stages/count/_worker.ts). */
  module: URL;
  /** The stage the jobs belong to, for messages and errors ("A count worker died ..."). */
  stage?: string;
  signal?: AbortSignal;
  /** Told when a worker died and its shard is being retried. */
  log?(message: string): void;
  /**
   * Buffers the consumer is done with: each job takes what is here and transfers it to its worker
   * (as `recycle`) for reuse (lib/buffer-pool.ts).
   */
  recycled?: ArrayBuffer[];
  /**
   * Jobs started ahead of the consumer at most (default 2 × workers, at least workers): each holds
   * its result until the consumer takes it, so a memory budget may ask for fewer.
   */
  ahead?: number;
  /** Runs a job on the calling thread (see above); it gets the message a thread would. */
  inline?(job: { shard: J; options: unknown; recycle: ArrayBuffer[] }): Promise<unknown>;
}

/** What a worker posts back for one job. */
export type WorkerReply<R> = { ok: true; result: R } | { ok: false; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  code?: ErrorCode;
  stage?: string;
  file?: string;
  position?: string;
}

interface Thread {
  readonly dead: boolean;
  run(message: unknown, transfer?: ArrayBuffer[]): Promise<unknown>;
  terminate(): void;
}

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';

export async function* workers<R, J extends PoolJob = PoolJob>(
  shards: Iterable<J>,
  options: WorkersOptions<unknown, J>,
): AsyncGenerator<R> {
  const size = options.workers;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`Expected \`--workers\` to be an integer of at least 1, got \`${size}\``);
  const module = options.module;
  const threads = new Set<Thread>();
  let closing = false;
  const start = async () => {
    const thread = await _startThread(module);
    threads.add(thread);
    if (closing) thread.terminate();
    return thread;
  };
  // Free job slots of the executors, and jobs waiting for one (threads join as they start, the
  // calling thread at once). With `inline`, each thread gets 2 slots: its next job is already in
  // its queue when it finishes one, since handing it out takes this thread, which may be counting.
  const idle: Thread[] = [];
  const waiting: Array<{ resolve(thread: Thread): void; reject(error: unknown): void }> = [];
  const release = (thread: Thread) => (waiting.length > 0 ? waiting.shift()!.resolve(thread) : void idle.push(thread));
  const acquire = () => (idle.length > 0 ? Promise.resolve(idle.pop()!) : new Promise<Thread>((resolve, reject) => waiting.push({ resolve, reject })));
  const inline = options.inline;
  if (inline) release({ dead: false, run: (message) => inline(message as Parameters<typeof inline>[0]), terminate() {} });
  const slots = inline ? 2 : 1;
  for (let i = inline ? 1 : 0; i < size; i++) {
    start().then((thread) => Array.from({ length: slots }, () => release(thread)), (error) => waiting.splice(0).forEach((job) => job.reject(error)));
  }
  const ahead = Math.max(size, options.ahead ?? 2 * size);
  const queue = new PQueue({ concurrency: inline ? 1 + (size - 1) * slots : size });
  const results: Array<Promise<R>> = [];
  const job = async (shard: J): Promise<R> => {
    let thread = await acquire();
    try {
      for (let attempt = 1; ; attempt++) {
        if (thread.dead) thread = await start();
        try {
          const recycle = options.recycled?.splice(0) ?? [];
          return (await thread.run({ shard, options: options.options, recycle }, recycle)) as R;
        } catch (error) {
          if (!(error instanceof ThreadDied) || attempt === 2 || closing) throw _shardError(shard, error, options.stage);
          options.log?.(`A ${options.stage ?? 'pool'} worker died on shard ${shard.index} of ${shard.path} (${error.message}); retrying it`);
        }
      }
    } finally {
      release(thread);
    }
  };
  try {
    for (const shard of shards) {
      if (options.signal?.aborted) break;
      await queue.onSizeLessThan(size);
      const result = queue.add(() => job(shard)) as Promise<R>;
      // Handled when its turn comes; this only keeps an early failure from being "unhandled".
      result.catch(() => {});
      results.push(result);
      if (results.length >= ahead) yield await results.shift()!;
    }
    while (results.length > 0) yield await results.shift()!;
  } finally {
    // Also when the consumer stopped early or a shard failed: no thread outlives the pool.
    closing = true;
    queue.clear();
    for (const thread of threads) thread.terminate();
  }
}

/** A worker thread that stopped without replying (crashed, exited, was terminated). */
class ThreadDied extends Error {}

function _shardError(shard: PoolJob, error: unknown, stage?: string): Error {
  const range = shard.format === 'text' ? `bytes ${shard.start}-${shard.end}` : undefined;
  if (error instanceof ThreadDied) {
    return new LmpipeError('INTERNAL', `A ${stage ?? 'pool'} worker died twice on shard ${shard.index} (${error.message})`, {
      stage, file: shard.path, position: range,
    });
  }
  return error as Error;
}

function _revive(error: SerializedError): Error {
  if (error.code) {
    return new LmpipeError(error.code, error.message, { stage: error.stage, file: error.file, position: error.position });
  }
  const Type = error.name === 'TypeError' ? TypeError : error.name === 'RangeError' ? RangeError : Error;
  return new Type(error.message);
}

/** Turns a thrown value into something postMessage can carry. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof LmpipeError) {
    return { name: error.name, message: error.message, code: error.code, stage: error.stage, file: error.file, position: error.position };
  }
  if (error instanceof Error) return { name: error.name, message: error.stack ?? error.message };
  return { name: 'Error', message: String(error) };
}

/**
 * One thread of `module` that stays with its caller, for work that keeps state in the thread (the
 * training replicas of stages/train/_parallel.ts): `run(message)` resolves with the reply. Same
 * protocol, start-up and death handling as the pool's threads.
 */
export type WorkerThread = Thread;
export const startThread = (module: URL): Promise<WorkerThread> => _startThread(module);

/**
 * The worker side of the protocol, for both runtimes: answers each message with `{ ok, result }`
 * (the buffers `transfer(result)` names moved, not copied) or `{ ok: false, error }`, one message
 * at a time in the order they came.
 */
export async function serve<M, R>(handle: (message: M) => R | Promise<R>, transfer: (result: R) => ArrayBuffer[] = () => []): Promise<void> {
  const port = await _parentPort();
  let queue = Promise.resolve();
  port.listen((message) => {
    queue = queue.then(async () => {
      try {
        const result = await handle(message as M);
        port.post({ ok: true, result }, transfer(result));
      } catch (error) {
        port.post({ ok: false, error: serializeError(error) });
      }
    });
  });
}

async function _parentPort(): Promise<{ post(reply: WorkerReply<unknown>, transfer?: ArrayBuffer[]): void; listen(handle: (message: unknown) => void): void }> {
  const { parentPort } = await import('node:worker_threads');
  if (!parentPort) throw new Error('A worker module runs as a worker thread, not as a script');
  return {
    post: (reply, transfer = []) => parentPort.postMessage(reply, transfer),
    listen: (handle) => void parentPort.on('message', handle),
  };
}

/**
 * A thread runs its jobs one after another (the worker module queues them) and replies in order:
 * `pending` holds the jobs sent and not answered, oldest first. A thread that dies rejects them all
 * with ThreadDied and refuses further jobs.
 */
function _thread(post: (message: unknown, transfer: ArrayBuffer[]) => void, terminate: () => void) {
  const pending: Array<{ resolve(value: unknown): void; reject(error: Error): void }> = [];
  let dead: string | undefined;
  const thread = {
    get dead() {
      return dead !== undefined;
    },
    /** Jobs sent and not answered yet. */
    get busy() {
      return pending.length > 0;
    },
    run(message: unknown, transfer: ArrayBuffer[] = []): Promise<unknown> {
      if (dead) return Promise.reject(new ThreadDied(dead));
      return new Promise((resolve, reject) => {
        pending.push({ resolve, reject });
        post(message, transfer);
      });
    },
    terminate() {
      thread.died('terminated');
      terminate();
    },
    reply(reply: WorkerReply<unknown>) {
      const job = pending.shift();
      if (reply.ok) job?.resolve(reply.result);
      else job?.reject(_revive(reply.error));
    },
    died(reason: string) {
      dead ??= reason;
      for (const job of pending.splice(0)) job.reject(new ThreadDied(reason));
    },
  };
  return thread;
}

/** A worker_threads Worker on `module`: Deno loads the .ts itself, Node through the tsx bootstrap. */
async function _startThread(module: URL): Promise<Thread> {
  const { Worker } = await import('node:worker_threads');
  const worker = isDeno
    ? new Worker(module)
    : new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
      workerData: { module: module.href },
      // Not the parent's --import/--loader flags (tap's instrumentation, tsx's own): each would
      // load again in every thread. The bootstrap registers what the worker needs.
      execArgv: [],
    });
  // A busy worker keeps the process alive (the main thread may be waiting on nothing else); an
  // idle one must not.
  const post = (message: unknown, transfer: ArrayBuffer[]) => {
    worker.ref();
    worker.postMessage(message, transfer);
  };
  const thread = _thread(post, () => void worker.terminate());
  worker.on('message', (reply: WorkerReply<unknown>) => {
    thread.reply(reply);
    if (!thread.busy) worker.unref();
  });
  worker.on('error', (error) => thread.died(`it threw ${error.message}`));
  worker.on('exit', (code) => thread.died(`it exited with code ${code}`));
  worker.unref();
  return thread;
}
