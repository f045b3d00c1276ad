# d2l 0.17's Vocab (d2l/torch.py), verbatim but for the I/O: reads {tokens, reserved, min_freq} as
# JSON on stdin, prints idx_to_token and the number of corpus tokens each id receives.
import collections
import json
import sys


def count_corpus(tokens):
    if len(tokens) == 0 or isinstance(tokens[0], list):
        tokens = [token for line in tokens for token in line]
    return collections.Counter(tokens)


class Vocab:
    def __init__(self, tokens=None, min_freq=0, reserved_tokens=None):
        if tokens is None:
            tokens = []
        if reserved_tokens is None:
            reserved_tokens = []
        counter = count_corpus(tokens)
        self._token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = ['<unk>'] + reserved_tokens
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}
        for token, freq in self._token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.idx_to_token.append(token)
                self.token_to_idx[token] = len(self.idx_to_token) - 1

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(token) for token in tokens]

    @property
    def unk(self):
        return 0


request = json.load(sys.stdin)
vocab = Vocab(request['tokens'], request['min_freq'], request['reserved'])
counts = [0] * len(vocab)
for index in vocab[request['tokens']]:
    counts[index] += 1
print(json.dumps({'tokens': vocab.idx_to_token, 'counts': counts}))
