/**
 * Everything a run directory holds that must be identical between an uninterrupted run and one
 * killed and resumed: counts, vocabulary, encoded corpus, metrics (not timings), samples and the
 * trained parameters. Timestamps, rates and paths are left out.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openRunDatabase } from '../../storage/schema.ts';

const hash = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

export function dumpRun(dir: string): Record<string, unknown> {
  const db = openRunDatabase(join(dir, 'lmpipe.sqlite'), { readonly: true });
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
  const all = (sql: string) => db.prepare(sql).all();
  try {
    const dump: Record<string, unknown> = {
      tokens: hash(JSON.stringify(all('SELECT id, token FROM tokens ORDER BY id'))),
      ngrams: hash(JSON.stringify(all('SELECT n, tokens, count FROM ngram_counts ORDER BY n, tokens'))),
      vocab: all('SELECT id, token, count FROM vocab ORDER BY id'),
      metrics: all('SELECT epoch, step, split, loss, perplexity FROM metrics ORDER BY epoch, split'),
      samples: all('SELECT prefix, strategy, text FROM samples ORDER BY rowid'),
    };
    if (tables.includes('encoded')) dump.encoded = hash(JSON.stringify(all('SELECT split, chunk, hex(ids) AS ids FROM encoded ORDER BY split, chunk')));
    for (const file of ['tokens.bin']) if (existsSync(join(dir, file))) dump[file] = hash(readFileSync(join(dir, file)));
    const checkpoints = join(dir, 'checkpoints');
    if (existsSync(checkpoints)) {
      for (const file of readdirSync(checkpoints).filter((f) => f.endsWith('.bin')).sort()) {
        dump[`checkpoints/${file}`] = hash(readFileSync(join(checkpoints, file)));
      }
    }
    return dump;
  } finally {
    db.close();
  }
}
