/**
 * Runs lib/workers.ts's pool under Deno on test/helpers/count-test-worker.ts, once per way a worker
 * can end mid-job (test/e2e/deno.test.ts), and prints one JSON line: for each case the shard
 * indices in the order they came and the pool's log, or the error the pool failed with; and, as
 * `transfer`, what a run that recycles buffers moved each way.
 *
 *   deno run -A --config deno.json test/helpers/workers-deno.ts MARKER-FILE
 */
import { LmpipeError } from '../../lib/errors.ts';
import { workers } from '../../lib/workers.ts';
import type { Shard } from '../../pipeline/types.ts';

const [file] = (globalThis as unknown as { Deno: { args: string[] } }).Deno.args;
const shards: Shard[] = Array.from({ length: 6 }, (_, index) => ({
  index, path: '/corpus/a.txt', format: 'text', start: index * 100, end: index * 100 + 100, continuesDocument: index > 0,
}));
const module = new URL('./count-test-worker.ts', import.meta.url);
const cases = { 'exit-once': 2, exit: 3, uncaught: 1, reject: 1 };
const outcomes: Record<string, unknown> = {};
for (const [mode, at] of Object.entries(cases)) {
  const log: string[] = [];
  const indices: number[] = [];
  try {
    for await (const result of workers<{ index: number }, Shard>(shards, { stage: 'count', workers: 2, module, options: { mode, at, file }, log: (m) => log.push(m) })) {
      indices.push(result.index);
    }
    outcomes[mode] = { indices, log };
  } catch (error) {
    const { code, file, position } = error instanceof LmpipeError ? error : ({} as Partial<LmpipeError>);
    outcomes[mode] = { indices, log, error: { name: (error as Error).name, message: (error as Error).message, code, file, position } };
  }
}
// Transfer lists both ways: buffers recycled to the workers leave this thread (detached), and each
// result's payload arrives whole.
const recycled: ArrayBuffer[] = [];
const given = [new ArrayBuffer(1024), new ArrayBuffer(2048)];
const transfer = { received: [] as number[], payloads: [] as number[], detached: false };
const echo = workers<{ index: number; payload: Int32Array; recycled: number[] }, Shard>(shards, { stage: 'count', workers: 1, module, options: { mode: 'reverse' }, recycled });
for await (const result of echo) {
  transfer.received.push(...result.recycled);
  transfer.payloads.push(result.payload[0]);
  if (result.index === 0) recycled.push(...given);
}
transfer.detached = given.every((buffer) => buffer.byteLength === 0);
outcomes.transfer = transfer;
console.log(JSON.stringify(outcomes));
