// Node 20 worker threads do not inherit tsx's loader, so a worker written in TypeScript cannot be
// started directly: this plain module registers tsx in the thread, then imports the real worker
// (lib/workers.ts passes its URL as workerData.module; Deno needs no bootstrap).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
