/**
 * Tokenize stage: TextChunk -> TokenBatch of ids local to one Interner.
 *
 * Tokenizers (see _tokenize-d2l.ts, _tokenize-word.ts, _tokenize-char.ts for the exact rules):
 *   d2l-word, d2l-char  the d2l book's (0.17) rules, always lowercase, ASCII letters only
 *   word                Intl.Segmenter word-like segments; `lowercase` optional
 *   char                code points, whitespace runs as one ' '; `lowercase` optional
 *
 * A tokenizer carries its state across the chunks of one document, so the ids never depend on
 * where chunks are cut. It holds back a token that a chunk's end may have cut (a word), and emits
 * it when the document ends: at a chunk with `documentEnd` (the read stage sets it), or when the
 * caller calls `end()` (a documentStart chunk drops what the previous document still held, so
 * call `end()` first when its last chunk lacked documentEnd). One tokenizer per shard:
 * `leadingGap` / `trailingGap` describe the shard's edges (char tokenizer only; _tokenize-char.ts).
 *
 * Speed (tokenize alone, tinyshakespeare x10 in 1 MB chunks, 2 shared cores): d2l-word ~60-90 MB/s,
 * d2l-char ~45-70, word ~45 (ASCII; ~1.4 MB/s on Chinese, where Intl.Segmenter does the work),
 * char ~100.
 */
import { TOKENIZERS } from '../../pipeline/config.ts';
import type { TextChunk, TokenBatch, TokenizerName } from '../../pipeline/types.ts';
import { Interner } from './_interner.ts';
import type { ChunkTokenizer } from './_id-list.ts';
import { D2lCharTokenizer, D2lWordTokenizer } from './_tokenize-d2l.ts';
import { CharTokenizer } from './_tokenize-char.ts';
import { WordTokenizer } from './_tokenize-word.ts';

export { Interner } from './_interner.ts';

export interface Tokenizer {
  /** Ids of the tokens that `chunk` completes, in order. */
  push(chunk: TextChunk): Int32Array;
  /** Ends the current document and returns the ids of the token it still held (often none). */
  end(): Int32Array;
  /** char: this shard started inside a document with whitespace, which was dropped. */
  leadingGap: boolean;
  /** char: whitespace was pending when the last chunk pushed did not end its document. */
  trailingGap: boolean;
}

export interface TokenizerOptions {
  tokenizer: TokenizerName;
  /** word and char: lowercase every token (d2l-* always lowercase). */
  lowercase?: boolean;
}

export { TOKENIZERS };

export function createTokenizer(options: TokenizerOptions & { interner: Interner }): Tokenizer {
  const { tokenizer, lowercase, interner } = { lowercase: false, ...options };
  const make: Record<TokenizerName, () => ChunkTokenizer> = {
    'd2l-word': () => new D2lWordTokenizer(interner),
    'd2l-char': () => new D2lCharTokenizer(interner),
    word: () => new WordTokenizer(interner, lowercase),
    char: () => new CharTokenizer(interner, lowercase),
  };
  if (!Object.hasOwn(make, tokenizer)) {
    throw new TypeError(`Expected \`--tokenizer\` to be one of ${TOKENIZERS.join(', ')}, got \`${tokenizer}\``);
  }
  return make[tokenizer]();
}

/**
 * Streams TokenBatches. A document whose last chunk lacked `documentEnd` is ended here (before the
 * next document's first batch, and at the end), its held token yielded as a batch of its own.
 */
export async function* tokenize(
  chunks: AsyncIterable<TextChunk>,
  options: TokenizerOptions & { interner: Interner },
): AsyncGenerator<TokenBatch> {
  const tokenizer = createTokenizer(options);
  let open = false;
  for await (const chunk of chunks) {
    if (chunk.documentStart && open) {
      const tail = tokenizer.end();
      if (tail.length > 0) yield { ids: tail.slice(), documentStart: false };
    }
    // push() hands out a view of the tokenizer's buffer: a consumer may keep what it is given.
    yield { ids: tokenizer.push(chunk).slice(), documentStart: chunk.documentStart };
    open = chunk.documentEnd !== true;
  }
  if (open) {
    const tail = tokenizer.end();
    if (tail.length > 0) yield { ids: tail.slice(), documentStart: false };
  }
}

/** One whole document -> its tokens, exactly as the streaming path tokenizes it. */
export function tokenizeText(text: string, options: TokenizerOptions): string[] {
  const interner = new Interner();
  const tokenizer = createTokenizer({ ...options, interner });
  const ids = tokenizer.push({ text, documentStart: true, documentEnd: true, source: '', position: 0 });
  return Array.from(ids, (id) => interner.token(id));
}
