/**
 * Step losses kept on the device until someone needs them, then read back together: reading a
 * tensor waits for everything the backend has queued, which on a GPU costs milliseconds and stalls
 * the queue, so the trainer reads once per progress interval (and at checkpoints, aborts and epoch
 * ends) rather than once per step. On cpu and wasm the values are already there; the numbers are
 * the same either way, since the sums are taken here in step order.
 *
 *   const losses = pendingLosses(state);          // state.epochLossSum, epochTokens (and epochSeconds)
 *   losses.add(trainStep(...), batch.inputs.length);
 *   const last = await losses.read();             // one readback; the sums now include every step
 */
import * as tf from '@tensorflow/tfjs-core';

/** Running sums of a pass over the data: Σ loss·tokens, Σ tokens and, for training, seconds. */
export interface LossSums {
  epochLossSum: number;
  epochTokens: number;
  epochSeconds?: number;
}

/** A read is forced at this many waiting losses: it bounds how far the CPU runs ahead of a GPU. */
const MAX_PENDING = 64;

export function pendingLosses(sums: LossSums) {
  let losses: tf.Scalar[] = [];
  let tokens: number[] = [];
  let last = Number.NaN;
  return {
    /** Keeps a step's mean loss (the caller hands it over) and its token count. */
    add(loss: tf.Scalar, count: number): void {
      losses.push(loss);
      tokens.push(count);
    },
    get full(): boolean {
      return losses.length >= MAX_PENDING;
    },
    /** Reads the waiting losses in one readback and adds them to the sums; resolves to the latest loss. */
    async read(): Promise<number> {
      if (losses.length === 0) return last;
      const started = performance.now();
      const stacked = tf.stack(losses);
      const values = await stacked.data();
      tf.dispose([stacked, ...losses]);
      values.forEach((loss, i) => {
        sums.epochLossSum += loss * tokens[i];
        sums.epochTokens += tokens[i];
      });
      // The wait is the GPU finishing the queued steps: training time.
      if (sums.epochSeconds !== undefined) sums.epochSeconds += (performance.now() - started) / 1000;
      last = values[values.length - 1];
      [losses, tokens] = [[], []];
      return last;
    },
    /** Frees losses never read (a run that failed mid-interval). */
    dispose(): void {
      tf.dispose(losses);
      [losses, tokens] = [[], []];
    },
  };
}
