/**
 * The merger's dictionary of every token of the corpus (text -> global id, id -> text and hash),
 * held compactly: a JS Map of strings costs about 100 bytes a token (the string object, the map
 * entry, the array slot), which on a 1 GB corpus of 3.3M distinct tokens was hundreds of MB that
 * --memory-mb could not bound. Here a token costs its UTF-16 code units in one arena plus 16 bytes:
 *   chars:  Uint16Array, every token's code units, one after another, in id order;
 *   starts: Int32Array, token id's units are chars[starts[id] .. starts[id + 1]);
 *   hashes: Int32Array, tokenHash of each id's text (the hash the workers computed);
 *   slots:  Int32Array open-addressing table (linear probing, at most half full) of id + 1 by
 *           hash, 0 for a free slot.
 * Ids are dense and given in the order tokens are added. Nothing here is ever removed.
 */

export class TokenDictionary {
  #chars = new Uint16Array(1 << 12);
  #starts = new Int32Array(1 << 10);
  #hashes = new Int32Array(1 << 10);
  #slots = new Int32Array(1 << 11);
  #size = 0;

  /** Distinct tokens. */
  get size(): number {
    return this.#size;
  }

  /** tokenHash of each id's text (only ids below `size` mean anything). */
  get hashes(): Int32Array {
    return this.#hashes;
  }

  /** Bytes held by the arrays. */
  get bytes(): number {
    return this.#chars.byteLength + this.#starts.byteLength + this.#hashes.byteLength + this.#slots.byteLength;
  }

  /** The id of `token` (whose tokenHash is `hash`), added with the next id if it is new. */
  idOf(token: string, hash: number): number {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let slot = _spread(hash) & mask;
    for (let id = slots[slot] - 1; id >= 0; slot = (slot + 1) & mask, id = slots[slot] - 1) {
      if (this.#hashes[id] === hash && this.#equals(id, token)) return id;
    }
    return this.#add(token, hash, slot);
  }

  /** The text of id. */
  token(id: number): string {
    const units = this.#chars.subarray(this.#starts[id], this.#starts[id + 1]);
    // fromCharCode takes its units as arguments: a long token goes in pieces.
    let text = '';
    for (let at = 0; at < units.length; at += 4096) text += String.fromCharCode(...units.subarray(at, at + 4096));
    return text;
  }

  #equals(id: number, token: string): boolean {
    const start = this.#starts[id];
    if (this.#starts[id + 1] - start !== token.length) return false;
    const chars = this.#chars;
    for (let i = 0; i < token.length; i++) if (chars[start + i] !== token.charCodeAt(i)) return false;
    return true;
  }

  #add(token: string, hash: number, slot: number): number {
    const id = this.#size++;
    if (this.#size + 1 > this.#starts.length) {
      this.#starts = _grown(this.#starts, this.#size + 1);
      this.#hashes = _grown(this.#hashes, this.#size);
    }
    const start = this.#starts[id];
    if (start + token.length > this.#chars.length) this.#chars = _grown(this.#chars, start + token.length);
    for (let i = 0; i < token.length; i++) this.#chars[start + i] = token.charCodeAt(i);
    this.#starts[id + 1] = start + token.length;
    this.#hashes[id] = hash;
    this.#slots[slot] = id + 1;
    if (2 * this.#size > this.#slots.length) this.#rehash();
    return id;
  }

  #rehash(): void {
    const slots = new Int32Array(this.#slots.length * 2);
    const mask = slots.length - 1;
    for (let id = 0; id < this.#size; id++) {
      let slot = _spread(this.#hashes[id]) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = id + 1;
    }
    this.#slots = slots;
  }
}

/** The table's slot bits come from the low bits: mix the high ones in (the hash is murmur-like already). */
function _spread(hash: number): number {
  return hash ^ (hash >>> 16);
}

function _grown<T extends Uint16Array | Int32Array>(array: T, needed: number): T {
  let length = array.length * 2;
  while (length < needed) length *= 2;
  const grown = new (array.constructor as new (length: number) => T)(length);
  grown.set(array);
  return grown;
}
