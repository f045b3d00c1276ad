/**
 * The ingest family's face: read (files, directories, stdin, .gz, JSON) and tokenize (the four
 * tokenizers). Both stream inside the count stage's workers; they have no runner stage of their
 * own. The interner's hash and the id list are what counting reuses from tokenizing.
 */
export { planShards, read, type ReadOptions, type ReadReport } from './read.ts';
export { createTokenizer, tokenize, tokenizeText, TOKENIZERS, Interner, type Tokenizer, type TokenizerOptions } from './tokenize.ts';
export { textHashStart, textHashStep } from './_interner.ts';
export { IdList } from './_id-list.ts';
