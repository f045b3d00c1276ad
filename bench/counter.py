"""The d2l-style baseline for the ingest benchmark: tokenize as d2l 0.17 does, count n-grams of
orders 1..N with collections.Counter, optionally write them to SQLite, print timings as JSON.

    python3 bench/counter.py FILE [--order 3] [--sqlite OUT.sqlite] [--literal]

Tokens: per line re.sub('[^A-Za-z]+', ' ', line).strip().lower().split(), lines concatenated, so
n-grams cross lines within the file (as d2l's `corpus` list does) but the file is one document.

Default mode streams: lines are tokenized in blocks of 20,000 and each Counter is updated with zip()
over the block plus the last N-1 tokens of the previous block. The counts equal the book's code;
memory stays at the Counters. --literal runs the book's own steps instead (the whole corpus as
one list, then Counter(corpus), Counter(zip(corpus[:-1], corpus[1:])), ...), which needs several
GB for 100 MB of text.

--sqlite writes what lmpipe writes for the same stage: a tokens table (first-occurrence ids) and one
WITHOUT ROWID table per order keyed by ids, in WAL mode, in one transaction with executemany.
"""
import argparse
import collections
import json
import re
import sqlite3
import sys
import time

CLEAN = re.compile('[^A-Za-z]+')
BLOCK = 20000


def tokenize(line):
    return CLEAN.sub(' ', line).strip().lower().split()


def count_streaming(path, order):
    counters = [collections.Counter() for _ in range(order)]
    carry = []
    tokens = 0
    with open(path, encoding='utf-8', errors='replace') as f:
        while True:
            lines = f.readlines(1 << 20)
            if not lines:
                break
            block = carry + [t for line in lines for t in tokenize(line)]
            fresh = len(block) - len(carry)
            tokens += fresh
            for n in range(1, order + 1):
                # n-grams that end in this block's new tokens; the carry holds the previous block's tail.
                start = max(0, len(carry) - (n - 1))
                seq = block[start:]
                counters[n - 1].update(zip(*(seq[i:] for i in range(n))))
            carry = block[-(order - 1):] if order > 1 else []
    return counters, tokens


def count_literal(path, order):
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = f.readlines()
    corpus = [token for line in lines for token in tokenize(line)]
    counters = [collections.Counter(corpus)]
    counters[0] = collections.Counter((t,) for t in corpus)
    for n in range(2, order + 1):
        counters.append(collections.Counter([g for g in zip(*(corpus[i:] for i in range(n)))]))
    return counters, len(corpus)


def write_sqlite(path, counters):
    db = sqlite3.connect(path)
    db.execute('PRAGMA journal_mode = WAL')
    db.execute('PRAGMA synchronous = NORMAL')
    db.execute('PRAGMA cache_size = -262144')
    ids = {}
    for (token,) in counters[0]:  # Counter keeps insertion order: first occurrence
        ids[token] = len(ids)
    with db:
        db.execute('CREATE TABLE tokens (id INTEGER PRIMARY KEY, token TEXT NOT NULL UNIQUE)')
        db.executemany('INSERT INTO tokens VALUES (?, ?)', ((i, t) for t, i in ids.items()))
        for n, counter in enumerate(counters, start=1):
            cols = ', '.join(f'w{i + 1}' for i in range(n))
            db.execute(f'CREATE TABLE ngram{n} ({cols}, count INTEGER NOT NULL, PRIMARY KEY ({cols})) WITHOUT ROWID')
            marks = ', '.join('?' * (n + 1))
            db.executemany(f'INSERT INTO ngram{n} VALUES ({marks})',
                           ((*(ids[t] for t in gram), c) for gram, c in counter.items()))
    db.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('file')
    parser.add_argument('--order', type=int, default=3)
    parser.add_argument('--sqlite', help='also write the counts to this SQLite file (replaced)')
    parser.add_argument('--literal', action='store_true', help="the book's whole-corpus lists")
    args = parser.parse_args()
    started = time.perf_counter()
    counters, tokens = (count_literal if args.literal else count_streaming)(args.file, args.order)
    counted = time.perf_counter()
    if args.sqlite:
        import os
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(args.sqlite + suffix):
                os.remove(args.sqlite + suffix)
        write_sqlite(args.sqlite, counters)
    written = time.perf_counter()
    top = counters[1].most_common(1) if args.order > 1 else counters[0].most_common(1)
    json.dump({
        'tokens': tokens,
        'distinct': [len(c) for c in counters],
        'top': [list(top[0][0]), top[0][1]] if top else None,
        'count_s': counted - started,
        'write_s': written - counted,
        'python': sys.version.split()[0],
    }, sys.stdout)
    print()


if __name__ == '__main__':
    main()
