/**
 * A web Worker for lib/workers.ts under Deno (test/e2e/deno.test.ts): echoes each shard's index,
 * except that the first time it meets shard `at` it dies of an uncaught exception (the marker
 * file `file` records that it did).
 */
import { existsSync, writeFileSync } from 'node:fs';

const scope = globalThis as unknown as { postMessage(message: unknown): void; onmessage: ((event: MessageEvent) => void) | null };
scope.onmessage = (event) => {
  const { shard, options } = event.data as { shard: { index: number }; options: { at: number; file: string } };
  if (shard.index === options.at && !existsSync(options.file)) {
    writeFileSync(options.file, 'died once');
    setTimeout(() => {
      throw new Error('boom');
    });
    return;
  }
  scope.postMessage({ ok: true, result: { index: shard.index } });
};
