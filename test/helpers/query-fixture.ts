/**
 * Test databases for the query tool, filled by a brute-force counter that shares no code with the
 * count stage: every n-gram of every document goes through a plain Map.
 */
import { openRunDatabase } from '../../storage/schema.ts';
import { random as seeded } from './tokenize-fixtures.ts';

export interface BruteCounts {
  /** Per order n (index n-1): n-gram (tokens joined by \u0000) -> count. */
  orders: Map<string, number>[];
  /** Tokens in first-occurrence order (their index is their id). */
  tokens: string[];
  /** d2l vocabulary: <unk>, reserved, then by count descending, ties in first-occurrence order. */
  vocab: { token: string; count: number }[];
}

export const key = (tokens: readonly string[]) => tokens.join('\u0000');

export function bruteCounts(documents: readonly (readonly string[])[], order: number): BruteCounts {
  const orders = Array.from({ length: order }, () => new Map<string, number>());
  const tokens: string[] = [];
  const seen = new Set<string>();
  for (const document of documents) {
    for (let i = 0; i < document.length; i++) {
      if (!seen.has(document[i])) {
        seen.add(document[i]);
        tokens.push(document[i]);
      }
      for (let n = 1; n <= order && i + n <= document.length; n++) {
        const k = key(document.slice(i, i + n));
        orders[n - 1].set(k, (orders[n - 1].get(k) ?? 0) + 1);
      }
    }
  }
  const byCount = [...tokens].sort((a, b) => orders[0].get(b)! - orders[0].get(a)! || tokens.indexOf(a) - tokens.indexOf(b));
  const vocab = [{ token: '<unk>', count: 0 }, ...['<pad>', '<bos>', '<eos>'].map((token) => ({ token, count: 0 })),
    ...byCount.map((token) => ({ token, count: orders[0].get(token)! }))];
  return { orders, tokens, vocab };
}

/** Writes brute-force counts into a fresh run database at `path`, the way the count stage lays them out. */
export function writeDatabase(path: string, brute: BruteCounts, meta: Record<string, string> = {}): void {
  const db = openRunDatabase(path);
  const ids = new Map(brute.tokens.map((token, id) => [token, id]));
  db.transaction(() => {
    const insertToken = db.prepare('INSERT INTO tokens (id, token) VALUES (?, ?)');
    brute.tokens.forEach((token, id) => insertToken.run(id, token));
    brute.orders.forEach((counts, index) => {
      const n = index + 1;
      const columns = Array.from({ length: n }, (_, i) => `w${i + 1}`);
      const insert = db.prepare(`INSERT INTO ngram${n} (${columns.join(', ')}, count) VALUES (${columns.map(() => '?').join(', ')}, ?)`);
      for (const [k, count] of counts) insert.run(...k.split('\u0000').map((token) => ids.get(token)!), count);
      db.exec(`CREATE INDEX ngram${n}_by_count ON ngram${n}(count DESC)`);
    });
    const insertVocab = db.prepare('INSERT INTO vocab (id, token, count) VALUES (?, ?, ?)');
    brute.vocab.forEach(({ token, count }, id) => insertVocab.run(id, token, count));
    const insertMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    for (const [k, value] of Object.entries({ order: String(brute.orders.length), ...meta })) insertMeta.run(k, value);
  })();
  db.close();
}

/** A seeded stream of Zipf-ish words over a small vocabulary, cut into documents. */
export function generateDocuments(seed: number, options: { documents: number; length: number; types: number }): string[][] {
  const random = seeded(seed);
  const words = Array.from({ length: options.types }, (_, i) => `w${i.toString(36)}`);
  const documents: string[][] = [];
  for (let d = 0; d < options.documents; d++) {
    const length = 1 + Math.floor(random() * options.length);
    // Squaring a uniform draw skews toward the first words, so some n-grams repeat often.
    documents.push(Array.from({ length }, () => words[Math.floor(random() ** 3 * words.length)]));
  }
  return documents;
}
