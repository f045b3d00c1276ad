/**
 * A run directory as data two runs can be compared by: an uninterrupted run and one killed and
 * resumed must give equal dumps (test/e2e/pipeline-resume.test.ts).
 *
 * - `files`: every file of the directory, by path, with the sha256 of its bytes. The list itself is
 *   compared too, so a file left behind (a temp file, a lock) or missing shows up. Only the files in
 *   MAY_DIFFER are compared another way, for the reason given there.
 * - `schema`: every table, index and view as SQLite stores its SQL.
 * - `tables`: every table's rows in primary-key order, except the columns in VOLATILE_COLUMNS
 *   (clock times and speeds). A small table is kept as rows, so that a difference reads plainly; a
 *   big one as its row count and a sha256 of its rows.
 * - `checkpoint`: train.ckpt's record and every tensor's bytes, without the clock fields.
 * The run directory's own path is replaced by "DIR" everywhere, so two directories compare.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { readCheckpoint } from '../../lib/checkpoint.ts';
import { openRunDatabase } from '../../storage/schema.ts';

/** Files compared otherwise than byte for byte, and why. */
export const MAY_DIFFER: Record<string, string> = {
  'lmpipe.sqlite': 'page layout and free pages depend on the history of writes; compared table by table (`tables`)',
  'lmpipe.sqlite-wal': "left out: SQLite's write-ahead log comes and goes (a read-only open leaves one); its content is in the tables",
  'lmpipe.sqlite-shm': "left out: the log's shared-memory index, as transient as the log",
  'checkpoints/train.ckpt': 'its record holds seconds spent and tokens/s; compared without them (`checkpoint`)',
  'report.html': 'prints tokens/s, clock times (stage updates, run starts) and the directory path; compared with those masked',
  'training.svg': 'prints the median tokens/s; compared with it masked',
};

/** Columns that hold a clock time or a speed, left out of `tables`. */
export const VOLATILE_COLUMNS: Record<string, string[]> = {
  stages: ['updated_at'],
  runs: ['started_at'],
  samples: ['created_at'],
  metrics: ['tokens_per_s'],
  evaluations: ['created_at'],
};

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

function walk(dir: string, root = dir): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path, root) : [relative(root, path)];
  });
}

/** report.html and training.svg with speeds and clock times masked (the per-epoch tokens/s column). */
function maskClock(text: string): string {
  return text
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, 'TIME')
    .replace(/median [\d,]+ tokens\/s/g, 'median N tokens/s')
    .replace(/(<tr><td class="num">\d+<\/td>(?:<td class="num">[^<]*<\/td>){2}<td class="num">)[^<]*(<\/td><\/tr>)/g, '$1N$2');
}

function dumpTables(path: string) {
  const db = openRunDatabase(path, { readonly: true });
  try {
    const schema = db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all();
    const tables: Record<string, unknown> = {};
    for (const { name } of schema.filter((row) => row.type === 'table') as { name: string }[]) {
      const columns = (db.prepare(`PRAGMA table_info(${name})`).all() as { name: string; pk: number }[]);
      const kept = columns.map((c) => c.name).filter((c) => !(VOLATILE_COLUMNS[name] ?? []).includes(c));
      const order = columns.some((c) => c.pk > 0) ? columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name) : kept;
      const rows = db.prepare(`SELECT ${kept.join(', ')} FROM ${name} ORDER BY ${order.join(', ')}`).all();
      const text = JSON.stringify(rows);
      tables[name] = text.length < 4000 ? rows : { rows: rows.length, sha256: sha256(text) };
    }
    return { schema, tables };
  } finally {
    db.close();
  }
}

function dumpCheckpoint(path: string) {
  const saved = readCheckpoint<Record<string, any>>(path);
  if (!saved) return undefined;
  const record = structuredClone(saved.record);
  if (record.epochProgress) record.epochProgress.seconds = 0;
  for (const row of record.history ?? []) row.tokensPerSecond = null;
  const tensors = Object.fromEntries(Object.entries(saved.tensors).map(([name, { shape, values }]) => [name, { shape, sha256: sha256(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)) }]));
  return { record, tensors };
}

export function dumpRun(dir: string) {
  const normalize = (text: string) => text.split(dir).join('DIR');
  const files: Record<string, string> = {};
  for (const file of walk(dir).filter((name) => !/^lmpipe\.sqlite-(wal|shm)$/.test(name))) {
    const bytes = readFileSync(join(dir, file));
    if (file === 'lmpipe.sqlite' || file === 'checkpoints/train.ckpt') files[file] = 'compared apart';
    else if (file in MAY_DIFFER) files[file] = sha256(normalize(maskClock(bytes.toString('utf8'))));
    else files[file] = sha256(bytes);
  }
  const { schema, tables } = dumpTables(join(dir, 'lmpipe.sqlite'));
  const checkpointFile = join(dir, 'checkpoints/train.ckpt');
  const checkpoint = existsSync(checkpointFile) ? dumpCheckpoint(checkpointFile) : undefined;
  return JSON.parse(normalize(JSON.stringify({ files, schema, tables, checkpoint })));
}
