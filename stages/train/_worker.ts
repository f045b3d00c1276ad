/**
 * A training worker thread: holds one replica of the model (stages/train/_replica.ts) on its own
 * backend and answers `{ type: 'init', setup, backend }` once, then one `{ type: 'step', ... }` per
 * minibatch with its rows' mean loss (gradients and state go through shared memory).
 * stages/train/_parallel.ts drives it through lib/workers.ts; it runs as a worker thread under Node
 * (through lib/worker-bootstrap.mjs) and Deno.
 */
import { serve } from '../../lib/workers.ts';
import { backend, type BackendName } from './backend.ts';
import { replica, type ReplicaSetup, type ReplicaStep } from './_replica.ts';

type Message = { type: 'init'; setup: ReplicaSetup; backend: BackendName } | ({ type: 'step' } & ReplicaStep);

let mine: ReturnType<typeof replica> | undefined;

await serve(async (message: Message) => {
  if (message.type === 'init') {
    await backend(message.backend);
    mine = replica(message.setup);
    return 0;
  }
  if (!mine) throw new Error('A training worker got a step before its init');
  return mine.step(message);
});
