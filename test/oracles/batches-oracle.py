"""Oracle for test/batches.test.ts: runs d2l's (0.17) two sequence samplers literally, given the
random draws that lmpipe's generator made, and prints every minibatch.

stdin: a JSON list of cases {sampler, corpus, batchSize, steps, offset, starts}; `offset` is what
random.randint must return and `starts` (random sampler only) is the shuffled order of
initial_indices. stdout: a JSON list (one per case) of lists of [X, Y].

torch is replaced by plain lists: torch.tensor(x) -> x, reshape -> _reshape, [:, a:b] -> _columns.
"""
import json
import random
import sys


def seq_data_iter_random(corpus, batch_size, num_steps):
    corpus = corpus[random.randint(0, num_steps - 1):]
    num_subseqs = (len(corpus) - 1) // num_steps
    initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
    random.shuffle(initial_indices)
    def data(pos): return corpus[pos: pos + num_steps]
    num_batches = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches, batch_size):
        initial_indices_per_batch = initial_indices[i: i + batch_size]
        X = [data(j) for j in initial_indices_per_batch]
        Y = [data(j + 1) for j in initial_indices_per_batch]
        yield X, Y


def seq_data_iter_sequential(corpus, batch_size, num_steps):
    offset = random.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = corpus[offset: offset + num_tokens]
    Ys = corpus[offset + 1: offset + 1 + num_tokens]
    Xs, Ys = _reshape(Xs, batch_size), _reshape(Ys, batch_size)
    num_batches = len(Xs[0]) // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        X = _columns(Xs, i, i + num_steps)
        Y = _columns(Ys, i, i + num_steps)
        yield X, Y


def _reshape(flat, rows):
    """torch's reshape(rows, -1) on a 1-D list."""
    assert len(flat) % rows == 0
    width = len(flat) // rows
    return [flat[r * width: (r + 1) * width] for r in range(rows)]


def _columns(matrix, start, end):
    """matrix[:, start:end]."""
    return [row[start:end] for row in matrix]


def _run(case):
    def randint(a, b):
        # lmpipe's draw must lie in the range d2l asks for.
        assert a <= case["offset"] <= b, (a, b, case["offset"])
        return case["offset"]

    def shuffle(values):
        # lmpipe must have permuted exactly the list d2l builds.
        assert sorted(case["starts"]) == values, "starts are not a permutation of initial_indices"
        values[:] = case["starts"]

    random.randint, random.shuffle = randint, shuffle
    sampler = seq_data_iter_random if case["sampler"] == "random" else seq_data_iter_sequential
    return [[X, Y] for X, Y in sampler(case["corpus"], case["batchSize"], case["steps"])]


if __name__ == "__main__":
    json.dump([_run(case) for case in json.load(sys.stdin)], sys.stdout)
