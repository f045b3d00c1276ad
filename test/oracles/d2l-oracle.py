"""The d2l book's (0.17) text preprocessing, verbatim, as an oracle for test/tokenize.test.ts.

Usage: python3 test/d2l-oracle.py FILE...
Prints a JSON array with, for each file, {"word": [...tokens], "char": [...tokens], "word_freqs":
[[token, count], ...], "char_freqs": [...]}, where *_freqs is d2l's Vocab.token_freqs (descending
count, ties in first-occurrence order: sorted() is stable and Counter keeps insertion order).
"""
import collections
import json
import re
import sys


def read_time_machine(path):  # d2l.read_time_machine, with the path as an argument
    with open(path, 'r', encoding='utf-8') as f:
        lines = f.readlines()
    return [re.sub('[^A-Za-z]+', ' ', line).strip().lower() for line in lines]


def tokenize(lines, token='word'):  # d2l.tokenize
    if token == 'word':
        return [line.split() for line in lines]
    elif token == 'char':
        return [list(line) for line in lines]
    else:
        print('ERROR: unknown token type: ' + token)


def count_corpus(tokens):  # d2l.count_corpus
    if len(tokens) == 0 or isinstance(tokens[0], list):
        tokens = [token for line in tokens for token in line]
    return collections.Counter(tokens)


def token_freqs(tokens):  # the ordering in d2l.Vocab.__init__
    counter = count_corpus(tokens)
    return sorted(counter.items(), key=lambda x: x[1], reverse=True)


def main():
    results = []
    for path in sys.argv[1:]:
        lines = read_time_machine(path)
        out = {}
        for kind in ('word', 'char'):
            tokens = tokenize(lines, kind)
            out[kind] = [token for line in tokens for token in line]  # d2l.load_corpus_time_machine
            out[kind + '_freqs'] = token_freqs(tokens)
        results.append(out)
    json.dump(results, sys.stdout)


main()
