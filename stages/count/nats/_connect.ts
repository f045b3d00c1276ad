/**
 * Connects to NATS the way NATS deployments authenticate, for the coordinator and the workers alike:
 *   nats://user:password@host:4222   user and password (kept out of the server list we log)
 *   nats://token@host:4222           a token
 *   --nats-creds FILE                a .creds file (JWT + nkey seed) or a bare nkey seed file (SU...)
 *   tls://host:4222                  TLS; --nats-ca, --nats-cert, --nats-key for a private CA / mTLS
 * Several servers of one cluster: a comma-separated list. The client reconnects forever (a server
 * restart is a pause, not a failure), but the first connection must succeed.
 *
 * The transport is `@nats-io/transport-node` on both runtimes: `@nats-io/transport-deno` is
 * published on JSR only, and the Node transport runs unchanged under Deno's node: compatibility
 * (checked against nats-server 2.9: jobs, acks, heartbeats, object store, reconnects).
 */
import { readFileSync } from 'node:fs';
import { setSha256Backend } from '@nats-io/obj';
import { LmpipeError } from '../../../lib/errors.ts';
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';

export interface NatsSettings {
  /** Server URL(s), comma-separated: nats://[user:password@ | token@]host:port, or tls://... */
  nats: string;
  /** A .creds file or an nkey seed file; '' for none. */
  natsCreds: string;
  /** TLS: CA certificate, client certificate and key files; '' for none. */
  natsCa: string;
  natsCert: string;
  natsKey: string;
}

/** Connects, failing at once when the first attempt fails (a wrong URL or password should not hang). */
export async function connectNats(settings: NatsSettings, name: string): Promise<NatsConnection> {
  const options = natsOptions(settings);
  // The object store hashes every byte it puts and gets (SHA-256). Its default is a pure-JS hash,
  // measured here at 11 MB/s against node:crypto's 428 (both runtimes have node:crypto).
  setSha256Backend('native');
  try {
    return await connect({ ...options, name, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  } catch (error) {
    const servers = (options.servers as string[]).join(', ');
    throw new LmpipeError('STATE', `Could not connect to NATS at ${servers}: ${(error as Error).message}`);
  }
}

/** Connection options from the settings; exported for the tests of URL parsing. */
export function natsOptions(settings: NatsSettings): ConnectionOptions {
  const options: ConnectionOptions = { servers: [] };
  let tls = false;
  for (const raw of settings.nats.split(',').map((part) => part.trim()).filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(raw.includes('://') ? raw : `nats://${raw}`);
    } catch {
      throw new TypeError(`Expected \`--nats\` to be a URL such as nats://127.0.0.1:4222, got \`${raw}\``);
    }
    if (!['nats:', 'tls:'].includes(url.protocol)) throw new TypeError(`Expected \`--nats\` to start with nats:// or tls://, got \`${raw}\``);
    tls ||= url.protocol === 'tls:';
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    if (user && password) Object.assign(options, { user, pass: password });
    else if (user) options.token = user;
    (options.servers as string[]).push(`${url.hostname}:${url.port || 4222}`);
  }
  if ((options.servers as string[]).length === 0) throw new TypeError('Expected `--nats` to name a server, got ``');
  if (tls || settings.natsCa || settings.natsCert) {
    options.tls = {
      ...(settings.natsCa ? { caFile: settings.natsCa } : {}),
      ...(settings.natsCert ? { certFile: settings.natsCert, keyFile: settings.natsKey } : {}),
    };
  }
  if (settings.natsCreds) {
    const text = readFileSync(settings.natsCreds, 'utf8');
    const bytes = new TextEncoder().encode(text.trim());
    options.authenticator = text.includes('BEGIN NATS USER JWT') ? credsAuthenticator(bytes) : nkeyAuthenticator(bytes);
  }
  return options;
}

/** How long a request keeps being retried while the server is away (a restart takes seconds). */
const RETRY_MS = 60_000;

/**
 * `request()`, retried every quarter second while it fails for up to a minute: JetStream requests
 * time out while the server restarts or the client reconnects. LmpipeErrors, aborts and "not found"
 * (the run's stream or bucket was deleted) are final.
 */
export async function retrying<T>(request: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + RETRY_MS;
  for (;;) {
    try {
      return await request();
    } catch (error) {
      const gone = /not found/i.test((error as Error).message); // the run ended: no use waiting
      if (gone || error instanceof LmpipeError || signal?.aborted || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
