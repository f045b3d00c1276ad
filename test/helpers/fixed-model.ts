/**
 * A run directory whose model ignores its input: W_q = 0 and b_q = log p, so every step's output
 * distribution is exactly p over `vocab` (d2l-char by default). For tests of generation.
 */
import { writeCheckpoint } from '../../lib/checkpoint.ts';
import { vocabHash } from '../../storage/encoded.ts';
import { openRunDatabase } from '../../storage/schema.ts';
import { runPaths } from '../../storage/run-paths.ts';
import { setMeta } from '../../storage/stages.ts';
import { paramSpecs, type ModelShape } from '../../stages/train/index.ts';

export function fixedModel(dir: string, p: number[], options: { vocab?: string[]; tokenizer?: string } = {}): void {
  const { vocab = ['<unk>', ' ', 'a', 'b', 'c'], tokenizer = 'd2l-char' } = options;
  const db = openRunDatabase(runPaths(dir).database);
  vocab.forEach((token, id) => db.prepare('INSERT INTO vocab VALUES (?, ?, 0)').run(id, token));
  setMeta(db, 'tokenizer', tokenizer);
  const data = { vocabSize: vocab.length, vocabHash: vocabHash(db) };
  db.close();
  const shape: ModelShape = { cell: 'rnn', vocabSize: vocab.length, hidden: 3, layers: 1 };
  const tensors = Object.fromEntries(paramSpecs(shape).map((spec) => {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const values = spec.name === 'output.b_q' ? Float32Array.from(p, Math.log) : new Float32Array(size).fill(0.1);
    return [`param/${spec.name}`, { shape: spec.shape, values: spec.name === 'output.W_q' ? new Float32Array(size) : values }];
  }));
  writeCheckpoint(runPaths(dir).trainCheckpoint, { shape, run: 'fixed', data }, tensors);
}
