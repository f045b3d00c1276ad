/**
 * The one seeded random generator of lmpipe: sfc32 (Chris Doty-Humphrey's Small Fast Counting
 * generator, 128 bits of state, passes PractRand) on uint32 math, seeded through splitmix32.
 * Its whole state is four uint32 words, so it goes into a checkpoint as plain JSON and a restored
 * generator continues exactly where the saved one stopped:
 *
 *   const rng = new Rng(42);
 *   const saved = rng.state();              // {algorithm: 'sfc32', words: [a, b, c, d]}
 *   rng.nextFloat() === new Rng(saved).nextFloat();   // true
 *
 * Every draw is a pure function of the state: no clock, no Math.random, and no cached values
 * (normal() does not keep Box–Muller's second value, so that state() is all there is).
 */

export interface RngState {
  algorithm: 'sfc32';
  /** a, b, c and the counter d, each an integer in [0, 2^32). */
  words: [number, number, number, number];
}

/** Any indexable array: plain arrays and every typed array. */
export interface MutableArrayLike<T> {
  length: number;
  [index: number]: T;
}

const TWO_32 = 2 ** 32;
const TWO_53 = 2 ** 53;
/** Rounds run after seeding so that close seeds give unrelated streams (PractRand's advice for sfc). */
const WARM_UP = 12;

export class Rng {
  #a = 0;
  #b = 0;
  #c = 0;
  #d = 0;

  /** A generator from an integer seed (any safe integer), or restored from `state()`. */
  constructor(seed: number | RngState) {
    if (typeof seed === 'number') {
      if (!Number.isSafeInteger(seed)) throw new RangeError(`Expected the seed to be a safe integer, got \`${seed}\``);
      // Both halves of a seed above 2^32 count, so seeds 1 and 2^32 + 1 differ.
      const words = _splitmixWords(_mix32(Math.floor(seed / TWO_32)) ^ (seed >>> 0), 3);
      this.#set([words[0], words[1], words[2], 1]);
      for (let i = 0; i < WARM_UP; i++) this.nextUint32();
    } else {
      this.#set(_checkState(seed));
    }
  }

  /** The full state as plain JSON; `new Rng(state)` continues the same stream. */
  state(): RngState {
    return { algorithm: 'sfc32', words: [this.#a >>> 0, this.#b >>> 0, this.#c >>> 0, this.#d >>> 0] };
  }

  /** An integer in [0, 2^32). */
  nextUint32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1) with 53 random bits (two draws), like Python's random.random(). */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / TWO_53;
  }

  /** An integer in [lo, hi], both inclusive, without modulo bias (rejection sampling). */
  int(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo || hi - lo + 1 > TWO_32) {
      throw new RangeError(`Expected int(lo, hi) to get integers with lo <= hi and at most 2^32 values, got \`${lo}\`, \`${hi}\``);
    }
    const range = hi - lo + 1;
    // Accept only draws below the largest multiple of range, so each residue is equally likely.
    const limit = TWO_32 - (TWO_32 % range);
    let draw = this.nextUint32();
    while (draw >= limit) draw = this.nextUint32();
    return lo + (draw % range);
  }

  /** Fisher–Yates in place (i from the end down, j uniform in [0, i]), as Python's random.shuffle. */
  shuffle<T, A extends MutableArrayLike<T>>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const kept = array[i];
      array[i] = array[j];
      array[j] = kept;
    }
    return array;
  }

  /** A standard normal draw (Box–Muller's cosine branch; two uniform draws per call). */
  normal(): number {
    const u1 = 1 - this.nextFloat(); // (0, 1]: log never sees 0
    const u2 = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * An independent generator for one purpose (e.g. 'init', 'batches', 'truncation'), derived from
   * this state and the label. It does not advance this generator: the same state and label always
   * give the same stream, whatever else was forked before.
   */
  fork(label: string | number): Rng {
    let z = _fnv1a(String(label));
    const words = [this.#a, this.#b, this.#c, this.#d].map((word) => (z = _mix32((z ^ word) + 0x9e3779b9)));
    const child = new Rng({ algorithm: 'sfc32', words: [words[0] >>> 0, words[1] >>> 0, words[2] >>> 0, 1] });
    for (let i = 0; i < WARM_UP; i++) child.nextUint32();
    return child;
  }

  #set(words: readonly number[]): void {
    [this.#a, this.#b, this.#c, this.#d] = words.map((word) => word | 0);
  }
}

function _checkState(state: RngState): RngState['words'] {
  const words = state?.words;
  const valid = state?.algorithm === 'sfc32' && Array.isArray(words) && words.length === 4 &&
    words.every((word) => Number.isInteger(word) && word >= 0 && word < TWO_32);
  if (!valid) throw new TypeError(`Expected an sfc32 generator state {algorithm, words: [4 uint32]}, got \`${JSON.stringify(state)}\``);
  return words;
}

/** splitmix32's output function: a strong 32-bit mixer (Murmur3's finalizer constants). */
function _mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** `count` successive splitmix32 outputs from state `z`. */
function _splitmixWords(z: number, count: number): number[] {
  const words: number[] = [];
  for (let i = 0; i < count; i++) {
    z = (z + 0x9e3779b9) | 0;
    words.push(_mix32(z));
  }
  return words;
}

/** FNV-1a over UTF-16 code units: turns a fork label into 32 bits. */
function _fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}
