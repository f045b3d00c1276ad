/**
 * Credentials end to end, on a real nats-server configured for each: TLS with a private CA and a
 * client certificate (mTLS) plus a token, and an nkey user whose seed is passed as --nats-creds.
 * Each time a worker process (scripts/worker.ts, with the credential flags) and the coordinator
 * (the count stage in this process) count a small corpus to a local run's exact tables, and the
 * server refuses a client without the credential. The certificates are made here with openssl;
 * the nkey with the NATS client's own nkeys. Skipped (and says so) without nats-server or openssl.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { connectNats, distributedCountStage, serveJobs, type NatsSettings } from '../../stages/count/nats/index.ts';
import { runCount } from '../../stages/count/index.ts';
import { drain, dumpTables, stageContext } from '../oracles/count-oracle.ts';
import { skipWithoutNats, startNatsServer, startWorker, stopWorkers, waitForOutput, writeInputs } from '../helpers/nats-server.ts';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const skip = skipWithoutNats() || (hasOpenssl ? false : 'openssl is not installed (apt-get install openssl)');
const NO_CREDENTIALS: NatsSettings = { nats: '', natsCreds: '', natsCa: '', natsCert: '', natsKey: '' };

const { files } = writeInputs(41, 1200);
const settings = { input: files, tokenizer: 'char', order: 3, shardMb: 0.003, checkpointSecs: 0 } as const;
const tables = (dir: string, ctx: { db: Parameters<typeof dumpTables>[0] }) => ({ tables: dumpTables(ctx.db), stream: readFileSync(join(dir, 'tokens.bin')).toString('base64') });

async function localRun() {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-local-'));
  const ctx = stageContext(dir, { ...settings, workers: 1 });
  await drain(runCount(ctx));
  const result = tables(dir, ctx);
  ctx.close();
  return result;
}

/** The count stage as coordinator with `credentials`; its tables. */
async function distributedRun(credentials: NatsSettings) {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-'));
  const ctx = stageContext(dir, { ...settings, ...credentials, natsAckWait: 1 });
  await drain(distributedCountStage.run(ctx));
  const result = tables(dir, ctx);
  ctx.close();
  return result;
}

/** A CA, and a server and a client certificate it signed, in `dir` (EC keys: quick to make). */
function makeCertificates(dir: string) {
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => {
    const run = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${run.stderr}`);
  };
  const key = (name: string) => openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path(`${name}-key.pem`), '-subj', `/CN=lmpipe test ${name}`,
    ...(name === 'ca' ? ['-x509', '-days', '1', '-out', path('ca.pem')] : ['-out', path(`${name}.csr`)]));
  key('ca');
  for (const [name, extensions] of [['server', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']]) {
    key(name);
    writeFileSync(path(`${name}.ext`), `${extensions}\n`);
    openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', path('ca.pem'), '-CAkey', path('ca-key.pem'), '-CAcreateserial', '-days', '1',
      '-extfile', path(`${name}.ext`), '-out', path(`${name}.pem`));
  }
  return { ca: path('ca.pem'), server: path('server.pem'), serverKey: path('server-key.pem'), client: path('client.pem'), clientKey: path('client-key.pem') };
}

t.test('tls:// with a private CA, a client certificate and a token: workers and coordinator count, others are refused', { skip }, async (t) => {
  const expected = await localRun();
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-tls-'));
  const certs = makeCertificates(dir);
  const config = join(dir, 'server.conf');
  writeFileSync(config, [
    `tls { cert_file: "${certs.server}", key_file: "${certs.serverKey}", ca_file: "${certs.ca}", verify: true }`,
    'authorization { token: "lmpipe-token" }',
  ].join('\n'));
  const server = (await startNatsServer(['-c', config]))!;
  t.teardown(() => server.stop());
  // By host name: the Node client checks a certificate against the name it was given, and an IP
  // address against "localhost" (it sends no server name for one).
  const url = `tls://lmpipe-token@localhost:${server.port}`;
  const worker = startWorker(url, { args: ['--nats-ca', certs.ca, '--nats-cert', certs.client, '--nats-key', certs.clientKey] });
  t.teardown(() => stopWorkers([worker]));
  await waitForOutput(worker, (output) => output.includes('waiting for jobs'));
  const credentials = { ...NO_CREDENTIALS, nats: url, natsCa: certs.ca, natsCert: certs.client, natsKey: certs.clientKey };
  t.same(await distributedRun(credentials), expected);
  t.match(worker.output(), /finished shard[^]*finished partition/, 'the worker counted and reduced over TLS');
  await t.rejects(connectNats({ ...credentials, natsCert: '', natsKey: '' }, 'no client certificate'), /Could not connect to NATS/);
  await t.rejects(connectNats({ ...credentials, natsCa: '' }, 'a CA it does not trust'), /Could not connect to NATS/);
  await t.rejects(connectNats({ ...credentials, nats: url.replace('lmpipe-token', 'wrong-token') }, 'a wrong token'), /Authorization Violation/);
});

t.test('an nkey user: its seed as --nats-creds lets workers and coordinator in, another seed is refused', { skip }, async (t) => {
  const expected = await localRun();
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-nats-nkey-'));
  const user = nkeys.createUser();
  const seed = join(dir, 'lmpipe.nk');
  writeFileSync(seed, `${new TextDecoder().decode(user.getSeed())}\n`);
  const config = join(dir, 'server.conf');
  writeFileSync(config, `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }\n`);
  const server = (await startNatsServer(['-c', config]))!;
  t.teardown(() => server.stop());
  const credentials = { ...NO_CREDENTIALS, nats: server.url, natsCreds: seed };
  const nc = await connectNats(credentials, 'in-process worker');
  const stop = new AbortController();
  const served = serveJobs(nc, { signal: stop.signal });
  t.same(await distributedRun(credentials), expected);
  stop.abort();
  t.ok((await served) >= 2, 'the worker served the jobs');
  await nc.close();
  const stranger = join(dir, 'stranger.nk');
  writeFileSync(stranger, new TextDecoder().decode(nkeys.createUser().getSeed()));
  await t.rejects(connectNats({ ...credentials, natsCreds: stranger }, 'another nkey'), /Could not connect to NATS.*Authorization Violation/);
  await t.rejects(connectNats({ ...credentials, natsCreds: '' }, 'no credentials'), /Authorization Violation/);
});
