#!/usr/bin/env python3
"""Independent oracle for lmpipe's Kneser-Ney model: interpolated modified Kneser-Ney as KenLM's
lmplz estimates it, written straight from the formulas with plain dicts, and KenLM query's
perplexity. It shares no code with analysis/kn/ (the code under test); the tests run both on the
same text and compare every log10 value.

  kn_oracle.py sentences --tokenizer d2l-word FILE...       one tokenized sentence per line (lmplz's input)
  kn_oracle.py arpa --order N [--discount-fallback] FILE... the ARPA file lmplz writes, on stdout
  kn_oracle.py perplexity --arpa MODEL FILE...               KenLM query's summary lines
      [--no-eos] [--skip-first]                              (lmpipe eval's unit: no </s>, no first word)

Sentences: each line of each file is one sentence (a final newline does not start another), and
`--tokenizer` splits it: `d2l-word` is d2l 0.17's `re.sub('[^A-Za-z]+', ' ', line).strip().lower().split()`
(lines as Python's universal newlines read them), `whitespace` is lmplz's own split on spaces and tabs.
An empty line is the sentence `<s> </s>`.

The model (Chen & Goodman 1998; Heafield et al. 2013; kpu/kenlm lm/builder/adjust_counts.cc,
initial_probabilities.cc, interpolate.cc), for a sentence padded as `<s> w1 .. wk </s>`:
  - the n-grams of order n are every n-gram of the padded sentences (none cross a sentence), plus
    the unigrams <unk> and <s>;
  - adjusted count a(g): the raw count for the top order and for n-grams that start with <s>;
    otherwise the number of distinct words v for which `v g` occurs; a(<unk>) = a(<s>) = 0;
  - discounts per order from n_j = #{g : a(g) = j}: Y = n1 / (n1 + 2 n2), D_j = j - (j+1) Y n_{j+1} / n_j
    for j = 1, 2, 3 (D3 applies to every count >= 3); lmplz's error when some n_j is 0 or a D_j is
    outside [0, j], or with --discount-fallback its fallback D = 0.5, 1, 1.5 for that order;
  - for context h: gamma(h) = sum_j D_j #{w : a(h w) = j, 3 meaning >= 3} / sum_w a(h w);
  - p(w | h) = (a(h w) - D(a(h w))) / sum_w' a(h w') + gamma(h) p(w | h minus its first word),
    down to the uniform 1 / |V| where V holds every unigram but <s> (so <unk> and </s> count);
    p(<unk>) is gamma(()) / |V| (a zeroton) and p(<s>) is 1 (log10 0: KenLM since 2015);
  - backoff(h) = gamma(h) for an n-gram below the top order that is some n-gram's context, except
    that n-grams ending in </s> or <unk> get backoff 1 (log10 0).
ARPA layout as lmplz writes it (without --renumber): `\\data\\`, `ngram n=count`, then per order
`log10 p <TAB> words [<TAB> log10 backoff]` (no backoff column on the top order), log10 values
rounded to float32 and printed in the shortest form that reads back the same float32; ids are
<unk> 0, <s> 1, </s> 2, then words in order of first occurrence, and each order is sorted by its
last word's id, then the one before, and so on (lmplz's suffix order).

Query (kpu/kenlm lm/ngram_query.hh): each sentence starts in the <s> context; every word and the
closing </s> is scored with the ARPA back-off rule p(w | h) = p(h w) if listed, else b(h) p(w | h'),
b(h) = 1 when h is not listed; a word not in the model is <unk>. Perplexity including OOVs is
10^(-sum / tokens); excluding OOVs, the OOV words leave both the sum and the count.
"""
import argparse
import math
import re
import struct
import sys
from collections import defaultdict

BOS, EOS, UNK = '<s>', '</s>', '<unk>'
FALLBACK = (0.5, 1.0, 1.5)


def read_lines(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.readlines()


def tokenize(line, tokenizer):
    if tokenizer == 'd2l-word':
        return re.sub('[^A-Za-z]+', ' ', line).strip().lower().split()
    return line.split()


def sentences(paths, tokenizer):
    for path in paths:
        for line in read_lines(path):
            yield tokenize(line.rstrip('\n'), tokenizer)


def estimate(sents, order, discount_fallback=False):
    """Returns (ids, ngrams): ids word -> id; ngrams[n] maps tuple -> (log10 p, log10 backoff or None)."""
    ids = {UNK: 0, BOS: 1, EOS: 2}
    raw = [None] + [defaultdict(int) for _ in range(order)]
    for words in sents:
        for w in words:
            if w not in ids:
                ids[w] = len(ids)
        padded = [BOS] + list(words) + [EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                gram = tuple(padded[i:i + n])
                if gram != (BOS,):
                    raw[n][gram] += 1
    # Adjusted counts.
    adjusted = [None] + [{} for _ in range(order)]
    left = [None] + [defaultdict(set) for _ in range(order)]
    for n in range(2, order + 1):
        for gram in raw[n]:
            left[n - 1][gram[1:]].add(gram[0])
    for n in range(1, order + 1):
        for gram, count in raw[n].items():
            top_or_bos = n == order or gram[0] == BOS
            adjusted[n][gram] = count if top_or_bos else len(left[n][gram])
    adjusted[1][(UNK,)] = 0
    adjusted[1][(BOS,)] = 0
    # Discounts per order.
    discounts = [None]
    for n in range(1, order + 1):
        counts_of = [0] * 5
        for a in adjusted[n].values():
            if 0 < a < 5:
                counts_of[a] += 1
        try:
            for j in (1, 2, 3):
                if counts_of[j] == 0:
                    raise ValueError(f'Could not calculate Kneser-Ney discounts for {n}-grams with adjusted count {j + 1} '
                                     f"because we didn't observe any {n}-grams with adjusted count {j}")
            y = counts_of[1] / (counts_of[1] + 2 * counts_of[2])
            d = [0.0] + [j - (j + 1) * y * counts_of[j + 1] / counts_of[j] for j in (1, 2, 3)]
            for j in (1, 2, 3):
                if not 0 <= d[j] <= j:
                    raise ValueError(f'{n}-gram discount out of range for adjusted count {j}: {d[j]}')
        except ValueError as error:
            if not discount_fallback:
                sys.exit(f'kn_oracle: {error}')
            print(f'kn_oracle: fallback discounts for order {n}: {error}', file=sys.stderr)
            d = [0.0, *FALLBACK]
        discounts.append(d)

    def discount(n, a):
        return discounts[n][min(a, 3)]

    # Per-context sums: denominator and gamma.
    gamma = [None] + [{} for _ in range(order)]
    denominators = [None] + [defaultdict(int) for _ in range(order)]
    for n in range(1, order + 1):
        denominator = denominators[n]
        mass = defaultdict(float)
        for gram, a in adjusted[n].items():
            h = gram[:-1]
            denominator[h] += a
            if a > 0:
                mass[h] += discount(n, a)
        for h in denominator:
            gamma[n][h] = mass[h] / denominator[h]
    vocab_size = len(adjusted[1]) - 1  # every unigram but <s>
    prob = [None] + [{} for _ in range(order)]
    for n in range(1, order + 1):
        denominator = denominators[n]
        for gram, a in adjusted[n].items():
            h = gram[:-1]
            lower = 1.0 / vocab_size if n == 1 else prob[n - 1][gram[1:]]
            prob[n][gram] = (a - discount(n, a)) / denominator[h] + gamma[n][h] * lower
    prob[1][(BOS,)] = 1.0
    ngrams = [None] + [{} for _ in range(order)]
    for n in range(1, order + 1):
        for gram, p in prob[n].items():
            backoff = None
            if n < order:
                is_context = gram in gamma[n + 1] and gram[-1] not in (EOS, UNK)
                backoff = math.log10(gamma[n + 1][gram]) if is_context else 0.0
            ngrams[n][gram] = (min(0.0, math.log10(p)), backoff)
    return ids, ngrams


def float32(value):
    return struct.unpack('f', struct.pack('f', value))[0]


def shortest_float32(value):
    """lmplz's number format: the shortest decimal that reads back as the same float32."""
    single = float32(value)
    if single == 0:
        return '0'
    for digits in range(1, 10):
        text = f'{single:.{digits}g}'
        if float32(float(text)) == single:
            return repr(float(text))
    return repr(single)


def write_arpa(ids, ngrams, out):
    order = len(ngrams) - 1
    out.write('\\data\\\n')
    for n in range(1, order + 1):
        out.write(f'ngram {n}={len(ngrams[n])}\n')
    out.write('\n')
    for n in range(1, order + 1):
        out.write(f'\\{n}-grams:\n')
        for gram in sorted(ngrams[n], key=lambda g: [ids[w] for w in reversed(g)]):
            p, backoff = ngrams[n][gram]
            line = f'{shortest_float32(p)}\t{" ".join(gram)}'
            if backoff is not None:
                line += f'\t{shortest_float32(backoff)}'
            out.write(line + '\n')
        out.write('\n')
    out.write('\\end\\\n')


def read_arpa(path):
    """ARPA file -> (order, {tuple: (log10 p, log10 backoff)})."""
    model = {}
    order = 0
    n = 0
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.rstrip('\n')
            match = re.fullmatch(r'\\(\d)-grams:', line)
            if match:
                n = int(match.group(1))
                order = max(order, n)
                continue
            if n == 0 or line == '' or line == '\\end\\':
                continue
            fields = line.split('\t')
            backoff = float(fields[2]) if len(fields) > 2 else 0.0
            model[tuple(fields[1].split(' '))] = (float(fields[0]), backoff)
    return order, model


def score(model, order, context, word):
    """log10 p(word | context) by the ARPA back-off rule."""
    context = tuple(context[-(order - 1):]) if order > 1 else ()
    total = 0.0
    for start in range(len(context) + 1):
        h = context[start:]
        if h + (word,) in model:
            return total + model[h + (word,)][0]
        if h in model:
            total += model[h][1]
    raise KeyError(word)


def perplexity(model, order, sents, eos=True, skip_first=False):
    total = oov_total = 0.0
    tokens = oovs = 0
    skip = skip_first
    for words in sents:
        context = [BOS]
        for w in list(words) + ([EOS] if eos else []):
            if skip:
                skip = False
                context.append(w if (w,) in model else UNK)
                continue
            known = (w,) in model and w != UNK
            if w == EOS:
                known = True
            s = score(model, order, context, w if known else UNK)
            total += s
            tokens += 1
            if not known:
                oovs += 1
                oov_total += s
            context.append(w if known else UNK)
    including = 10 ** (-total / tokens)
    excluding = 10 ** (-(total - oov_total) / (tokens - oovs))
    return including, excluding, oovs, tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('command', choices=['sentences', 'arpa', 'perplexity'])
    parser.add_argument('files', nargs='+')
    parser.add_argument('--order', type=int, default=3)
    parser.add_argument('--tokenizer', choices=['d2l-word', 'whitespace'], default='d2l-word')
    parser.add_argument('--discount-fallback', action='store_true')
    parser.add_argument('--arpa')
    parser.add_argument('--no-eos', action='store_true', help='perplexity: do not score </s> (lmpipe eval\'s unit)')
    parser.add_argument('--skip-first', action='store_true', help='perplexity: do not score the first word (it has no RNN history)')
    args = parser.parse_args()
    sents = sentences(args.files, args.tokenizer)
    if args.command == 'sentences':
        for words in sents:
            sys.stdout.write(' '.join(words) + '\n')
    elif args.command == 'arpa':
        ids, ngrams = estimate(sents, args.order, args.discount_fallback)
        write_arpa(ids, ngrams, sys.stdout)
    else:
        order, model = read_arpa(args.arpa)
        including, excluding, oovs, tokens = perplexity(model, order, sents, not args.no_eos, args.skip_first)
        print(f'Perplexity including OOVs:\t{including}')
        print(f'Perplexity excluding OOVs:\t{excluding}')
        print(f'OOVs:\t{oovs}')
        print(f'Tokens:\t{tokens}')


if __name__ == '__main__':
    main()
