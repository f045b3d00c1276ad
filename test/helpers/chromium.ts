/**
 * Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: the
 * browser reads NUL-terminated JSON on fd 3 and writes on fd 4), so the browser test needs no
 * npm dependency and no network port. Uses Debian's `chromium` package; never downloads one.
 *
 *   const browser = await launchChromium();
 *   const page = await browser.open('file:///tmp/run/report.html');
 *   const title = await page.evaluate('document.title');
 *   await browser.close();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** The Chromium binary: $LMPIPE_CHROMIUM, Debian's, or the first `chromium` on PATH; undefined when absent. */
export function findChromium(): string | undefined {
  const candidates = [
    process.env.LMPIPE_CHROMIUM,
    '/usr/lib/chromium/chromium',
    ...(process.env.PATH ?? '').split(delimiter).flatMap((dir) => [join(dir, 'chromium'), join(dir, 'chromium-browser')]),
  ];
  return candidates.find((path): path is string => Boolean(path) && existsSync(path!));
}

export interface Page {
  /** Evaluates a JavaScript expression in the page and returns its value (JSON-serializable). */
  evaluate<T = unknown>(expression: string): Promise<T>;
}

export interface Browser {
  open(url: string): Promise<Page>;
  close(): Promise<void>;
}

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-extensions', '--disable-dev-shm-usage', '--hide-scrollbars',
  '--window-size=1200,900', '--remote-debugging-pipe', 'about:blank',
];

export async function launchChromium(binary = findChromium()): Promise<Browser> {
  if (!binary) throw new Error('Chromium not found');
  const profile = mkdtempSync(join(tmpdir(), 'lmpipe-chromium-'));
  const child = spawn(binary, [`--user-data-dir=${profile}`, ...FLAGS], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (chunk) => stderr.push(String(chunk)));
  const cdp = _connect(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (error) => cdp.fail(error));
  child.once('exit', (code) => cdp.fail(new Error(`Chromium exited with ${code}: ${stderr.join('').slice(-500)}`)));
  await cdp.send('Target.getTargets');
  return {
    async open(url) {
      const { targetId } = await cdp.send('Target.createTarget', { url });
      const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
      const evaluate = async <T>(expression: string): Promise<T> => {
        const reply = await cdp.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, sessionId);
        if (reply.exceptionDetails) throw new Error(`Page threw: ${JSON.stringify(reply.exceptionDetails).slice(0, 500)}`);
        return reply.result.value as T;
      };
      // Creating the target starts navigation; wait for the document to finish loading.
      for (let i = 0; i < 200 && (await evaluate<string>('location.href + " " + document.readyState')) !== `${url} complete`; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      return { evaluate };
    },
    async close() {
      await Promise.race([cdp.send('Browser.close').catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 3000))]);
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function _connect(child: ChildProcess) {
  const input = child.stdio[3] as Writable;
  const output = child.stdio[4] as Readable;
  const pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let buffer = '';
  let failure: Error | undefined;
  output.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let end;
    while ((end = buffer.indexOf('\0')) >= 0) {
      const message = JSON.parse(buffer.slice(0, end)) as Json;
      buffer = buffer.slice(end + 1);
      const waiter = message.id === undefined ? undefined : pending.get(message.id);
      if (!waiter) continue; // an event: this client only needs replies
      pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`${message.error.message} (${message.error.code})`));
      else waiter.resolve(message.result);
    }
  });
  return {
    send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
      if (failure) return Promise.reject(failure);
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        input.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
      });
    },
    fail(error: Error) {
      failure ??= error;
      for (const waiter of pending.values()) waiter.reject(error);
      pending.clear();
    },
  };
}
