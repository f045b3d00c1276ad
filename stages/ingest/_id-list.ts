/**
 * Shared pieces of the tokenizers: the per-tokenizer interface and a reusable id buffer (one
 * scratch Int32Array per tokenizer: a chunk's ids are a view of it, so a chunk allocates nothing).
 */
import type { TextChunk } from '../../pipeline/types.ts';

export interface ChunkTokenizer {
  /**
   * The chunk's token ids: a view of the tokenizer's buffer, valid until the next push() or end().
   * Copy it to keep it (tokenize() does).
   */
  push(chunk: TextChunk): Int32Array;
  /** Ends the current document: returns the ids of a token still held (a word cut by a chunk end). */
  end(): Int32Array;
  leadingGap: boolean;
  trailingGap: boolean;
}

/** A scratch Int32Array that tokenizers write into directly, then hand out a view of. */
export class IdBuffer {
  #ids = new Int32Array(1024);

  /** The scratch array, with room for at least `capacity` ids. */
  reserve(capacity: number): Int32Array {
    if (capacity > this.#ids.length) this.#ids = new Int32Array(Math.max(capacity, this.#ids.length * 2));
    return this.#ids;
  }

  /** The first `length` ids written: a view, overwritten by the next reserve() and writes. */
  take(length: number): Int32Array {
    return this.#ids.subarray(0, length);
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

  /** The ids pushed since the last reset(): a view, overwritten after the next reset(). */
  take(): Int32Array {
    return this.#ids.subarray(0, this.#length);
  }
}
