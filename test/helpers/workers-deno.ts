/**
 * Runs lib/workers.ts's pool under Deno on test/helpers/deno-test-worker.ts, whose worker dies on
 * shard 2 once, and prints the shard indices in the order they came and the pool's log as JSON.
 *
 *   deno run -A --config deno.json test/helpers/workers-deno.ts MARKER-FILE
 */
import { workers } from '../../lib/workers.ts';
import type { Shard } from '../../pipeline/types.ts';

const [file] = (globalThis as unknown as { Deno: { args: string[] } }).Deno.args;
const shards: Shard[] = Array.from({ length: 6 }, (_, index) => ({
  index, path: '/corpus/a.txt', format: 'text', start: index * 100, end: index * 100 + 100, continuesDocument: index > 0,
}));
const log: string[] = [];
const indices: number[] = [];
const module = new URL('./deno-test-worker.ts', import.meta.url);
for await (const result of workers<{ index: number }, Shard>(shards, { stage: 'count', workers: 2, module, options: { at: 2, file }, log: (m) => log.push(m) })) {
  indices.push(result.index);
}
console.log(JSON.stringify({ indices, log }));
