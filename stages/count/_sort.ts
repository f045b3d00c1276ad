/**
 * The two orders the count stage sorts rows in, both linear-time counting sorts that return a
 * permutation (row indices) and leave the rows where they are:
 *   - `sortByHash`: by unsigned 32-bit hash (two 16-bit LSD passes). A shard's run is in this order:
 *     it does not depend on token ids, so a worker sorts before the ids are global, and a hash
 *     partition is then a contiguous section of every run.
 *   - `sortByKey`: by the key's ids, first column most significant (one LSD pass per column; ids are
 *     dense, so a column's buckets are its ids). A partition's reduced rows are in this order, which
 *     is the order of the SQLite primary key: rows in key order append to the b-tree.
 */

/** Row indices 0..hashes.length-1 sorted by `hashes[row] >>> 0` (stable). */
export function sortByHash(hashes: Int32Array): Int32Array {
  const rows = hashes.length;
  let from = new Int32Array(rows);
  let to = new Int32Array(rows);
  for (let i = 0; i < rows; i++) from[i] = i;
  const starts = new Int32Array(1 << 16);
  for (const shift of [0, 16]) {
    starts.fill(0);
    for (let i = 0; i < rows; i++) starts[(hashes[i] >>> shift) & 0xffff]++;
    let sum = 0;
    for (let digit = 0; digit < starts.length; digit++) {
      const count = starts[digit];
      starts[digit] = sum;
      sum += count;
    }
    for (let i = 0; i < rows; i++) {
      const row = from[i];
      to[starts[(hashes[row] >>> shift) & 0xffff]++] = row;
    }
    [from, to] = [to, from];
  }
  return from;
}

/**
 * Row indices 0..rows-1 sorted by key, row r's key being keys[r*order .. r*order+order). Ids may be
 * negative (the sentence markers, -1 and -2: they get the first buckets). Ids far sparser than the
 * rows (never from the count stage) fall back to a comparison sort.
 */
export function sortByKey(keys: Int32Array, order: number, rows: number): Int32Array {
  let from = new Int32Array(rows);
  for (let i = 0; i < rows; i++) from[i] = i;
  let max = 0;
  let min = 0;
  for (let i = 0; i < rows * order; i++) {
    if (keys[i] > max) max = keys[i];
    else if (keys[i] < min) min = keys[i];
  }
  if (max - min > 4 * rows + (1 << 16)) return from.sort((a, b) => compareKeys(keys, a * order, keys, b * order, order));
  let to = new Int32Array(rows);
  const starts = new Int32Array(max - min + 2);
  for (let column = order - 1; column >= 0; column--) {
    starts.fill(0);
    for (let i = 0; i < rows; i++) starts[keys[i * order + column] - min + 1]++;
    for (let id = 0; id <= max - min; id++) starts[id + 1] += starts[id];
    for (let i = 0; i < rows; i++) {
      const row = from[i];
      to[starts[keys[row * order + column] - min]++] = row;
    }
    [from, to] = [to, from];
  }
  return from;
}

/** Compares the keys a[i .. i+order) and b[j .. j+order) lexicographically: < 0, 0 or > 0. */
export function compareKeys(a: Int32Array, i: number, b: Int32Array, j: number, order: number): number {
  for (let k = 0; k < order; k++) {
    const difference = a[i + k] - b[j + k];
    if (difference !== 0) return difference;
  }
  return 0;
}
