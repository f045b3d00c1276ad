/**
 * Shared pieces of the tokenizers: the per-tokenizer interface and a reusable id buffer (one
 * scratch Int32Array per tokenizer, so a chunk costs one exact-size copy and no growth).
 */
import type { TextChunk } from '../pipeline/types.ts';

export interface ChunkTokenizer {
  push(chunk: TextChunk): Int32Array;
  /** Ends the current document: returns the ids of a token still held (a word cut by a chunk end). */
  end(): Int32Array;
  leadingGap: boolean;
  trailingGap: boolean;
}

/** A scratch Int32Array that tokenizers write into directly, then copy out exactly. */
export class IdBuffer {
  #ids = new Int32Array(1024);

  /** The scratch array, with room for at least `capacity` ids. */
  reserve(capacity: number): Int32Array {
    if (capacity > this.#ids.length) this.#ids = new Int32Array(Math.max(capacity, this.#ids.length * 2));
    return this.#ids;
  }

  /** The first `length` ids written, as a new array the caller owns (it may transfer it). */
  take(length: number): Int32Array {
    return this.#ids.slice(0, length);
  }
}

/** A growable id list, for tokenizers that cannot bound their output in advance. */
export class IdList {
  #ids = new Int32Array(1024);
  #length = 0;

  reset(): this {
    this.#length = 0;
    return this;
  }

  push(id: number): void {
    if (this.#length === this.#ids.length) {
      const ids = new Int32Array(this.#ids.length * 2);
      ids.set(this.#ids);
      this.#ids = ids;
    }
    this.#ids[this.#length++] = id;
  }

  take(): Int32Array {
    return this.#ids.slice(0, this.#length);
  }
}
