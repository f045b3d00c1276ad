/**
 * Recycled ArrayBuffers for the arrays a count worker hands to the main thread.
 *
 * Each shard's result (its token stream, n-gram keys, counts and hashes: about 3x the shard's
 * bytes) is transferred to the main thread, so without recycling a worker allocates all of it
 * fresh for every shard and the main thread frees it. Fresh memory costs a page fault per 4 KiB,
 * and on a virtual machine with two busy threads those faults (and the frees' TLB flushes) get
 * several times slower: measured here, 2 threads allocating 4 MB arrays ran 4x slower each than 1.
 * So the main thread transfers the buffers back with the next job, and the worker takes from them.
 *
 *   const keys = bufferPool.int32(rows * n);   // a view of a recycled buffer, or a fresh one
 *   bufferPool.give(buffersOf(result));        // when nothing reads the result any more
 *
 * One pool per thread (`bufferPool`): buffers move between threads only by transfer. What a pool
 * keeps counts against the caller's memory budget, so it keeps at most `limit` bytes.
 */

/** Buffers kept at most; the smallest go first beyond it. */
const MAX_BUFFERS = 24;

export class BufferPool {
  #free: ArrayBuffer[] = [];
  /** Bytes kept at most (the largest buffers that fit go first): what the caller budgets for it. */
  limit = Infinity;

  /** Buffers held, for tests. */
  get size(): number {
    return this.#free.length;
  }

  /** The smallest held buffer of at least `bytes`, or a new one an eighth bigger (the next may need more). */
  take(bytes: number): ArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const length = this.#free[i].byteLength;
      if (length >= bytes && (best < 0 || length < this.#free[best].byteLength)) best = i;
    }
    if (best < 0) return new ArrayBuffer(bytes + (bytes >>> 3));
    return this.#free.splice(best, 1)[0];
  }

  int32(length: number): Int32Array {
    return new Int32Array(this.take(length * 4), 0, length);
  }

  float64(length: number): Float64Array {
    return new Float64Array(this.take(length * 8), 0, length);
  }

  /** Takes buffers back (detached ones, already transferred elsewhere, are skipped). */
  give(buffers: Iterable<ArrayBuffer>): void {
    for (const buffer of buffers) if (buffer.byteLength > 0 && !this.#free.includes(buffer)) this.#free.push(buffer);
    let bytes = 0;
    for (const buffer of this.#free) bytes += buffer.byteLength;
    if (this.#free.length > MAX_BUFFERS || bytes > this.limit) {
      this.#free.sort((a, b) => b.byteLength - a.byteLength);
      const kept: ArrayBuffer[] = [];
      let keptBytes = 0;
      for (const buffer of this.#free) {
        if (kept.length === MAX_BUFFERS || keptBytes + buffer.byteLength > this.limit) continue;
        kept.push(buffer);
        keptBytes += buffer.byteLength;
      }
      this.#free = kept;
    }
  }
}

/** This thread's pool. */
export const bufferPool = new BufferPool();
