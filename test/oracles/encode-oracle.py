"""Oracle for test/encode.test.ts: d2l's (0.17) read_time_machine, tokenize, Vocab and
load_corpus_time_machine, written out with plain Python (no torch), for a reserved-token list.

argv: path, 'char' | 'word', max_tokens (0: all), reserved tokens as a JSON list.
stdout: JSON {vocab: idx_to_token, corpus: [ids]}.
"""
import collections
import json
import re
import sys


def read_time_machine(path):
    with open(path) as f:
        lines = f.readlines()
    return [re.sub('[^A-Za-z]+', ' ', line).strip().lower() for line in lines]


def tokenize(lines, token):
    return [line.split() for line in lines] if token == 'word' else [list(line) for line in lines]


def vocab(tokens, reserved_tokens):
    counter = collections.Counter(token for line in tokens for token in line)
    # sorted() is stable and Counter keeps first-occurrence order: ties stay in that order.
    token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
    idx_to_token = ['<unk>'] + reserved_tokens
    token_to_idx = {token: idx for idx, token in enumerate(idx_to_token)}
    for token, freq in token_freqs:
        if token not in token_to_idx:
            idx_to_token.append(token)
            token_to_idx[token] = len(idx_to_token) - 1
    return idx_to_token, token_to_idx


if __name__ == '__main__':
    path, token, max_tokens, reserved = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    tokens = tokenize(read_time_machine(path), token)
    idx_to_token, token_to_idx = vocab(tokens, reserved)
    corpus = [token_to_idx[token] for line in tokens for token in line]
    if max_tokens > 0:
        corpus = corpus[:max_tokens]
    json.dump({'vocab': idx_to_token, 'corpus': corpus}, sys.stdout)
