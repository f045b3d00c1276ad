/**
 * The coordinator and a worker in this one process, on a real nats-server: runCount with the NATS
 * shard source against runCount with the local pool, reading inputs from their paths and shipped
 * through the object store, and the status file and log lines the coordinator writes on the way.
 * A worker returning a bad part file stops the reduce. (test/e2e/nats.test.ts runs the same as
 * separate processes, with faults; this one is quick.)
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNats, workJob, distributedCountStage, natsCountShards, natsRunId, serveJobs } from '../../stages/count/nats/index.ts';
import { runCount } from '../../stages/count/index.ts';
import { runPaths } from '../../storage/run-paths.ts';
import { drain, dumpTables, random, randomText, stageContext } from '../oracles/count-oracle.ts';
import { skipWithoutNats, startNatsServer, writeInputs } from '../helpers/nats-server.ts';

const skip = skipWithoutNats();

t.test('natsCountShards() and serveJobs() in one process give runCount the local pool\'s counts', { skip }, async (t) => {
  const server = (await startNatsServer())!;
  t.teardown(() => server.stop());
  const { files } = writeInputs(31, 2500);
  const settings = { input: files, tokenizer: 'd2l-word', order: 3, shardMb: 0.003, checkpointSecs: 0 } as const;
  const result = (dir: string, ctx: { db: Parameters<typeof dumpTables>[0] }) => ({ tables: dumpTables(ctx.db), stream: readFileSync(join(dir, 'tokens.bin')).toString('base64') });

  const localDir = mkdtempSync(join(tmpdir(), 'lmpipe-local-'));
  const local = stageContext(localDir, { ...settings, workers: 1 });
  await drain(runCount(local));
  const expected = result(localDir, local);
  local.close();

  const worker = await connectNats({ nats: server.url, natsCreds: '', natsCa: '', natsCert: '', natsKey: '' }, 'in-process worker');
  const stop = new AbortController();
  const lines: string[] = [];
  const served = serveJobs(worker, { signal: stop.signal, log: (line) => lines.push(line) });
  for (const shipInput of [false, true]) {
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    const ctx = stageContext(dir, { ...settings, nats: server.url, natsAckWait: 1, shipInput });
    await drain(distributedCountStage.run(ctx));
    t.same(result(dir, ctx), expected, `shipInput ${shipInput}`);
    t.notOk(existsSync(runPaths(dir).natsStatus), 'the status file goes when the count is done');
    ctx.close();
  }
  stop.abort();
  t.ok((await served) >= 2, 'the worker served the jobs');
  t.match(lines.join('\n'), /finished shard 0 .*\n[^]*finished partition 0 of \d+/, 'count jobs, then reduce jobs');
  await worker.close();
});

t.test('natsCountShards() stops with an error naming the shard when a worker returns garbage', { skip }, async (t) => {
  const server = (await startNatsServer())!;
  t.teardown(() => server.stop());
  const path = join(mkdtempSync(join(tmpdir(), 'lmpipe-nats-input-')), 'doc.txt');
  writeFileSync(path, randomText(random(5), 500));
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
  const ctx = stageContext(dir, { input: [path], tokenizer: 'char', order: 2, nats: server.url, natsAckWait: 1 });
  t.match(natsRunId(ctx), /^[0-9a-f]{16}$/);
  const worker = await connectNats({ nats: server.url, natsCreds: '', natsCa: '', natsCert: '', natsKey: '' }, 'in-process worker');
  const stop = new AbortController();
  // Real counts with one byte changed at the end: the last count no longer decodes to what was sent.
  const served = serveJobs(worker, { signal: stop.signal, handle: async (job, input) => (await workJob(job, input)).subarray(0, -1) });
  await t.rejects(drain(runCount(ctx, { shardSource: natsCountShards })), /Shard 0: A worker returned a result that is not valid counts/);
  stop.abort();
  await served;
  await worker.close();
  ctx.close();
});

t.test('natsReduce() stops with an error naming the partition when a worker returns a part file that is not valid', { skip }, async (t) => {
  const server = (await startNatsServer())!;
  t.teardown(() => server.stop());
  const path = join(mkdtempSync(join(tmpdir(), 'lmpipe-nats-input-')), 'doc.txt');
  writeFileSync(path, randomText(random(6), 500));
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
  const ctx = stageContext(dir, { input: [path], tokenizer: 'char', order: 3, nats: server.url, natsAckWait: 1 });
  const worker = await connectNats({ nats: server.url, natsCreds: '', natsCa: '', natsCert: '', natsKey: '' }, 'in-process worker');
  const stop = new AbortController();
  // Shard counts as they are; every part file with its last count (a Float64) one higher.
  const served = serveJobs(worker, {
    signal: stop.signal,
    handle: async (job, input) => {
      const output = await workJob(job, input);
      if (job.kind === 'reduce') new DataView(output.buffer, output.byteOffset).setFloat64(output.length - 8, new DataView(output.buffer, output.byteOffset).getFloat64(output.length - 8, true) + 1, true);
      return output;
    },
  });
  await t.rejects(drain(distributedCountStage.run(ctx)), /Partition \d+ of \d+: A worker returned a part file that is not valid: Expected the 3-gram counts to add up to \d+, got \d+/);
  stop.abort();
  await served;
  await worker.close();
  ctx.close();
});
