/**
 * The encode stage: the counted token stream (DIR/tokens.bin, `tokens.id` per token) becomes
 * vocabulary ids split into training and validation data (storage/encoded.ts has the format).
 *
 *   ids     = vocab id of each token of tokens.bin (0, <unk>, for tokens outside the vocabulary)
 *   used    = the first --max-tokens of them (0: all), as d2l's load_corpus_time_machine(max_tokens)
 *   valid   = the last floor(used * --valid-frac) tokens: one contiguous tail, so no subsequence
 *             of the training split runs into validation text
 *   train   = the rest
 *
 * tokens.bin is streamed in blocks of 1M tokens, so memory is two blocks plus one Int32 per
 * distinct token, however large the corpus. Encoding is a single pass that takes seconds even at
 * 100M tokens, so a killed run starts over rather than keeping a cursor: files are written under
 * temporary names and renamed, and only then is the stage marked done with the splits' lengths,
 * sha256 and the vocabulary hash, which `loadEncoded` checks before handing the data to the trainer.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import type { Config } from '../pipeline/config.ts';
import { LmpipeError } from '../lib/errors.ts';
import type { Stage, StageContext, StageEvent } from '../pipeline/types.ts';
import {
  createIdWriter, idsSha256, readIds, removeEncoded, vocabHash, vocabLookup,
} from '../storage/encoded.ts';
import type { Database } from '../storage/driver.ts';
import { getMeta, loadStage, markDone, saveCheckpoint } from '../storage/stages.ts';
import { runPaths } from '../storage/run-paths.ts';

/** The encode stage's checkpoint once done: everything the trainer checks before it trusts the splits. */
export interface EncodeCheckpoint {
  version: 1;
  vocabSize: number;
  /** storage/encoded.ts vocabHash(): sha256 of the vocab tokens in id order. */
  vocabHash: string;
  /** Tokens in tokens.bin, and how many of them were kept (--max-tokens). */
  tokens: number;
  used: number;
  train: number;
  valid: number;
  trainSha256: string;
  validSha256: string;
  maxTokens: number;
  validFrac: number;
}

export interface Encoded {
  train: Int32Array;
  valid: Int32Array;
  vocabSize: number;
  vocabHash: string;
}

const BLOCK_TOKENS = 1 << 20;
const BIG_ENDIAN = endianness() === 'BE';

/** How many tokens are kept, and where the validation tail starts. */
export function splitSizes(tokens: number, options: Pick<Config, 'maxTokens' | 'validFrac'>) {
  const used = options.maxTokens > 0 ? Math.min(options.maxTokens, tokens) : tokens;
  const valid = Math.floor(used * options.validFrac);
  return { used, train: used - valid, valid };
}

export const encodeStage: Stage = {
  name: 'encode',
  consumes: 'DIR/tokens.bin (count) and the vocab table (vocab)',
  produces: 'DIR/encoded/train.bin and valid.bin: Int32 LE vocabulary ids',
  checkpoint: 'none while running (it starts over); when done: split lengths, sha256, vocab size and hash',
  settings: (config) => ({ maxTokens: config.maxTokens, validFrac: config.validFrac }),
  run: encode,
  reset: ({ dir }) => removeEncoded(dir),
};

async function* encode(ctx: StageContext): AsyncGenerator<StageEvent> {
  const { db, dir, config, fingerprint } = ctx;
  const source = runPaths(dir).tokens;
  const tokens = _tokenCount(db, source);
  const sizes = splitSizes(tokens, config);
  const { lookup, vocabSize } = vocabLookup(db);
  db.transaction(() => saveCheckpoint(db, 'encode', fingerprint, { phase: 'writing', ...sizes }))();
  const paths = runPaths(dir);
  mkdirSync(paths.encodedDir, { recursive: true });
  const fd = openSync(source, 'r');
  const train = createIdWriter(paths.encodedTrain);
  const valid = createIdWriter(paths.encodedValid);
  let complete = false;
  try {
    const raw = new Int32Array(BLOCK_TOKENS);
    const ids = new Int32Array(BLOCK_TOKENS);
    for (let position = 0; position < sizes.used;) {
      const length = Math.min(BLOCK_TOKENS, sizes.used - position);
      _readBlock(fd, raw.subarray(0, length), position);
      _mapBlock(raw.subarray(0, length), ids, lookup, { file: source, position });
      // The training/validation cut may fall inside this block.
      const cut = Math.max(0, Math.min(length, sizes.train - position));
      if (cut > 0) train.write(ids.subarray(0, cut));
      if (cut < length) valid.write(ids.subarray(cut, length));
      position += length;
      yield { done: position, total: sizes.used, unit: 'tokens' };
      if (ctx.signal.aborted) return; // nothing committed: the runner reports the interruption
    }
    complete = true;
  } finally {
    closeSync(fd);
    if (!complete) {
      train.abort();
      valid.abort();
    }
  }
  const trainFile = train.finish();
  const validFile = valid.finish();
  const checkpoint: EncodeCheckpoint = {
    version: 1, vocabSize, vocabHash: vocabHash(db), tokens, ...sizes,
    trainSha256: trainFile.sha256, validSha256: validFile.sha256,
    maxTokens: config.maxTokens, validFrac: config.validFrac,
  };
  db.transaction(() => markDone(db, 'encode', fingerprint, checkpoint))();
  yield {
    done: sizes.used, total: sizes.used, unit: 'tokens',
    message: `encoded ${sizes.used} of ${tokens} tokens: ${sizes.train} train, ${sizes.valid} valid, vocabulary of ${vocabSize}`,
    data: { ...sizes, tokens, vocabSize },
  };
}

/**
 * The encoded splits for the trainer, after checking that the encode stage finished, that the
 * files are the ones it wrote (length and sha256) and that the vocabulary has not changed since.
 * `dir` defaults to the database's directory.
 */
export function loadEncoded(db: Database, options: { dir?: string } = {}): Encoded {
  const dir = options.dir ?? dirname(db.path);
  const record = loadStage<EncodeCheckpoint>(db, 'encode');
  if (record?.state !== 'done') {
    throw new LmpipeError('STATE', `Expected the encode stage to be done in ${dir}, got \`${record?.state ?? 'not started'}\`; ` +
      `run \`npm run pipeline -- --out ${dir} --until encode\``, { stage: 'train' });
  }
  const checkpoint = record.checkpoint;
  const paths = runPaths(dir);
  const train = readIds(paths.encodedTrain, checkpoint.train);
  const valid = readIds(paths.encodedValid, checkpoint.valid);
  const files = [[paths.encodedTrain, train, checkpoint.trainSha256], [paths.encodedValid, valid, checkpoint.validSha256]] as const;
  for (const [path, ids, sha256] of files) {
    if (idsSha256(ids) !== sha256) {
      throw new LmpipeError('STATE', `Expected ${path} to have the sha256 the encode stage recorded, got another; ` +
        'run the encode stage again (--from encode)', { stage: 'train', file: path });
    }
  }
  const current = vocabHash(db);
  if (current !== checkpoint.vocabHash) {
    throw new LmpipeError('STATE', `Expected the vocabulary the corpus was encoded with (hash ${checkpoint.vocabHash.slice(0, 12)}), ` +
      `got ${current.slice(0, 12)}; run the encode stage again (--from encode)`, { stage: 'train' });
  }
  return { train, valid, vocabSize: checkpoint.vocabSize, vocabHash: checkpoint.vocabHash };
}

/** Tokens in tokens.bin, checked against the count stage's total where it recorded one. */
function _tokenCount(db: Database, source: string): number {
  const place = { stage: 'encode', file: source };
  if (!existsSync(source)) {
    throw new LmpipeError('STATE', `Expected ${source} from the count stage, got no such file; run the count stage first`, place);
  }
  const fd = openSync(source, 'r');
  const bytes = fstatSync(fd).size;
  closeSync(fd);
  if (bytes % 4 !== 0) throw new LmpipeError('STATE', `Expected ${source} to hold whole Int32 ids, got ${bytes} bytes`, place);
  // total_1 (unigram occurrences) is every token of the stream: a mismatch means a torn count.
  const total = getMeta(db, 'total_1');
  if (total !== undefined && Number(total) !== bytes / 4) {
    throw new LmpipeError('STATE', `Expected ${source} to hold the ${total} tokens the count stage counted, got ${bytes / 4}`, place);
  }
  return bytes / 4;
}

/** Reads block.length ids starting at token `position` into `block`. */
function _readBlock(fd: number, block: Int32Array, position: number): void {
  const bytes = new Uint8Array(block.buffer, block.byteOffset, block.byteLength);
  for (let done = 0; done < bytes.length;) {
    const read = readSync(fd, bytes, done, bytes.length - done, position * 4 + done);
    if (read === 0) throw new LmpipeError('STATE', 'Expected tokens.bin not to shrink while it is encoded', { stage: 'encode' });
    done += read;
  }
  if (BIG_ENDIAN) Buffer.from(block.buffer, block.byteOffset, block.byteLength).swap32();
}

/** ids[i] = lookup[raw[i]], refusing ids the tokens table does not have. */
function _mapBlock(raw: Int32Array, ids: Int32Array, lookup: Int32Array, where: { file: string; position: number }): void {
  for (let i = 0; i < raw.length; i++) {
    const token = raw[i];
    if (token >>> 0 >= lookup.length) {
      throw new LmpipeError('STATE', `Expected token ids below ${lookup.length} (the tokens table) in tokens.bin, got ${token}`,
        { stage: 'encode', file: where.file, position: `token ${where.position + i}` });
    }
    ids[i] = lookup[token];
  }
}
