"""The model of bench/train-bench.ts in PyTorch, timed the same way: full training steps (forward,
BPTT, clipping by global norm 1, SGD lr 1, the loss read back) on synthetic ids, hidden state
carried and detached; each step timed on its own, so that a shared machine's best moments show.

Variants (request "variants", default scratch and nn), on the CPU each with 1 thread and with all
cores (torch.set_num_threads); with "device": "cuda" on the GPU instead (timed after
torch.cuda.synchronize(), which runs every 10 steps: the GPU runs ahead, as lmpipe's trainer lets it):
  nn         d2l's concise RNNModel: one-hot inputs into nn.RNN (one fused kernel per window; cuDNN on CUDA)
  embedding  nn.Embedding + nn.RNN: the same arithmetic as one-hot times W_xh, and what a PyTorch
             user writes for words
  scratch    d2l's RNNModelScratch (one-hot, per-step matmuls: the model lmpipe implements)

  /usr/bin/python3 bench/torch_rnn.py '{"settings": [{"name": "A", "cell": "rnn", "vocabSize": 28,
      "hidden": 512, "batch": 32, "steps": 35}], "seconds": 10, "device": "cpu", "variants": ["nn", "embedding"]}'
prints {"version": ..., "device": ..., "blas": ..., "results": [{...setting, "variant", "threads",
"tokensPerSecond", ...}]}. On the CPU each step is timed on its own (the loss read back):
tokensPerSecond is the fastest step's rate, with "medianTokensPerSecond", "cpuMsPerStep" and
"measuredSteps" beside it; on CUDA it is the mean rate.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


def scratch_params(cell, vocab, hidden, device):
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    normal = lambda *shape: (torch.randn(*shape, device=device) * 0.01).requires_grad_()
    zeros = lambda n: torch.zeros(n, device=device, requires_grad=True)
    return [normal(vocab, gates * hidden), normal(hidden, gates * hidden), zeros(gates * hidden), normal(hidden, vocab), zeros(vocab)]


def scratch_forward(cell, params, inputs, state, hidden):
    """d2l's rnn/gru/lstm from scratch over X [steps, batch] (one-hot), gate blocks side by side."""
    w_x, w_h, b, w_q, b_q = params
    x_all = F.one_hot(inputs.T, w_x.shape[0]).float()
    h, c = state
    outputs = []
    for x in x_all:
        if cell == "rnn":
            h = torch.tanh(x @ w_x + h @ w_h + b)
        elif cell == "gru":
            xz, xr, xh = (x @ w_x + b).chunk(3, 1)
            hz, hr, _ = w_h.chunk(3, 1)
            z, r = torch.sigmoid(xz + h @ hz), torch.sigmoid(xr + h @ hr)
            candidate = torch.tanh(xh + (r * h) @ w_h[:, 2 * hidden:])
            h = z * h + (1 - z) * candidate
        else:
            i, f, o, g = (x @ w_x + h @ w_h + b).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h @ w_q + b_q)
    return torch.cat(outputs), (h, c)


class Concise(nn.Module):
    def __init__(self, cell, vocab, hidden, embedding):
        super().__init__()
        self.vocab = vocab
        self.embedding = nn.Embedding(vocab, hidden) if embedding else None
        self.rnn = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](hidden if embedding else vocab, hidden)
        self.linear = nn.Linear(hidden, vocab)

    def forward(self, inputs, state):
        x = self.embedding(inputs.T) if self.embedding is not None else F.one_hot(inputs.T, self.vocab).float()
        y, state = self.rnn(x, state)
        return self.linear(y.reshape(-1, y.shape[-1])), state


def clip(params, theta=1.0):
    norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
    if norm > theta:
        for p in params:
            p.grad[:] *= theta / norm


def time_variant(setting, variant, seconds, device):
    cell, vocab, hidden, batch, steps = (setting[k] for k in ("cell", "vocabSize", "hidden", "batch", "steps"))
    torch.manual_seed(0)
    inputs = torch.randint(0, vocab, (batch, steps), device=device)
    targets = torch.randint(0, vocab, (batch, steps), device=device).T.reshape(-1)
    if variant == "scratch":
        params = scratch_params(cell, vocab, hidden, device)
        state = (torch.zeros(batch, hidden, device=device), torch.zeros(batch, hidden, device=device))
        forward = lambda s: scratch_forward(cell, params, inputs, s, hidden)
        detach = lambda s: tuple(t.detach() for t in s)
    else:
        model = Concise(cell, vocab, hidden, variant == "embedding").to(device)
        params = list(model.parameters())
        zeros = torch.zeros(1, batch, hidden, device=device)
        state = (zeros, zeros.clone()) if cell == "lstm" else zeros
        forward = lambda s: model(inputs, s)
        detach = lambda s: tuple(t.detach() for t in s) if isinstance(s, tuple) else s.detach()

    def step(state):
        y, state = forward(state)
        loss = F.cross_entropy(y, targets)
        for p in params:
            p.grad = None
        loss.backward()
        clip(params)
        with torch.no_grad():
            for p in params:
                p -= 1.0 * p.grad
        if device == "cpu":
            loss.item()
        return detach(state)

    state = step(step(state))
    if device == "cuda":
        torch.cuda.synchronize()
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds or count < 3:
            state = step(state)
            count += 1
            if count % 10 == 0:
                torch.cuda.synchronize()
        torch.cuda.synchronize()
        return {"tokensPerSecond": count * batch * steps / (time.perf_counter() - started)}
    times, cpu, started = [], [], time.perf_counter()
    while time.perf_counter() - started < seconds or len(times) < 3:
        before, cpu_before = time.perf_counter(), time.process_time()
        state = step(state)
        times.append(time.perf_counter() - before)
        cpu.append(time.process_time() - cpu_before)
    times.sort()
    cpu.sort()
    tokens = batch * steps
    return {"tokensPerSecond": tokens / times[0], "medianTokensPerSecond": tokens / times[len(times) // 2],
            "cpuMsPerStep": 1000 * cpu[len(cpu) // 2], "measuredSteps": len(times)}


def main():
    request = json.loads(sys.argv[1])
    # Tiny gradients go denormal, which costs x86 about 40% here; flushing them is PyTorch's fast setting.
    torch.set_flush_denormal(True)
    device = request.get("device", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("CUDA is not available to this PyTorch")
    results = []
    for threads in sorted({1, os.cpu_count() or 1}) if device == "cpu" else [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        for setting in request["settings"]:
            for variant in request.get("variants", ["scratch", "nn"]):
                results.append({**setting, "variant": variant, "threads": threads, **time_variant(setting, variant, request["seconds"], device)})
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(json.dumps({"version": torch.__version__, "device": name, "blas": blas(), "results": results}))


def blas():
    """Which BLAS torch's matmuls reach (Debian's torch links the system libblas.so.3 alternative)."""
    try:
        with open("/proc/self/maps") as maps:
            names = {line.split()[-1] for line in maps if "blas" in line}
        return ", ".join(sorted(os.path.basename(n) for n in names)) or "unknown"
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
