/**
 * Small deterministic corpora for end-to-end tests, and an independent brute-force counter
 * (plain Map, regex tokenizer written from the d2l text) to compare a run's counts against.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const WORDS = ['the', 'time', 'traveller', 'of', 'machine', 'and', 'a', 'was', 'it', 'to', 'in', 'Psychologist', "don't", 'medical-man'];

/**
 * Writes `files` text files of about `lines` lines each under dir/corpus; returns their paths.
 * `rareWords` is the share of words made up of random letters, nearly all distinct: a big
 * vocabulary, so that the vocab stage has work to do.
 */
export function writeCorpus(dir: string, options: { files?: number; lines?: number; seed?: number; rareWords?: number } = {}): string[] {
  const { files = 3, lines = 200, seed = 7, rareWords = 0 } = options;
  let state = seed >>> 0;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const folder = join(dir, 'corpus');
  mkdirSync(folder, { recursive: true });
  const paths: string[] = [];
  for (let f = 0; f < files; f++) {
    const text: string[] = [];
    for (let l = 0; l < lines; l++) {
      const length = Math.floor(next() * 12);
      const word = () => (next() < rareWords
        ? Array.from({ length: 3 + Math.floor(next() * 6) }, () => String.fromCharCode(97 + Math.floor(next() * 26))).join('')
        : WORDS[Math.floor(next() * WORDS.length)]);
      const words = Array.from({ length }, word);
      text.push(words.join(next() < 0.2 ? ', ' : ' ') + (next() < 0.3 ? '.' : ''));
    }
    const path = join(folder, `part-${f}.txt`);
    writeFileSync(path, text.join('\n') + '\n');
    paths.push(path);
  }
  return paths;
}

/** d2l-word n-gram counts of whole documents: key is the tokens joined by ' '. */
export function bruteForceCounts(documents: string[], order: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const document of documents) {
    const tokens = document
      .split('\n')
      .flatMap((line) => line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase().split(' ').filter(Boolean));
    for (let n = 1; n <= order; n++) {
      for (let i = 0; i + n <= tokens.length; i++) {
        const key = tokens.slice(i, i + n).join(' ');
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  return counts;
}
