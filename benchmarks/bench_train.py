"""One SGD training step of a 784-256-256-10 MLP (batch 64, float32): forward, backward
and update. lucid eager, lucid compiled, numpy written by hand, and PyTorch eager if it
is installed, interleaved in the same process, at 1 and 2 threads.

    python benchmarks/bench_train.py [--quick]

Also prints the Python overhead of a compiled call: a compiled call with its backward,
minus the time of its kernels: the forward's and the backward's plans run back to back
on the same arrays (each plan one native run of its kernels, see
lucid_codegen/native_plan.py), in the same order, so caches are in the same state.
"""
from __future__ import annotations


from harness import interleaved, print_table, results_per_thread_count, setup_path

SIZES = (784, 256, 256, 10)
BATCH = 64
LR = 0.01


def numpy_step(params, x, y):
    """Forward, backward and SGD update of the MLP, written by hand with numpy."""
    import numpy as np
    (w1, b1), (w2, b2), (w3, b3) = params
    h1 = np.maximum(x @ w1.T + b1, 0)
    h2 = np.maximum(h1 @ w2.T + b2, 0)
    z = h2 @ w3.T + b3
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y]).mean()
    dz = p
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    dw3, db3 = dz.T @ h2, dz.sum(0)
    dh2 = (dz @ w3) * (h2 > 0)
    dw2, db2 = dh2.T @ h1, dh2.sum(0)
    dh1 = (dh2 @ w2) * (h1 > 0)
    dw1, db1 = dh1.T @ x, dh1.sum(0)
    for (w, b), dw, db in zip(params, (dw1, dw2, dw3), (db1, db2, db3)):
        w -= LR * dw
        b -= LR * db
    return loss


def worker(threads: int, quick: bool) -> dict:
    setup_path()
    import numpy as np

    import lucid
    import lucid.nn as nn
    import lucid.nn.functional as F

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y_np = rng.integers(0, SIZES[-1], BATCH)

    def make():
        lucid.random.seed(0)
        layers = []
        for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(SIZES) - 2 else [])
        return nn.Sequential(*layers)

    eager_model, compiled_model = make(), make()
    eager_opt = lucid.optim.SGD(eager_model.parameters(), lr=LR)
    compiled_opt = lucid.optim.SGD(compiled_model.parameters(), lr=LR)
    x = lucid.Tensor(x_np)
    loss_fn = lucid.compile(lambda x, y: F.cross_entropy(compiled_model(x), y))

    def eager():
        eager_opt.zero_grad()
        F.cross_entropy(eager_model(x), y_np).backward()
        eager_opt.step()

    def compiled():
        compiled_opt.zero_grad()
        loss_fn(x, y_np).backward()
        compiled_opt.step()

    params = [(l.weight.numpy().copy(), l.bias.numpy().copy()) for l in make() if isinstance(l, nn.Linear)]
    fns = {"eager": eager, "compiled": compiled, "numpy": lambda: numpy_step(params, x_np, y_np)}
    try:
        import torch
        torch.set_num_threads(threads)
        tm = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                 torch.nn.ReLU(), torch.nn.Linear(256, 10))
        topt = torch.optim.SGD(tm.parameters(), lr=LR)
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def torch_step():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tm(tx), ty).backward()
            topt.step()
        fns["torch"] = torch_step
    except ImportError:
        pass
    reps = 15 if quick else 41
    times = interleaved(fns, reps, inner=10)

    # Python overhead of the compiled call: its plan's kernels called back to back
    program = next(iter(loss_fn._programs.values()))
    fwd, bwd = program.compiled_forward.executable, program.compiled_backward.executable
    arrays = [x_np, y_np.astype(np.float32)] + [t._data for t in program.captured]
    outs = fwd(arrays)
    record_inputs = [np.ones((), np.float32)] + [
        arrays[i] if kind == "input" else outs[i] for kind, i in program.residual_sources]
    def call():  # the compiled call alone: forward, backward, gradients delivered
        for p in compiled_model.parameters():
            p.grad = None  # as after zero_grad: no accumulation
        loss_fn(x, y_np).backward()
    def kernels():  # the same kernels in the same order, nothing around them
        fwd(arrays)
        bwd(record_inputs)
    parts = interleaved({"call": call, "kernels": kernels}, reps, inner=10)
    return dict(threads=threads, times=times, call=parts["call"], kernels=parts["kernels"])


def main() -> None:
    results = results_per_thread_count(__doc__, __file__, worker)
    if results is None:
        return
    rows = []
    for res in results:
        t = res["times"]
        row = [res["threads"], f"{t['eager'] * 1e6:.0f}", f"{t['compiled'] * 1e6:.0f}", f"{t['numpy'] * 1e6:.0f}",
               f"{t.get('torch', float('nan')) * 1e6:.0f}", f"{t['eager'] / t['compiled']:.2f}",
               f"{t['numpy'] / t['compiled']:.2f}",
               f"{t['torch'] / t['compiled']:.2f}" if "torch" in t else "-",
               f"{res['call'] * 1e6:.0f}", f"{res['kernels'] * 1e6:.0f}",
               f"{(res['call'] - res['kernels']) * 1e6:.0f}"]
        rows.append(row)
    print(f"one SGD step, MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32 (median µs; "
          "ratios = other / compiled, > 1: compiled faster)")
    print_table(["threads", "eager us", "compiled us", "numpy us", "torch us", "eager/comp",
                 "numpy/comp", "torch/comp", "call us", "kernels us", "overhead us"], rows)
    print("call = one compiled call with its backward (no optimiser); kernels = its forward and "
          "backward plans run back to back, natively; overhead = call - kernels (tracing cache, "
          "autograd, tensors)")


if __name__ == "__main__":
    main()
