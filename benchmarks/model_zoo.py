"""The workloads of bench_models.py, written once in PyTorch's API and built for lucid or
for PyTorch: ``lib`` is the ``lucid`` or the ``torch`` module, used through the names the
two share (``lib.nn``, ``lib.nn.functional``, ``lib.optim``, ``lib.compile``, ...).

- ``gpt``: the model of examples/train_char_gpt.py, that file's own source loaded with its
  three marked imports pointing at lucid or at PyTorch (``load_example``, as
  tests/test_examples.py does); batch 16, cross-entropy, AdamW, clipping at 1.0;
- ``cnn``: conv-BN-ReLU-pool-conv-ReLU-global pool-linear on 8×8 inputs, batch 64,
  cross-entropy with label smoothing, SGD with Nesterov momentum;
- ``attn256`` / ``attn1024``: causal ``scaled_dot_product_attention`` forward and
  backward alone, batch 4, 8 heads, head dim 64, sequence 256 or 1024.

Every library starts from the same numbers: the initial weights are PyTorch's
(``initial_state``, saved once as numpy arrays and loaded by every worker), the inputs
come from fixed numpy seeds (``inputs``).

>>> import numpy as np, lucid
>>> model = cnn(lucid.nn)
>>> model(lucid.tensor(np.zeros((2, 1, 8, 8), np.float32))).shape
(2, 10)
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# the examples' three marked import lines, and what they become under PyTorch
SWAP = [("import lucid as torch ", "import torch "),
        ("import lucid.nn as nn ", "import torch.nn as nn "),
        ("import lucid.nn.functional as F ", "import torch.nn.functional as F ")]

WORKLOADS = ("gpt", "cnn", "attn256", "attn1024")
GPT = dict(vocab=96, context=64, d_model=128, n_head=4, n_layer=2)
GPT_BATCH = 16
ADAMW = dict(lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
CLIP = 1.0
CNN_BATCH, CNN_SIZE, CNN_CLASSES = 64, 8, 10
SGD = dict(lr=0.05, momentum=0.9, nesterov=True)
LABEL_SMOOTHING = 0.1
ATTN_BATCH, ATTN_HEADS, ATTN_HEAD_DIM = 4, 8, 64
ATTN_LENGTH = {"attn256": 256, "attn1024": 1024}

DESCRIPTION = {
    "gpt": "GPT step: CharGPT d_model 128, 4 heads, 2 layers, context 64, batch 16, AdamW, clip 1.0",
    "cnn": "CNN step: conv-BN-ReLU-pool-conv-ReLU-avgpool-linear, 8x8, batch 64, SGD Nesterov",
    "attn256": "causal SDPA forward + backward, 4x8 heads x 256 x 64",
    "attn1024": "causal SDPA forward + backward, 4x8 heads x 1024 x 64",
}


def load_example(name: str, use_torch: bool) -> types.ModuleType:
    """examples/``name``.py as a fresh module, its marked imports swapped to ``torch``
    when ``use_torch``: the same model source, built by either library."""
    path = EXAMPLES / f"{name}.py"
    source = path.read_text()
    if use_torch:
        for a, b in SWAP:
            if a not in source:
                raise RuntimeError(f"{name}: the marked import line {a!r} is gone")
            source = source.replace(a, b)
    module = types.ModuleType(f"{name}_{'torch' if use_torch else 'lucid'}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # torch.compile (dynamo) looks its code's module up there
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def _is_torch(lib) -> bool:
    return lib.__name__ == "torch"


def gpt(lib):
    """examples/train_char_gpt.py's ``CharGPT`` at the benchmark's size, in ``lib``."""
    return load_example("train_char_gpt", _is_torch(lib)).CharGPT(**GPT)


def cnn(nn):
    """The benchmark's CNN from ``nn`` (``lucid.nn`` or ``torch.nn``): 1×8×8 → 10 classes."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, CNN_CLASSES))


def matmul_flops(workload: str) -> float:
    """The floating-point operations of a step's matrix products, forward and backward
    (each product's two gradient products), counted as the model needs them: causal
    attention's score and value products over the L(L+1)/2 pairs it keeps, convolutions as
    their implicit GEMMs; elementwise work, norms and the optimiser are not counted (they
    are memory-bound). The denominator of the roofline in bench_models.py.

    >>> round(matmul_flops("gpt") / 1e9, 3), round(matmul_flops("attn1024") / 1e9, 2)
    (2.594, 12.9)
    """
    def attention(batch_heads, length, head_dim):    # q·kᵀ and p·v, then their 4 gradients
        return 6 * 2 * batch_heads * length * (length + 1) // 2 * head_dim
    if workload in ATTN_LENGTH:
        return float(attention(ATTN_BATCH * ATTN_HEADS, ATTN_LENGTH[workload], ATTN_HEAD_DIM))
    if workload == "gpt":
        attn = attention(GPT_BATCH * GPT["n_head"], GPT["context"], GPT["d_model"] // GPT["n_head"])
        return product_flops(workload) + float(GPT["n_layer"] * attn)
    # cnn: conv 1->16 on 8x8 (no gradient for the input), conv 16->32 on 4x4, linear 32->10
    conv1 = 2 * 2 * CNN_BATCH * CNN_SIZE ** 2 * 16 * 9
    conv2 = 3 * 2 * CNN_BATCH * (CNN_SIZE // 2) ** 2 * 32 * 16 * 9
    return float(conv1 + conv2 + 3 * 2 * CNN_BATCH * 32 * CNN_CLASSES)


def linear_products(workload: str) -> list:
    """``(tokens, in, out)`` of each linear layer of a step whose dense matrix products are
    listed (``gpt`` only; empty for the others): each layer's three products, forward
    ``x Wᵀ``, input gradient ``g W`` and weight gradient ``gᵀ x``, are GEMMs of the compiled
    step (attention's batched products, inside its fused kernel, are not among them).

    >>> len(linear_products("gpt")), linear_products("gpt")[0]
    (9, (1024, 128, 384))
    """
    if workload != "gpt":
        return []
    d, tokens = GPT["d_model"], GPT_BATCH * GPT["context"]
    block = [(tokens, d, 3 * d), (tokens, d, d), (tokens, d, 4 * d), (tokens, 4 * d, d)]
    return block * GPT["n_layer"] + [(tokens, d, GPT["vocab"])]


def product_flops(workload: str) -> float:
    """The floating-point operations of ``linear_products``: three products of
    ``2 · tokens · in · out`` each per layer.

    >>> round(product_flops("gpt") / 1e9, 3)
    2.491
    """
    return float(sum(3 * 2 * t * i * o for t, i, o in linear_products(workload)))


def build_products(lib, workload: str):
    """``(call, check)`` as ``build_step`` gives them, for the workload's dense products
    alone (``linear_products``) on fixed random operands: lucid's as one ``lucid.compile``d
    function (the GEMM kernels the compiled step runs, without their epilogues), PyTorch's
    as eager calls (its BLAS). ``check`` gives nothing to compare (no loss)."""
    rng = np.random.default_rng(7)
    operands = []
    for tokens, n_in, n_out in linear_products(workload):
        for shape in ((tokens, n_in), (n_out, n_in), (tokens, n_out)):
            operands.append(lib.tensor(rng.standard_normal(shape, dtype=np.float32)))

    def products(*ops):
        out = []
        for k in range(0, len(ops), 3):
            x, w, g = ops[k:k + 3]
            out += [lib.nn.functional.linear(x, w), g @ w, g.t() @ x]
        return out
    fn = lib.compile(products) if not _is_torch(lib) else products
    return lambda: fn(*operands), lambda out: None


def build_model(lib, workload: str):
    return gpt(lib) if workload == "gpt" else cnn(lib.nn)


def inputs(workload: str) -> tuple:
    """The workload's inputs as numpy arrays, the same in every process: (tokens, targets)
    for ``gpt``, (images, labels) for ``cnn``, (q, k, v) of shape (batch, heads, length,
    head dim) for attention."""
    rng = np.random.default_rng(1234)
    if workload == "gpt":
        shape = (GPT_BATCH, GPT["context"])
        return rng.integers(0, GPT["vocab"], shape), rng.integers(0, GPT["vocab"], shape)
    if workload == "cnn":
        return (rng.random((CNN_BATCH, 1, CNN_SIZE, CNN_SIZE), dtype=np.float32),
                rng.integers(0, CNN_CLASSES, CNN_BATCH))
    shape = (ATTN_BATCH, ATTN_HEADS, ATTN_LENGTH[workload], ATTN_HEAD_DIM)
    return tuple(rng.standard_normal(shape, dtype=np.float32) for _ in range(3))


def initial_state(workload: str) -> dict:
    """PyTorch's initial weights (seed 0) of the workload's model as numpy arrays, keyed
    as its ``state_dict``; empty for attention (no weights)."""
    if workload not in ("gpt", "cnn"):
        return {}
    import torch
    torch.manual_seed(0)
    return {k: v.detach().numpy().copy() for k, v in build_model(torch, workload).state_dict().items()}


def build_step(lib, workload: str, state: dict, compiled: bool):
    """``(call, check)``: ``call()`` runs one step of the workload in ``lib`` (the step
    function passed through ``lib.compile`` when ``compiled``) and returns its loss;
    ``check(loss)`` gives the numbers to compare across libraries: the loss, and for
    attention the sums of squares of the gradients of q, k and v."""
    F = lib.nn.functional
    if workload in ATTN_LENGTH:
        q, k, v = (lib.tensor(a, requires_grad=True) for a in inputs(workload))

        def attention_step():
            for t in (q, k, v):
                t.grad = None
            loss = F.scaled_dot_product_attention(q, k, v, is_causal=True).sum()
            loss.backward()
            return loss

        def check(loss):
            return [float(loss.item())] + [float((t.grad.numpy().astype(np.float64) ** 2).sum()) for t in (q, k, v)]
        return _call(lib, attention_step, (), compiled), check

    model = build_model(lib, workload)
    model.load_state_dict({name: lib.tensor(a) for name, a in state.items()})
    model.train()
    x, y = (lib.tensor(a) for a in inputs(workload))
    if workload == "gpt":
        opt = lib.optim.AdamW(model.parameters(), **ADAMW)

        def step(x, y):
            opt.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
            return loss
    else:
        opt = lib.optim.SGD(model.parameters(), **SGD)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y, label_smoothing=LABEL_SMOOTHING)
            loss.backward()
            opt.step()
            return loss
    return _call(lib, step, (x, y), compiled), lambda loss: [float(loss.item())]


def _call(lib, step, args, compiled: bool):
    fn = lib.compile(step) if compiled else step
    return lambda: fn(*args)
