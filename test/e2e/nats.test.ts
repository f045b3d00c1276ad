/**
 * Distributed counting on a real nats-server (JetStream, file storage, a free loopback port): the
 * pipeline with `--nats` as coordinator, workers as child processes (two Node, one Deno), and every
 * result compared with a local run's database and tokens.bin, byte for byte, through each fault:
 * a worker SIGKILLed mid-job, a long job kept alive by heartbeats, the coordinator SIGKILLed and
 * rerun, the server restarted mid-run, a worker returning garbage, a job failing three times.
 * Shard (count) jobs and partition (reduce) jobs go through the same faults where they differ:
 * the coordinator killed in the reduce phase, a reduce job's worker killed, a garbage part file,
 * a reduce job failing three times.
 * Skipped (and says so) when nats-server is not installed; `.ci/run` installs it.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectNats } from '../../stages/count/nats/index.ts';
import { openRunDatabase } from '../../storage/schema.ts';
import { dumpTables } from '../oracles/count-oracle.ts';
import { skipWithoutNats, startNatsServer, startWorker, stopWorkers, waitForOutput, writeInputs, type WorkerProcess } from '../helpers/nats-server.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pipeline = join(root, 'scripts/run-pipeline.ts');
const testWorker = join(root, 'test/helpers/nats-test-worker.ts');
const ACK_WAIT = 1;

t.test('distributed counting on a nats-server', { skip: skipWithoutNats() }, async (t) => {
  const server = (await startNatsServer())!;
  t.teardown(() => server.stop());
  const { dir: inputs, files } = writeInputs(13, 3000);
  const settings = ['--input', ...files, '--tokenizer', 'char', '--order', '3', '--shard-mb', '0.002', '--until', 'count', '--checkpoint-secs', '0'];

  /**
   * Runs the pipeline; SIGKILLs it after `killAfter` progress events, or at the first event
   * `killAfter` picks; `onEvents` sees the count so far.
   */
  type Progress = { type: string; done: number; total: number; data?: { phase?: string } };
  const runPipeline = (dir: string, extra: string[] = [], killAfter?: number | ((event: Progress) => boolean), onEvents?: (events: number) => void) => new Promise<{ code: number | null; killed: boolean; stderr: string; events: number }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', pipeline, ...settings, '--out', dir, '--json', ...extra], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let events = 0;
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const event of lines.filter((line) => line.includes('"type":"progress"')).map((line) => JSON.parse(line) as Progress)) {
        events++;
        if (typeof killAfter === 'number' ? events >= killAfter : killAfter?.(event)) child.kill('SIGKILL');
      }
      onEvents?.(events);
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, killed: signal === 'SIGKILL', stderr, events }));
  });
  const distributed = (extra: string[] = []) => ['--nats', server.url, '--nats-ack-wait', String(ACK_WAIT), ...extra];
  /** The run's tables (tokens, n-grams, meta) and tokens.bin. */
  const result = (dir: string) => {
    const db = openRunDatabase(join(dir, 'lmpipe.sqlite'), { readonly: true });
    try {
      return { tables: dumpTables(db), stream: readFileSync(join(dir, 'tokens.bin')).toString('base64') };
    } finally {
      db.close();
    }
  };
  /** Names of the streams on the server (object store buckets are streams OBJ_<bucket>). */
  const streams = async () => {
    const nc = await connectNats({ nats: server.url, natsCreds: '', natsCa: '', natsCert: '', natsKey: '' }, 'test');
    const names: string[] = [];
    for await (const name of (await jetstreamManager(nc)).streams.names()) names.push(name);
    await nc.close();
    return names.filter((name) => name.startsWith('LMPIPE_') || name.startsWith('OBJ_lmpipe-'));
  };

  const localDir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-local-'));
  const local = await runPipeline(localDir, ['--workers', '1']);
  t.equal(local.code, 0, local.stderr);
  const expected = result(localDir);

  const workers: WorkerProcess[] = [
    startWorker(server.url, { runtime: 'node' }),
    startWorker(server.url, { runtime: 'node' }),
    startWorker(server.url, { runtime: 'deno' }),
  ];
  t.teardown(() => stopWorkers(workers));
  await Promise.all(workers.map((worker) => waitForOutput(worker, (output) => output.includes('waiting for jobs'))));

  await t.test('a run on two Node workers and one Deno worker writes the local run\'s counts, and leaves nothing in JetStream', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    const run = await runPipeline(dir, distributed());
    t.equal(run.code, 0, run.stderr);
    t.same(result(dir), expected);
    t.same(await streams(), []);
    // Every worker took part (the Deno one too).
    for (const worker of workers) t.match(worker.output(), /finished shard/);
  });

  await t.test('--ship-input: workers count the shard bytes from the object store', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    const run = await runPipeline(dir, distributed(['--ship-input']));
    t.equal(run.code, 0, run.stderr);
    t.same(result(dir), expected);
    t.same(await streams(), []);
  });

  await t.test('a coordinator SIGKILLed twice and rerun resumes to the same counts', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    for (const killAfter of [4, 9]) {
      const killed = await runPipeline(dir, distributed(), killAfter);
      t.ok(killed.killed || killed.code === 0, killed.stderr);
    }
    const rerun = await runPipeline(dir, distributed());
    t.equal(rerun.code, 0, rerun.stderr);
    t.same(result(dir), expected);
    t.same(await streams(), []);
  });

  await t.test('a coordinator SIGKILLed in the reduce phase and rerun reduces only the partitions not recorded', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    const reduced = () => workers.reduce((sum, worker) => sum + (worker.output().match(/finished partition/g) ?? []).length, 0);
    const before = reduced();
    let partitions = 0;
    const killed = await runPipeline(dir, distributed(), (event) => {
      if (event.data?.phase === 'reduce') partitions = event.total;
      return event.data?.phase === 'reduce' && event.done >= 1;
    });
    t.ok(killed.killed, killed.stderr);
    t.ok(partitions >= 2, `${partitions} partitions`);
    const rerun = await runPipeline(dir, distributed());
    t.equal(rerun.code, 0, rerun.stderr);
    t.same(result(dir), expected);
    t.same(await streams(), []);
    // The rerun took what the killed run left in JetStream (jobs out, parts stored) and published
    // the rest: every partition reduced once over the two runs.
    t.equal(reduced() - before, partitions);
  });

  await t.test('the server restarted mid-run: clients reconnect and the counts are the same', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    // Restart once the run has merged a few shards (jobs out, results flowing).
    let restarted: Promise<void> | undefined;
    const run = await runPipeline(dir, distributed(), undefined, (events) => {
      if (events >= 4 && !restarted) restarted = server.restart();
    });
    await restarted;
    t.ok(restarted, 'the server was restarted');
    t.equal(run.code, 0, run.stderr);
    t.same(result(dir), expected);
    t.same(await streams(), []);
  });

  await stopWorkers(workers);

  await t.test('a server that lets in only lmpipe\'s users, onto lmpipe\'s subjects (the README\'s config), and a Deno worker alone', async (t) => {
    const locked = (await startNatsServer(['-c', join(root, 'test/helpers/nats-lmpipe.conf')]))!;
    t.teardown(() => locked.stop());
    const url = (user: string) => locked.url.replace('nats://', `nats://${user}@`);
    const worker = startWorker(url('worker:worker-secret'), { runtime: 'deno' });
    await waitForOutput(worker, (output) => output.includes('waiting for jobs'));
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    const run = await runPipeline(dir, ['--nats', url('coordinator:coordinator-secret'), '--nats-ack-wait', String(ACK_WAIT)]);
    t.equal(run.code, 0, run.stderr);
    t.same(result(dir), expected);
    t.match(worker.output(), /finished shard[^]*finished partition/, 'the Deno worker counted and reduced');
    const refused = await runPipeline(mkdtempSync(join(tmpdir(), 'lmpipe-nats-')), ['--nats', url('coordinator:wrong')]);
    t.equal(refused.code, 4);
    t.match(refused.stderr, /Could not connect to NATS at 127\.0\.0\.1:\d+: .*Authorization Violation/);
    await stopWorkers([worker]);
  });

  await t.test('a worker SIGKILLed mid-job: the job goes to another worker after the ack wait', async (t) => {
    const stalled = startWorker(server.url, { script: testWorker, args: ['--mode', 'stall'] });
    await waitForOutput(stalled, (output) => output.includes('waiting for jobs'));
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    const running = runPipeline(dir, distributed());
    await waitForOutput(stalled, (output) => /stalled on shard \d+/.test(output));
    stalled.child.kill('SIGKILL');
    const shard = /stalled on shard (\d+)/.exec(stalled.output())![1];
    const rescuer = startWorker(server.url);
    const run = await running;
    t.equal(run.code, 0, run.stderr);
    t.same(result(dir), expected);
    t.match(rescuer.output(), new RegExp(`finished shard ${shard} .*\\(attempt 2\\)`), 'the killed job was redelivered');
    await stopWorkers([rescuer]);
  });

  await t.test('a worker SIGKILLed mid reduce job: the partition goes to another worker after the ack wait', async (t) => {
    const stalled = startWorker(server.url, { script: testWorker, args: ['--mode', 'stall', '--kind', 'reduce'] });
    await waitForOutput(stalled, (output) => output.includes('waiting for jobs'));
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    const running = runPipeline(dir, distributed());
    await waitForOutput(stalled, (output) => /stalled on partition \d+/.test(output));
    stalled.child.kill('SIGKILL');
    const partition = /stalled on partition (\d+)/.exec(stalled.output())![1];
    const rescuer = startWorker(server.url);
    const run = await running;
    t.equal(run.code, 0, run.stderr);
    t.same(result(dir), expected);
    t.match(rescuer.output(), new RegExp(`finished partition ${partition} .*\\(attempt 2\\)`), 'the killed job was redelivered');
    await stopWorkers([rescuer]);
  });

  await t.test('a job longer than the ack wait is kept by working() heartbeats, not redelivered', async (t) => {
    const slow = startWorker(server.url, { script: testWorker, args: ['--mode', 'slow', '--ack-wait', String(ACK_WAIT)] });
    await waitForOutput(slow, (output) => output.includes('waiting for jobs'));
    const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
    const running = runPipeline(dir, distributed());
    // Another worker joins while the slow one holds its first job: it would get that job if the
    // heartbeats failed.
    await waitForOutput(slow, (output) => /slow on shard \d+/.test(output));
    const other = startWorker(server.url);
    const run = await running;
    t.equal(run.code, 0, run.stderr);
    t.same(result(dir), expected);
    const shard = /slow on shard (\d+)/.exec(slow.output())![1];
    t.match(slow.output(), new RegExp(`finished shard ${shard} .*\\(attempt 1\\)`));
    t.notMatch(slow.output() + other.output(), /attempt [2-9]/, 'no job was delivered twice');
    await stopWorkers([slow, other]);
  });

  await t.test('a job whose workers all die, three times, stops the run with an error naming the shard', async (t) => {
    const single = join(inputs, 'single.txt');
    writeFileSync(single, 'a corpus of one shard\n');
    const running = runPipeline(mkdtempSync(join(tmpdir(), 'lmpipe-nats-')), [...distributed(), '--input', single]);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const doomed = startWorker(server.url, { script: testWorker, args: ['--mode', 'stall'] });
      await waitForOutput(doomed, (output) => output.includes('stalled on shard 0'));
      doomed.child.kill('SIGKILL');
      await doomed.exited;
    }
    // The server notices the exhausted job (and says so) when a worker next asks for work.
    const survivor = startWorker(server.url);
    const run = await running;
    t.equal(run.code, 1, run.stderr);
    t.match(run.stderr, /single\.txt.*: Shard 0: was delivered 3 times and never finished/);
    t.same(await streams(), []);
    await stopWorkers([survivor]);
  });

  for (const mode of ['garbage', 'truncated']) {
    await t.test(`a worker returning ${mode} stops the run with an error naming the shard`, async (t) => {
      const bad = startWorker(server.url, { script: testWorker, args: ['--mode', mode] });
      await waitForOutput(bad, (output) => output.includes('waiting for jobs'));
      const run = await runPipeline(mkdtempSync(join(tmpdir(), 'lmpipe-nats-')), distributed());
      t.equal(run.code, 1, run.stderr);
      t.match(run.stderr, /error: count: .*part0\.txt at bytes 0-\d+: Shard 0: A worker returned a result that is not valid counts: Expected/);
      t.same(await streams(), [], 'the failed run left nothing in JetStream');
      await stopWorkers([bad]);
    });
  }

  await t.test('a worker returning a garbage part file stops the run with an error naming the partition', async (t) => {
    const bad = startWorker(server.url, { script: testWorker, args: ['--mode', 'garbage', '--kind', 'reduce'] });
    await waitForOutput(bad, (output) => output.includes('waiting for jobs'));
    const run = await runPipeline(mkdtempSync(join(tmpdir(), 'lmpipe-nats-')), distributed());
    t.equal(run.code, 1, run.stderr);
    t.match(run.stderr, /error: count: Partition 0 of \d+: A worker returned a part file that is not valid: Expected/);
    t.same(await streams(), [], 'the failed run left nothing in JetStream');
    await stopWorkers([bad]);
  });

  await t.test('a reduce job that fails three times stops the run with the worker\'s error, naming the partition', async (t) => {
    const failing = startWorker(server.url, { script: testWorker, args: ['--mode', 'fail', '--kind', 'reduce'] });
    await waitForOutput(failing, (output) => output.includes('waiting for jobs'));
    const run = await runPipeline(mkdtempSync(join(tmpdir(), 'lmpipe-nats-')), distributed());
    t.equal(run.code, 1, run.stderr);
    t.match(run.stderr, /Partition \d+ of \d+: failed 3 times; last on worker .*: This test worker fails every job/);
    t.same(await streams(), []);
    await stopWorkers([failing]);
  });

  await t.test('a job that fails three times stops the run with the worker\'s error, naming the shard', async (t) => {
    const failing = startWorker(server.url, { script: testWorker, args: ['--mode', 'fail'] });
    await waitForOutput(failing, (output) => output.includes('waiting for jobs'));
    const run = await runPipeline(mkdtempSync(join(tmpdir(), 'lmpipe-nats-')), distributed());
    t.equal(run.code, 1, run.stderr);
    t.match(run.stderr, /Shard \d+: failed 3 times; last on worker .*: This test worker fails every job/);
    t.same(await streams(), []);
    await stopWorkers([failing]);
  });
});
