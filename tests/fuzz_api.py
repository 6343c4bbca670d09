"""Differential fuzzer of the user API against PyTorch in float64.

    python tests/fuzz_api.py --seconds 120 [--seed 0]

A seed makes a random program of public lucid calls (``api_ops``: Tensor operators and
methods, ``lucid.where``/``maximum``/``matmul``, ``lucid.nn.functional``, cumsum and
argmax/argmin, of int32 and bool tensors too) ending in a scalar loss, and runs it

* eagerly with ``loss.backward()``, at 1 and at 2 threads;
* under ``lucid.compile`` (traced once), called at 1 thread, at 2, then at 1 on copies
  at other addresses, each call followed by ``backward()``;
* as a training step over the program's inputs, three steps of SGD (with or without
  momentum) or Adam, eagerly and as one compiled step (its parameters and optimiser
  state written in place: donated buffers);

comparing values, input gradients and updated parameters with the same program run by
PyTorch in float64 (``torch.optim`` for the updates). The allowed error is the graph
fuzzer's (``fuzz.compare``), with each element's noise from PyTorch's float32 twin
(``fuzz.twin_noise``). Adam here uses eps >= 1e-3: with eps 1e-8 it turns a gradient that
is zero up to rounding into a full step of either sign (tests/test_optim_trajectories.py checks
the default eps on a well-conditioned model). As a library: ``run_case(seed)`` returns
``(program, None, failures)``; ``fuzz.run_seeds(seeds, case=run_case)`` loops.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import fuzz  # noqa: E402
from api_ops import LucidOps, TorchOps, run  # noqa: E402

DIMS = [1, 1, 2, 3, 3, 4, 5, 7, 8]
MAX_ELEMS = 400
UNARY = ["neg", "tanh", "sigmoid", "relu", "exp_tanh", "log_sq", "sqrt_sq", "f_relu", "f_tanh", "f_sigmoid"]


class ProgramGen:
    """A random program, built while PyTorch (float64) runs it, so every op is chosen
    knowing its operands' shapes. ``inputs`` are float64 arrays (the leaves)."""

    def __init__(self, seed: int):
        import torch
        self.torch = torch
        self.rng = np.random.default_rng(seed)
        self.ops = TorchOps(torch.float64)
        self.inputs: list[np.ndarray] = []
        self.values: list = []
        self.program: list = []

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def shape(self, rank=None):
        rank = int(self.rng.integers(1, 4)) if rank is None else rank
        for _ in range(20):
            s = tuple(self.pick(DIMS) for _ in range(rank))
            if int(np.prod(s)) <= MAX_ELEMS:
                return s
        return (2,) * rank

    def new_input(self, shape) -> int:
        a = self.rng.standard_normal(shape)
        self.inputs.append(a)
        self.values.append(self.torch.tensor(a))
        self.program.append(("input", (), {"index": len(self.inputs) - 1}))
        return len(self.values) - 1

    def emit(self, op, args, **attrs) -> int:
        out = getattr(self.ops, op)(*[self.values[i] for i in args], **attrs)
        self.values.append(out)
        self.program.append((op, tuple(args), attrs))
        return len(self.values) - 1

    def partner(self, shape) -> int:
        """A new input that broadcasts against ``shape`` (some dims 1 or dropped)."""
        s = [1 if self.rng.random() < 0.3 else d for d in shape]
        drop = int(self.rng.integers(0, len(s) + 1)) if self.rng.random() < 0.4 else 0
        return self.new_input(tuple(s[drop:]))

    def axis(self, ndim):
        r = self.rng.random()
        if r < 0.2 or ndim == 0:
            return None
        if r < 0.6:
            return int(self.rng.integers(-ndim, ndim))
        axes = tuple(int(a) for a in np.flatnonzero(self.rng.random(ndim) < 0.5))
        return axes or (0,)

    def step(self) -> int | None:
        rng = self.rng
        k = int(rng.integers(len(self.values)))
        x = self.values[k]
        shape = tuple(x.shape)
        r = rng.random()
        if r < 0.2:
            return self.emit(self.pick(UNARY), (k,))
        if r < 0.42:
            op = self.pick(["add", "sub", "mul", "div_pos", "maximum"])
            c = rng.random()
            if c < 0.3 or op == "maximum" and c < 0.8:  # maximum: no ties with a fresh input
                return self.emit(op, (k, self.partner(shape)) if rng.random() < 0.5 or op == "maximum"
                                 else (k, self.new_input(shape)))
            if c < 0.55:
                scalar = float(np.round(rng.standard_normal(), 2))
                if op == "div_pos":
                    return self.emit(op, (k,), scalar=abs(scalar) + 0.5, reverse=bool(rng.random() < 0.5))
                if op == "maximum":
                    return self.emit(op, (k,), scalar=scalar)
                return self.emit(op, (k,), scalar=scalar, reverse=bool(rng.random() < 0.5))
            same = [i for i, v in enumerate(self.values) if tuple(v.shape) == shape and i != k]
            if not same or op == "maximum":
                return None
            return self.emit(op, (k, self.pick(same)) if rng.random() < 0.5 else (self.pick(same), k))
        if r < 0.5:
            b = self.partner(shape)
            return self.emit(self.pick(["where_gt", "where_le"]), (k, k, b),
                             threshold=float(np.round(rng.standard_normal() * 0.5, 2)))
        if r < 0.62 and shape:
            op = self.pick(["sum", "mean", "max"])
            return self.emit(op, (k,), axis=self.axis(len(shape)), keepdims=bool(rng.random() < 0.4))
        if r < 0.66 and shape:
            return self.movement(k, shape)
        if r < 0.72 and shape:
            return self.shape_op(k, shape)
        if r < 0.77 and shape:
            return self.scan_op(k, shape)
        if r < 0.84 and 1 <= len(shape) <= 3:
            if len(shape) <= 2 and rng.random() < 0.4:
                n = self.pick(DIMS)
                w = self.new_input((shape[-1], n) if rng.random() < 0.7 else (shape[-1],))
                return self.emit(self.pick(["matmul", "lucid_matmul"]), (k, w))
            out = self.pick(DIMS)
            w = self.new_input((out, shape[-1]))
            c = rng.random()
            if c < 0.3:
                return self.emit("linear", (k, w))
            return self.emit("linear", (k, w, self.new_input((out,) if c < 0.7 else (1, out))))
        if r < 0.9 and shape:
            return self.emit(self.pick(["softmax", "log_softmax"]), (k,), axis=int(rng.integers(-len(shape), len(shape))))
        if r < 0.96 and len(shape) == 2:
            n, c = shape
            red = self.pick(["mean", "sum", "none"])
            if rng.random() < 0.5:
                target = rng.integers(0, c, n)
                return self.emit("cross_entropy", (k,), target=target, reduction=red)
            return self.emit("cross_entropy_probs", (k, self.new_input(shape)), reduction=red)
        if r < 0.98 and shape:
            return self.emit("mse_loss", (k, self.new_input(shape)), reduction=self.pick(["mean", "sum", "none"]))
        if shape and self.program[k][0] != "input":
            # (detaching a parameter inside a compiled step is a known bug: see
            # test_compile_step.py::test_a_compiled_step_may_detach_a_parameter)
            return self.emit("detach", (k,))
        return None

    def movement(self, k, shape):
        rng = self.rng
        c = rng.random()
        nd = len(shape)
        if c < 0.4:
            size = int(np.prod(shape))
            new, rest = [], size
            for p in (2, 3, 5, 7):
                while rest % p == 0 and rng.random() < 0.6:
                    new.append(p)
                    rest //= p
            new.append(rest)
            rng.shuffle(new)
            new = new[:3] if len(new) <= 3 else [int(np.prod(new[:-2]))] + new[-2:]
            if rng.random() < 0.3:
                new[int(rng.integers(len(new)))] = -1
            return self.emit("reshape", (k,), shape=tuple(int(d) for d in new))
        if c < 0.55:
            return self.emit("reverse_axes", (k,))
        if c < 0.7 and nd >= 2:
            a, b = (int(v) for v in rng.choice(nd, 2, replace=False))
            return self.emit("swap_axes", (k,), a=a, b=b)
        if c < 0.85:
            return self.emit("permute", (k,), perm=tuple(int(p) for p in rng.permutation(nd)))
        if nd == 2:
            return self.emit("t2", (k,))
        return None

    def shape_op(self, k, shape):
        """The newer shape ops, indexing and per-row functions (gelu, layer_norm)."""
        rng = self.rng
        nd = len(shape)
        c = int(rng.integers(13))
        ax = int(rng.integers(-nd, nd))
        if c == 0:
            return self.emit("flip", (k,), dims=(ax,))
        if c == 1:
            return self.emit("roll", (k,), shifts=int(rng.integers(-3, 4)), dims=ax)
        if c == 2 and nd >= 2:
            return self.emit("tril", (k,), diagonal=int(rng.integers(-1, 2)))
        if c == 3:
            return self.emit("movedim", (k,), src=ax, dst=int(rng.integers(-nd, nd)))
        if c == 4 and nd <= 2:
            return self.emit("repeat", (k,), reps=tuple(int(v) for v in rng.integers(1, 3, nd)))
        if c == 5:
            return self.emit("gelu", (k,))
        if c == 6:
            n = int(rng.integers(1, nd + 1))
            w, b = self.new_input(shape[-n:]), self.new_input(shape[-n:])
            return self.emit("layer_norm", (k, w, b), n=n)
        if c == 7:
            return self.emit("index_steps", (k,), start=int(rng.integers(0, 2)), step=int(rng.integers(1, 4)))
        if c == 8 and nd >= 2:
            return self.emit("index_int", (k,), i=int(rng.integers(-shape[0], shape[0])))
        if c == 9:
            return self.emit("index_take", (k,), idx=rng.integers(-shape[0], shape[0], int(rng.integers(1, 5))))
        if c == 10:
            return self.emit("mask_fill", (k,), threshold=float(np.round(rng.standard_normal() * 0.5, 2)),
                             value=float(np.round(rng.standard_normal(), 2)))
        if c == 11:  # distinct rows: repeated rows in an assignment have no defined winner
            idx = rng.permutation(shape[0])[:int(rng.integers(1, shape[0] + 1))]
            return self.emit("setitem", (k, self.new_input(shape[1:])), idx=idx)
        if c == 12 and shape[0] >= 2:
            return self.emit("shift_add", (k,), shift=int(rng.integers(1, shape[0])), step=int(rng.integers(1, 3)))
        return None

    def scan_op(self, k, shape):
        """cumsum (with its gradient); argmax/argmin and counts only of inputs, whose
        values lucid and PyTorch hold alike (no rounding can reorder them)."""
        rng = self.rng
        c = rng.random()
        if c < 0.4:
            return self.emit("cumsum", (k,), dim=int(rng.integers(-len(shape), len(shape))))
        k = self.pick([i for i, (op, _, _) in enumerate(self.program) if op == "input"])
        shape = tuple(self.values[k].shape)
        ax = int(rng.integers(-len(shape), len(shape)))
        threshold = float(np.round(rng.standard_normal() * 0.5, 2))
        which = self.pick(["argmax", "argmin"])
        if c < 0.75:
            return self.emit("arg_float", (k,), which=which, dim=self.pick([ax, None]),
                             keepdim=bool(rng.random() < 0.5))
        if c < 0.9:
            return self.emit("count_cumsum", (k,), dim=ax, threshold=threshold)
        return self.emit("arg_int", (k,), which=which, dim=ax, threshold=threshold)

    def build(self):
        for _ in range(int(self.rng.integers(1, 3))):
            self.new_input(self.shape())
        made = []
        n_ops = int(self.rng.integers(1, 10))
        for _ in range(4 * n_ops + 8):
            if len(made) >= n_ops:
                break
            try:
                v = self.step()
            except (RuntimeError, ValueError, IndexError):  # torch refused the combination
                continue
            if v is not None:
                made.append(v)
        candidates = made or [0]
        # the first input is always an output too, so the loss has a gradient even
        # when the last op only saw detached values
        chosen = sorted({0, candidates[-1]} | {self.pick(candidates) for _ in range(int(self.rng.integers(0, 3)))})
        self.weights = [self.rng.standard_normal(tuple(self.values[i].shape)) for i in chosen]
        self.outputs = chosen
        return self


# --------------------------------------------------------------------- running
def program_fn(gen, ops):
    """``fn(*inputs) -> (loss, *outputs)`` of the seed's program with ``ops``."""
    def fn(*xs):
        values = run(gen.program, ops, xs)
        outs = [values[i] for i in gen.outputs]
        loss = None
        for o, w in zip(outs, gen.weights):
            term = ops.weighted_sum(o, w)
            loss = term if loss is None else loss + term
        return (loss, *outs)
    return fn


def torch_run(gen, dtype):
    """PyTorch's values and input gradients, in ``dtype``: ([loss, *outs], grads)."""
    import torch
    xs = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in gen.inputs]
    outs = program_fn(gen, TorchOps(dtype))(*xs)
    outs[0].backward()
    grads = [np.zeros(a.shape) if x.grad is None else x.grad.double().numpy() for x, a in zip(xs, gen.inputs)]
    return [o.detach().double().numpy() for o in outs], grads


def check(what, got, want64, want_other, dtype, failures):
    """``got`` (lucid, in ``dtype``) against PyTorch's float64 ``want64``; the noise
    comes from PyTorch's result in the other precision."""
    got = np.asarray(got, np.float64)
    if dtype == "float32":
        noise = fuzz.twin_noise(want_other, want64, "float32")
    else:
        noise = fuzz.twin_noise(want64, want_other, "float64")
    msg = fuzz.compare(got, np.asarray(want64, np.float64), noise, dtype, what)
    if msg:
        failures.append(msg)


def check_all(what, values, grads, ref, dtype, failures):
    (v64, g64), (v32, g32) = ref
    other_v, other_g = (v32, g32)
    for i, (got, w, o) in enumerate(zip(values, v64, other_v)):
        check(f"{what}: {'loss' if i == 0 else f'output {i - 1}'}", got, w, o, dtype, failures)
    for i, (got, w, o) in enumerate(zip(grads, g64, other_g)):
        check(f"{what}: gradient of input {i}", got, w, o, dtype, failures)


def lucid_inputs(gen, dtype):
    import lucid
    return [lucid.Tensor(a.astype(dtype), requires_grad=True) for a in gen.inputs]


def lucid_grads(xs):
    return [np.zeros(x.shape) if x.grad is None else np.asarray(x.grad) for x in xs]


@contextlib.contextmanager
def num_threads(n):
    from lucid_codegen.runtime import threads
    old = threads.get_num_threads()
    threads.set_num_threads(n)
    try:
        yield
    finally:
        threads.set_num_threads(old)


def run_case(seed: int):
    """Fuzz one seed of the user API; ``(program, None, failures)``."""
    failures: list[str] = []
    try:
        gen = ProgramGen(seed).build()
    except Exception as e:  # noqa: BLE001
        return None, None, [f"generator raised {type(e).__name__}: {e}"]
    import torch
    ref = (torch_run(gen, torch.float64), torch_run(gen, torch.float32))
    dtype = "float32" if np.random.default_rng(seed + 7).random() < 0.5 else "float64"
    with fuzz.low_thread_thresholds(native=seed % 2 == 0):
        for what, fn in (("eager", eager), ("compiled", compiled), ("training", training)):
            try:
                with np.errstate(all="ignore"):
                    fn(gen, dtype, ref, seed, failures)
            except Exception as e:  # noqa: BLE001
                failures.append(f"{what} ({dtype}) raised {type(e).__name__}: {e}\n"
                                + traceback.format_exc(limit=8))
    if failures:
        failures.append(f"program ({dtype}): {gen.program}, outputs {gen.outputs}, "
                        f"input shapes {[a.shape for a in gen.inputs]}")
    return gen.program, None, failures


def eager(gen, dtype, ref, seed, failures):
    fn = program_fn(gen, LucidOps(dtype))
    for n in (1, 2):
        with num_threads(n):
            xs = lucid_inputs(gen, dtype)
            outs = fn(*xs)
            outs[0].backward()
        check_all(f"eager {dtype} threads={n}", [o.numpy() for o in outs], lucid_grads(xs), ref, dtype, failures)


def compiled(gen, dtype, ref, seed, failures):
    import lucid
    f = lucid.compile(program_fn(gen, LucidOps(dtype)))
    for call, n in enumerate((1, 2, 1)):
        with num_threads(n):
            xs = lucid_inputs(gen, dtype)
            if call == 2:  # the same values at other addresses (and another layout)
                xs = [lucid.Tensor(np.asfortranarray(x.numpy()) if x.ndim >= 2 else x.numpy().copy(),
                                   requires_grad=True) for x in xs]
            outs = f(*xs)
            outs[0].backward()
        check_all(f"compiled {dtype} call {call} threads={n}", [o.numpy() for o in outs],
                  lucid_grads(xs), ref, dtype, failures)
    if f.traces != 1:
        failures.append(f"compiled: traced {f.traces} times for one signature")


def optimiser(rng):
    """(lucid/torch class name, keyword arguments) of a random update rule."""
    lr = float(rng.choice([0.01, 0.05, 0.1]))
    wd = float(rng.choice([0.0, 0.0, 0.02]))
    c = rng.random()
    if c < 0.3:
        return "SGD", dict(lr=lr, weight_decay=wd)
    if c < 0.65:
        nesterov = bool(rng.random() < 0.3)
        damp = 0.0 if nesterov else float(rng.choice([0.0, 0.2]))
        return "SGD", dict(lr=lr, momentum=float(rng.choice([0.5, 0.9])), dampening=damp,
                           nesterov=nesterov, weight_decay=wd)
    return "Adam", dict(lr=lr * 0.2, betas=(float(rng.choice([0.8, 0.9])), float(rng.choice([0.9, 0.999]))),
                        eps=float(rng.choice([1e-3, 1e-2])), weight_decay=wd)


STEPS = 3


def torch_training(gen, name, kw, dtype):
    import torch
    xs = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in gen.inputs]
    opt = getattr(torch.optim, name)(xs, **kw)
    fn = program_fn(gen, TorchOps(dtype))
    out = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = fn(*xs)[0]
        loss.backward()
        opt.step()
        out.append([loss.item()] + [x.detach().double().numpy().copy() for x in xs])
    return out


def training(gen, dtype, ref, seed, failures):
    import lucid
    import torch
    name, kw = optimiser(np.random.default_rng(seed + 11))
    want64 = torch_training(gen, name, kw, torch.float64)
    want32 = torch_training(gen, name, kw, torch.float32)
    fn = program_fn(gen, LucidOps(dtype))
    with num_threads(1 + seed % 2):
        for mode in ("eager", "compiled"):
            xs = lucid_inputs(gen, dtype)
            arrays = [x.numpy() for x in xs]
            opt = getattr(lucid.optim, name)(xs, **kw)

            def step():
                opt.zero_grad()
                loss = fn(*xs)[0]
                loss.backward()
                opt.step()
                return loss
            run_step = lucid.compile(step) if mode == "compiled" else step
            for k in range(STEPS):
                loss = run_step()
                got = [np.asarray(loss.numpy())] + [x.numpy() for x in xs]
                for i, (g, w, o) in enumerate(zip(got, want64[k], want32[k])):
                    what = "loss" if i == 0 else f"parameter {i - 1}"
                    check(f"training {mode} {dtype} {name}{kw} step {k}: {what}", g,
                          np.asarray(w), np.asarray(o), dtype, failures)
            if any(x.numpy() is not a for x, a in zip(xs, arrays)):
                failures.append(f"training {mode}: parameters were not updated in place")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--seed", type=int, default=None, help="first seed (default: from the clock)")
    p.add_argument("--case", type=int, help="run one seed and print its program and failures")
    args = p.parse_args(argv)
    if args.case is not None:
        program, _, failures = run_case(args.case)
        print(program)
        print("\n".join(failures) or "ok")
        return 1 if failures else 0
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000 * 1000
    print(f"fuzzing the user API from seed {seed} for {args.seconds:g} s")
    found = fuzz.fuzz(args.seconds, None, seed, case=run_case)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
