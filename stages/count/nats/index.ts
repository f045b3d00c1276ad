/**
 * Distributed counting on NATS JetStream. `distributedCountStage` is the count stage, whose shards
 * are counted by workers on any machine when `--nats` is set (else it is `countStage` itself);
 * `serveJobs` is the worker loop (scripts/worker.ts). _protocol.ts names what the two share,
 * _codec.ts is the result format, _connect.ts the credentials.
 */
import type { Stage } from '../../../pipeline/types.ts';
import { countStage, runCount } from '../index.ts';
import { natsCountShards } from './_coordinator.ts';

export { connectNats, natsOptions, type NatsSettings } from './_connect.ts';
export { natsCountShards, natsRunId } from './_coordinator.ts';
export { countJob, serveJobs, type ServeOptions } from './_worker.ts';
export type { JobMessage } from './_protocol.ts';

export const distributedCountStage: Stage = {
  ...countStage,
  run: (ctx) => (ctx.config.nats ? runCount(ctx, { shardSource: natsCountShards }) : countStage.run(ctx)),
};
