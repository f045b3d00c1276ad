/**
 * A worker module for test/unit/lib/workers.test.ts (Node) and test/helpers/workers-deno.ts (Deno),
 * speaking lib/workers.ts's protocol. It misbehaves on request (`options.mode`): it answers slowly
 * in reverse order, exits (with Deno.exit under Deno, process.exit under Node), exits once (with
 * process.exit), throws an error it reports, throws one it does not catch, or leaves a promise
 * rejection unhandled. Each result says which thread ran it and the sizes of the recycled buffers
 * its job brought.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { LmpipeError } from '../../lib/errors.ts';
import type { Shard } from '../../pipeline/types.ts';
import { serializeError } from '../../lib/workers.ts';

interface TestOptions {
  mode: 'reverse' | 'exit' | 'exit-once' | 'throw' | 'uncaught' | 'reject';
  /** The shard index the misbehaviour happens on. */
  at?: number;
  /** reverse: a file to append each started shard index to. exit-once: the marker file. */
  file?: string;
}

// The pool's protocol: jobs are answered in the order they came (it may send the next one early).
let queue = Promise.resolve();
parentPort!.on('message', (job: { shard: Shard; options: TestOptions; recycle?: ArrayBuffer[] }) => void (queue = queue.then(() => handle(job))));

async function handle({ shard, options, recycle = [] }: { shard: Shard; options: TestOptions; recycle?: ArrayBuffer[] }): Promise<void> {
  if (options.mode === 'reverse') {
    if (options.file) appendFileSync(options.file, `${shard.index}\n`);
    await new Promise((resolve) => setTimeout(resolve, (10 - (shard.index % 10)) * 15));
  }
  if (shard.index === options.at) {
    if (options.mode === 'exit') ((globalThis as { Deno?: { exit(code: number): never } }).Deno?.exit ?? process.exit)(3);
    if (options.mode === 'exit-once' && !existsSync(options.file!)) {
      writeFileSync(options.file!, 'died once');
      process.exit(3);
    }
    if (options.mode === 'uncaught') setTimeout(() => { throw new Error('boom'); });
    if (options.mode === 'throw') {
      const error = new LmpipeError('INPUT', 'Unexpected token', { stage: 'count', file: shard.path, position: 'byte 7' });
      parentPort!.postMessage({ ok: false, error: serializeError(error) });
      return;
    }
    if (options.mode === 'reject') void Promise.reject(new Error('rejected'));
    if (options.mode === 'uncaught' || options.mode === 'reject') return;
  }
  const payload = Int32Array.of(shard.index);
  const result = { index: shard.index, payload, thread: 'worker', recycled: recycle.map((buffer) => buffer.byteLength) };
  parentPort!.postMessage({ ok: true, result }, [payload.buffer]);
}
