/**
 * A NATS worker that misbehaves on purpose, for test/e2e/nats.test.ts. It runs the real worker loop
 * (serveJobs) with a job handler chosen by MODE, for the jobs of KIND (count, the default, or
 * reduce; the other kind is done properly):
 *   stall     prints "stalled on shard N" ("on partition N of P") and never finishes (the test SIGKILLs it)
 *   slow      prints "slow on shard N", waits 3 ack waits (heartbeats keep the job), then does it
 *   garbage   answers every job with bytes that are not its output
 *   truncated answers with the real output cut short
 *   fail      throws on every job
 *
 *   node --import tsx test/helpers/nats-test-worker.ts --nats URL --mode MODE [--kind KIND] [--ack-wait SECONDS] [--exit-when-idle SECONDS]
 */
import { parseArgs } from 'node:util';
import { connectNats, describeJob, serveJobs, workJob } from '../../stages/count/nats/index.ts';
import type { JobMessage } from '../../stages/count/nats/index.ts';

const { values } = parseArgs({ strict: false, options: { nats: { type: 'string' }, mode: { type: 'string' }, kind: { type: 'string' }, 'ack-wait': { type: 'string' }, 'exit-when-idle': { type: 'string' } } });
const { nats: url, mode, kind = 'count', 'ack-wait': ackWait = '1', 'exit-when-idle': idle = '30' } = values as Record<string, string>;
const print = (line: string) => process.stdout.write(`${line}\n`);
const handlers: Record<string, (job: JobMessage, input: Uint8Array | undefined) => Promise<Uint8Array>> = {
  stall: async (job) => {
    print(`stalled on ${describeJob(job)}`);
    return new Promise<Uint8Array>(() => {});
  },
  slow: async (job, input) => {
    print(`slow on ${describeJob(job)}`);
    await new Promise((resolve) => setTimeout(resolve, 3 * Number(ackWait) * 1000));
    return workJob(job, input);
  },
  garbage: async () => crypto.getRandomValues(new Uint8Array(4096)),
  truncated: async (job, input) => (await workJob(job, input)).subarray(0, -3),
  fail: async () => {
    throw new Error('This test worker fails every job');
  },
};
const misbehave = handlers[mode];
if (!misbehave) throw new TypeError(`Expected a mode (${Object.keys(handlers).join(', ')}), got \`${mode}\``);
const handle = (job: JobMessage, input: Uint8Array | undefined) => (job.kind === kind ? misbehave : workJob)(job, input);
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
const nc = await connectNats({ nats: url, natsCreds: '', natsCa: '', natsCert: '', natsKey: '' }, `test worker ${mode}`);
print('connected; waiting for jobs');
await serveJobs(nc, { signal: controller.signal, exitWhenIdleMs: Number(idle) * 1000, log: print, handle });
await nc.close();
