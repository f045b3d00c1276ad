/**
 * Ctrl-C as one AbortSignal: the first SIGINT or SIGTERM asks for a stop at the next safe point,
 * a second one quits at once (the last checkpoint still holds).
 *
 * Why a "second" signal needs care: a terminal sends SIGINT to the whole foreground process group,
 * and a parent that forwards signals (npm run, which waits for its script) sends the same Ctrl-C
 * again a few milliseconds later. Counted naively, that duplicate looks like a second Ctrl-C and
 * the process quits without a clean stop. So signals that arrive within `graceMs` of the first one
 * are the same key press. The grace period is armed by a timer whose callback defers once more with
 * setImmediate: the event loop's poll phase, which delivers queued signals, runs between the two,
 * so a duplicate that arrived while a synchronous training step held the loop is still delivered
 * before the arming and is never taken for a second Ctrl-C, however long the step took.
 */
export interface InterruptOptions {
  /** Signals within this many milliseconds of the first are duplicates of it. */
  graceMs?: number;
  /** Called on the first signal (say what happens next). */
  onStop?(): void;
  /** Called on a second, distinct signal; the default exits with 130. */
  onQuit?(): void;
  /** The signals that stop the work. */
  signals?: NodeJS.Signals[];
  /** The process whose signals are watched (a stand-in in tests). */
  target?: Pick<NodeJS.Process, 'on' | 'off'>;
}

/** An AbortSignal that fires on the first SIGINT/SIGTERM; `dispose` removes the handlers. */
export function interruptSignal(options: InterruptOptions = {}): { signal: AbortSignal; dispose(): void } {
  const { graceMs = 1000, target = process, signals = ['SIGINT', 'SIGTERM'] } = options;
  const onQuit = options.onQuit ?? (() => process.exit(130));
  const controller = new AbortController();
  let armed = false;
  let timer: NodeJS.Timeout | undefined;
  const onSignal = () => {
    if (controller.signal.aborted) {
      if (armed) onQuit();
      return;
    }
    controller.abort();
    options.onStop?.();
    timer = setTimeout(() => setImmediate(() => (armed = true)), graceMs);
    timer.unref();
  };
  for (const name of signals) target.on(name, onSignal);
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      for (const name of signals) target.off(name, onSignal);
    },
  };
}
