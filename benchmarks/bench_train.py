"""One SGD training step of a 784-256-256-10 MLP (batch 64, float32): forward, backward
and update. Interleaved in the same process, at 1 and 2 threads:

- eager: lucid without compile (``loss.backward(); opt.step()``);
- compiled loss: ``lucid.compile`` of the loss only; backward and ``opt.step()`` outside;
- compiled step: ``lucid.compile`` of the whole step (``opt.zero_grad()``, loss,
  ``loss.backward()``, ``opt.step()`` inside): one graph, one native run;
- numpy written by hand, and PyTorch eager if it is installed.

    python benchmarks/bench_train.py [--quick]

Also prints the Python overhead of a compiled step: the call minus the time of its
kernels (its plan run alone on the same arrays: one native run, see
lucid_codegen/runtime/native_plan.py); and the step's matrix products alone, the floor under
any compiled step.
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

    eager_model, compiled_model, step_model = make(), make(), make()
    eager_opt = lucid.optim.SGD(eager_model.parameters(), lr=LR)
    compiled_opt = lucid.optim.SGD(compiled_model.parameters(), lr=LR)
    step_opt = lucid.optim.SGD(step_model.parameters(), lr=LR)
    x = lucid.Tensor(x_np)
    loss_fn = lucid.compile(lambda x, y: F.cross_entropy(compiled_model(x), y))

    @lucid.compile
    def train_step(x, y):
        step_opt.zero_grad()
        loss = F.cross_entropy(step_model(x), y)
        loss.backward()
        step_opt.step()
        return loss

    def eager():
        eager_opt.zero_grad()
        F.cross_entropy(eager_model(x), y_np).backward()
        eager_opt.step()

    def compiled():
        compiled_opt.zero_grad()
        loss_fn(x, y_np).backward()
        compiled_opt.step()

    def step():
        train_step(x, y_np)

    params = [(l.weight.numpy().copy(), l.bias.numpy().copy()) for l in make() if isinstance(l, nn.Linear)]
    fns = {"eager": eager, "compiled": compiled, "step": step, "numpy": lambda: numpy_step(params, x_np, y_np)}
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

    # Python overhead of the compiled step: its plan's kernels alone, on the same arrays
    program = next(iter(train_step._programs.values()))
    arrays = [t._data for t in [x, lucid.Tensor(y_np)] + program.captured]
    for source in program.scalar_sources:
        arrays += source.arrays()
    plan = program.run_forward
    gemms, gemm_arrays = gemm_floor(np)
    gemms(gemm_arrays), gemms(gemm_arrays)  # its native program
    parts = interleaved({"call": step, "kernels": lambda: plan(arrays),
                         "gemms": lambda: gemms(gemm_arrays)}, reps, inner=10)
    return dict(threads=threads, times=times, call=parts["call"], kernels=parts["kernels"],
                gemms=parts["gemms"])


def gemm_floor(np):
    """The step's eight matrix products alone (forward: X·W1ᵀ, H1·W2ᵀ, H2·W3ᵀ; backward:
    dZ·W3, dZᵀ·H2, G2·W2, G2ᵀ·H1, G1ᵀ·X; 77.6 MFLOP), as one compiled plan without
    epilogues: no compiled step can take less time than this."""
    from lucid.compiler import compile_graph
    from lucid_ir.builder import GraphBuilder
    b = GraphBuilder()
    (n0, n1, n2, n3), m = SIZES, BATCH
    x, w1, h1, w2 = b.input((m, n0)), b.input((n1, n0)), b.input((m, n1)), b.input((n2, n1))
    h2, w3, dz, g2, g1 = b.input((m, n2)), b.input((n3, n2)), b.input((m, n3)), b.input((m, n2)), b.input((m, n1))
    mm = lambda a, c, **t: b.emit("matmul", a, c, **t)
    graph = b.build([mm(x, w1, trans_b=True), mm(h1, w2, trans_b=True), mm(h2, w3, trans_b=True),
                     mm(dz, w3), mm(dz, h2, trans_a=True), mm(g2, w2), mm(g2, h1, trans_a=True),
                     mm(g1, x, trans_a=True)])
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs]
    return compile_graph(graph, "gemm floor").executable, arrays


def main() -> None:
    results = results_per_thread_count(__doc__, __file__, worker)
    if results is None:
        return
    rows = []
    for res in results:
        t = res["times"]
        us = lambda v: f"{v * 1e6:.0f}"
        ratio = lambda name: f"{t[name] / t['step']:.2f}" if name in t else "-"
        rows.append([res["threads"], us(t["eager"]), us(t["compiled"]), us(t["step"]), us(t["numpy"]),
                     us(t.get("torch", float("nan"))), ratio("eager"), ratio("compiled"), ratio("numpy"),
                     ratio("torch"), us(res["call"]), us(res["kernels"]), us(res["call"] - res["kernels"]),
                     us(res["gemms"]), f"{t['eager'] / res['gemms']:.2f}"])
    print(f"one SGD step, MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32 (median µs; "
          "ratios = other / compiled step, > 1: the compiled step is faster)")
    print_table(["threads", "eager us", "comp. loss us", "comp. step us", "numpy us", "torch us",
                 "eager/step", "loss/step", "numpy/step", "torch/step", "call us", "kernels us",
                 "overhead us", "GEMMs us", "eager/GEMMs"], rows)
    print("comp. loss = lucid.compile of the loss, backward and opt.step() outside; comp. step = "
          "lucid.compile of the whole step; call = one compiled step; kernels = its plan run alone "
          "on the same arrays; overhead = call - kernels (guards, scalars, write-back, tensors); "
          "GEMMs = the step's eight matrix products alone (77.6 MFLOP), so eager/GEMMs is the most "
          "that any compiled step could reach against eager")


if __name__ == "__main__":
    main()
