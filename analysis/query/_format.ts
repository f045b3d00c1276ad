/**
 * Text output of `npm run query`: aligned tables, key/value blocks, and tokens shown so that a
 * space token (d2l-char) or an empty string stays visible.
 */

/** Numbers right-aligned, text left-aligned, two spaces between columns. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], numeric: readonly boolean[] = []): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i].length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([key]) => key.length));
  return pairs.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
}

/** A token as typed: bare when unambiguous, JSON-quoted when it has spaces, quotes or controls. */
export function showToken(token: string): string {
  return token === '' || /[\s"\\\p{C}]/u.test(token) ? JSON.stringify(token) : token;
}

export const showNgram = (tokens: readonly string[]) => tokens.map(showToken).join(' ');

export const formatInteger = (value: number) => value.toLocaleString('en-US');

/** Six significant digits; '-' for null (undefined estimate), 'inf' for Infinity. */
export function formatNumber(value: number | null): string {
  if (value === null || Number.isNaN(value)) return '-';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  return magnitude >= 1e-4 && magnitude < 1e7 ? String(Number(value.toPrecision(6))) : value.toExponential(5);
}

/** SQL values for the `sql` table: NULL, numbers, text, and blobs as their byte count. */
export function showValue(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return String(value);
}
