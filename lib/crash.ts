/**
 * Fault injection for the kill-and-resume tests: with `LMPIPE_CRASH_AT=name:n` in the environment,
 * the n-th call of `crashPoint(name)` in a thread kills the whole process with SIGKILL, exactly
 * where a kill -9 could land (mid-file, mid-transaction). Without the variable it does nothing.
 */
const spec = (() => {
  try {
    return /^([\w-]+):(\d+)$/.exec((globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.LMPIPE_CRASH_AT ?? '');
  } catch {
    return null; // Deno without --allow-env
  }
})();
let calls = 0;

export function crashPoint(name: string): void {
  if (spec === null || spec[1] !== name || ++calls !== Number(spec[2])) return;
  (globalThis as unknown as { process: { kill(pid: number, signal: string): void; pid: number } }).process.kill(
    (globalThis as unknown as { process: { pid: number } }).process.pid, 'SIGKILL');
}
