/**
 * Distributed counting on NATS JetStream. `distributedCountStage` is the count stage, whose shards
 * are counted and partitions reduced by workers on any machine when `--nats` is set (else it is
 * `countStage` itself); `serveJobs` is the worker loop (scripts/worker.ts). _protocol.ts names what the two share,
 * _codec.ts is the count result format, _partition.ts the reduce job's, _connect.ts the credentials.
 */
import type { Stage } from '../../../pipeline/types.ts';
import { countStage, runCount } from '../index.ts';
import { natsCountShards, natsReduce } from './_coordinator.ts';

export { connectNats, natsOptions, type NatsSettings } from './_connect.ts';
export { natsCountShards, natsReduce, natsRunId } from './_coordinator.ts';
export { serveJobs, workJob, type ServeOptions } from './_worker.ts';
export { describeJob, jobIndex, type JobMessage } from './_protocol.ts';

export const distributedCountStage: Stage = {
  ...countStage,
  run: (ctx) => (ctx.config.nats ? runCount(ctx, { shardSource: natsCountShards, reduceSource: natsReduce }) : countStage.run(ctx)),
};
