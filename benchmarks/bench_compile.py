"""Compile latency (issue 17), measured as a new user meets it: every figure comes from a
fresh Python process (``.pyc`` files present), 1 thread, with an empty kernel cache
(``cold``) or one filled by an earlier process (``warm``).

    python benchmarks/bench_compile.py [--quick] [--rows mlp,tiny,...] [--no-peers]
                                       [--compile-threads N] [--breakdown]

Rows (seconds unless marked; median over fresh processes):

* ``mlp cold``: first call of a compiled MLP training step (784-256-256-10, batch 64,
  cross-entropy, SGD; ``opt.zero_grad()``, loss, ``backward()``, ``opt.step()`` in one
  ``compile``), empty cache; target 0.5 s;
* ``mlp warm``: ``import lucid``, the model built and the first compiled step, cache
  filled; target 50 ms;
* ``tiny``: per-call cost (µs) of ``compile(lambda x, w, b: relu(linear(x, w, b)))`` on
  8x8, cache filled; target 3 µs;
* ``linear cold``: first eager ``F.linear`` 64x784 -> 256, empty cache; target 0.15 s;
* ``gpt cold`` / ``gpt warm``, ``cnn cold`` / ``cnn warm``: first call of the compiled
  GPT and CNN steps of benchmarks/model_zoo.py; target for the GPT's cold compile 2 s.

Peers, in the same kind of process: ``torch.compile`` (inductor, its cache directory
empty or filled the same way) and ``jax.jit`` (its persistent cache empty or filled)
when installed; ``ratio`` = peer / lucid (> 1: lucid is faster). ``--compile-threads N``
sets ``LUCID_COMPILE_THREADS`` (threads compiling LLVM modules) in lucid's processes.

Each measuring process prints one JSON line: the timed figure (``seconds``) and what the
timed code computed (``check``: the first losses, the outputs' sums), which
tests/test_bench_compile.py compares across libraries; lucid's also lists the modules its
kernel cache compiled during the timed call (``modules``: kernel family, LLVM pipeline,
seconds its compilation took; for the timed calls of the probes that time one call).

``--breakdown`` adds, for each cold row, what limits it: one more fresh process compiling
on one thread (``LUCID_COMPILE_THREADS=1``, so each module's time is its own, not shared
with another compiling thread), its first call's time split into LLVM per kernel family
(GEMM kernels and their cores; loop kernels: elementwise, reduction, row and index
kernels; other: runtime support modules) and everything else (tracing, passes, Python
building the IR is inside each module's figure), with the longest module: with N compile
threads, the first call takes at least max(longest module, LLVM / N) + the rest.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZES = (784, 256, 256, 10)
BATCH = 64
LR = 0.01

# row -> (probe, cache state, unit, target in the unit or None)
ROWS = {
    "mlp cold": ("mlp", "cold", "s", 0.5),
    "mlp warm": ("mlp_start", "warm", "ms", 50.0),
    "tiny": ("tiny", "warm", "us", 3.0),
    "linear cold": ("linear", "cold", "s", 0.15),
    "gpt cold": ("gpt", "cold", "s", 2.0),
    "gpt warm": ("gpt", "warm", "s", None),
    "cnn cold": ("cnn", "cold", "s", None),
    "cnn warm": ("cnn", "warm", "s", None),
}
SCALE = {"s": 1.0, "ms": 1e3, "us": 1e6}
#: kernel family (the cache's ``kind``) -> group of the --breakdown table
GROUPS = {"gemm": "gemm", "elementwise": "loops", "reduction": "loops", "rows": "loops", "index": "loops"}
PEERS = ("torch", "jax")
PACKAGES = ("lucid", "lucid_ir", "lucid_codegen")


# ---------------------------------------------------------------- the measuring processes

def _mlp_data():
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    weights = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / a ** 0.5
        weights.append((rng.uniform(-bound, bound, (b, a)).astype(np.float32),
                        rng.uniform(-bound, bound, b).astype(np.float32)))
    return x, y, weights


def _torch_like_mlp_step(lib, compile_fn):
    """The MLP step in lucid's or PyTorch's API (the same names), with fixed weights:
    ``(step, x, y)``; ``step(x, y)`` returns the loss."""
    nn, F = lib.nn, lib.nn.functional
    x_np, y_np, weights = _mlp_data()
    layers = []
    for i, (w, b) in enumerate(weights):
        lin = nn.Linear(w.shape[1], w.shape[0])
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(w))
            lin.bias.copy_(lib.tensor(b))
        layers += [lin] + ([nn.ReLU()] if i < len(weights) - 1 else [])
    model = nn.Sequential(*layers)
    opt = lib.optim.SGD(model.parameters(), lr=LR)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return compile_fn(step), lib.tensor(x_np), lib.tensor(y_np)


def _jax_mlp_step():
    import jax
    import jax.numpy as jnp
    x_np, y_np, weights = _mlp_data()

    def loss_fn(params, x, y):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w.T + b
            if i < len(params) - 1:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.take_along_axis(logp, y[:, None], axis=1).mean()

    @jax.jit
    def step(params, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, params, grads), loss

    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights]
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    return lambda: float(step(params, x, y)[1])


_WINDOW: list = []  # wall-clock times (time.time) at the start and end of the timed call


def _timed(fn):
    _WINDOW[:] = [time.time()]
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    _WINDOW.append(time.time())
    return seconds, out


def probe(name: str, lib: str) -> dict:
    """Run one measurement in this (fresh) process: ``{"seconds": ..., "check": [...]}``,
    and for lucid ``"modules"``: ``[kind, pipeline, compile seconds]`` of each module the
    kernel cache holds afterwards."""
    result = _probe(name, lib)
    if lib == "lucid":
        from lucid_codegen.jit import cache
        metas = [cache.entry_metadata(e.name) or {} for e in cache.list_entries()]
        metas = [m for m in metas if m.get("kind") != "bundle"]  # (a plan's kernels again, in one file)
        if len(_WINDOW) == 2:  # only what the timed call compiled (not the check's next call)
            metas = [m for m in metas if _WINDOW[0] <= m.get("created", 0.0) <= _WINDOW[1]]
        result["modules"] = [[m.get("kind", "other"), m.get("opt", "?"), m.get("compile_seconds", 0.0)]
                             for m in metas]
    return result


def _probe(name: str, lib: str) -> dict:
    sys.path.insert(0, ROOT)
    sys.path.insert(0, HERE)
    if name == "mlp_start":
        start = time.perf_counter()
        if lib == "jax":
            call = _jax_mlp_step()
            first = call()
        else:
            mod = __import__(lib)
            fn, x, y = _torch_like_mlp_step(mod, mod.compile)
            first = float(fn(x, y).item())
        return {"seconds": time.perf_counter() - start, "check": [first]}
    if name == "mlp":
        if lib == "jax":
            call = _jax_mlp_step()
            seconds, first = _timed(call)
            return {"seconds": seconds, "check": [first, call()]}
        mod = __import__(lib)
        fn, x, y = _torch_like_mlp_step(mod, mod.compile)
        seconds, loss = _timed(lambda: float(fn(x, y).item()))
        return {"seconds": seconds, "check": [loss, float(fn(x, y).item())]}
    if name == "tiny":
        return _tiny(lib)
    if name == "linear":
        return _linear(lib)
    if name in ("gpt", "cnn"):
        import model_zoo as zoo
        state = zoo.initial_state(name)
        if lib == "jax":
            import jax_models
            call, check = jax_models.build_step(name, state)
        else:
            call, check = zoo.build_step(__import__(lib), name, state, compiled=True)
        seconds, loss = _timed(call)
        return {"seconds": seconds, "check": check(loss) + check(call())}
    raise ValueError(f"no probe {name!r}")


def _tiny(lib: str) -> dict:
    import numpy as np
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((8, 8), (8, 8), (8,)))
    if lib == "jax":
        import jax
        import jax.numpy as jnp
        f = jax.jit(lambda x, w, b: jax.nn.relu(x @ w.T + b))
        args = [jnp.asarray(a) for a in (x, w, b)]
        call = lambda: f(*args).block_until_ready()
        out = np.asarray(call())
    else:
        mod = __import__(lib)
        F = mod.nn.functional
        f = mod.compile(lambda x, w, b: F.relu(F.linear(x, w, b)))
        args = [mod.tensor(a) for a in (x, w, b)]
        call = lambda: f(*args)
        out = call().numpy()
    for _ in range(200):
        call()
    per_call = []
    for _ in range(15):
        start = time.perf_counter()
        for _ in range(500):
            call()
        per_call.append((time.perf_counter() - start) / 500)
    return {"seconds": sorted(per_call)[len(per_call) // 2], "check": [float(out.sum())]}


def _linear(lib: str) -> dict:
    import numpy as np
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((64, 784), (256, 784), (256,)))
    if lib == "jax":
        import jax
        import jax.numpy as jnp
        args = [jnp.asarray(a) for a in (x, w, b)]
        seconds, out = _timed(lambda: np.asarray(args[0] @ args[1].T + args[2]))
    else:
        mod = __import__(lib)
        args = [mod.tensor(a) for a in (x, w, b)]
        seconds, out = _timed(lambda: mod.nn.functional.linear(*args).numpy())
    return {"seconds": seconds, "check": [float(out.astype(np.float64).sum())]}


# ---------------------------------------------------------------- the driver

def _env(lib: str, cache: str, compile_threads: int | None) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               LUCID_NUM_THREADS="1", PYTHONPATH=ROOT)
    env.pop("LUCID_DEBUG", None)
    if lib == "lucid":
        env["LUCID_CACHE_DIR"] = cache
        if compile_threads is not None:
            env["LUCID_COMPILE_THREADS"] = str(compile_threads)
    elif lib == "torch":
        env["TORCHINDUCTOR_CACHE_DIR"] = cache
        env["TRITON_CACHE_DIR"] = os.path.join(cache, "triton")
    else:
        env["JAX_COMPILATION_CACHE_DIR"] = cache
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
        env["JAX_PLATFORMS"] = "cpu"
    return env


def run_probe(name: str, lib: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe", name, "--lib", lib],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"bench_compile: probe {name} of {lib} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(row: str, lib: str, reps: int, compile_threads: int | None = None) -> dict:
    """The row's figure for ``lib``: median seconds over ``reps`` fresh processes (each
    with its own empty cache when the row is cold; for a warm row one process fills a
    cache first), and the checks of the last process."""
    probe_name, state, _, _ = ROWS[row]
    seconds, result = [], None
    with tempfile.TemporaryDirectory(prefix=f"bench-compile-{lib}-") as base:
        warm = os.path.join(base, "warm")
        if state == "warm":
            run_probe("mlp" if probe_name == "mlp_start" else probe_name, lib,
                      _env(lib, warm, compile_threads))
        for i in range(reps):
            cache = warm if state == "warm" else os.path.join(base, f"cold{i}")
            result = run_probe(probe_name, lib, _env(lib, cache, compile_threads))
            seconds.append(result["seconds"])
            if state == "cold":
                shutil.rmtree(cache, ignore_errors=True)
    return {"seconds": sorted(seconds)[len(seconds) // 2], "all": seconds, "check": result["check"]}


def breakdown(row: str) -> dict:
    """What the cold ``row``'s first call spends, compiled on one thread in a fresh process
    with an empty cache: ``seconds`` (the call), ``llvm`` (seconds per group of kernel
    families, :data:`GROUPS`), ``modules`` (count per group), ``longest`` (one module's
    most seconds) and ``rest`` (the call minus every module)."""
    probe_name = ROWS[row][0]
    with tempfile.TemporaryDirectory(prefix="bench-compile-breakdown-") as cache:
        result = run_probe(probe_name, "lucid", _env("lucid", cache, 1))
    return summarize(result)


def summarize(result: dict) -> dict:
    """The ``breakdown`` of one probe's result (see there)."""
    llvm, count = {}, {}
    for kind, _, seconds in result.get("modules", []):
        group = GROUPS.get(kind, "other")
        llvm[group] = llvm.get(group, 0.0) + seconds
        count[group] = count.get(group, 0) + 1
    spent = sum(llvm.values())
    return {"seconds": result["seconds"], "llvm": llvm, "modules": count,
            "longest": max((m[2] for m in result.get("modules", [])), default=0.0),
            "rest": max(result["seconds"] - spent, 0.0)}


def breakdown_table(parts: dict) -> list:
    """Printable rows of :func:`breakdown` results (seconds, modules per group)."""
    out = []
    for row, b in parts.items():
        cells = [row, f"{b['seconds']:.3f}"]
        for group in ("gemm", "loops", "other"):
            cells.append(f"{b['llvm'].get(group, 0.0):.3f} ({b['modules'].get(group, 0)})")
        cells += [f"{sum(b['llvm'].values()):.3f}", f"{b['longest']:.3f}", f"{b['rest']:.3f}"]
        out.append(cells)
    return out


def available(lib: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(lib) is not None


def table(results: dict, rows, peers) -> list:
    """Printable rows: figure in the row's unit, target, PASS/MISS, each peer's figure and
    peer / lucid."""
    out = []
    for row in rows:
        _, _, unit, target = ROWS[row]
        lucid_s = results[row]["lucid"]["seconds"]
        fig = lucid_s * SCALE[unit]
        line = [row, unit, f"{fig:.3g}", "-" if target is None else f"{target:g}",
                "-" if target is None else ("PASS" if fig <= target else "MISS")]
        for peer in peers:
            r = results[row].get(peer)
            line += ["-", "-"] if r is None else [f"{r['seconds'] * SCALE[unit]:.3g}", f"{r['seconds'] / lucid_s:.2f}"]
        out.append(line)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one process per figure")
    parser.add_argument("--rows", help="comma-separated rows (default: all): " + ", ".join(ROWS))
    parser.add_argument("--no-peers", action="store_true", help="lucid only")
    parser.add_argument("--compile-threads", type=int, help="LUCID_COMPILE_THREADS for lucid")
    parser.add_argument("--breakdown", action="store_true",
                        help="also split each cold row's first call (one compile thread) into LLVM per kernel family and the rest")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--lib", default="lucid", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe, args.lib)))
        return {}
    rows = [r.strip().replace("_", " ") for r in args.rows.split(",")] if args.rows else list(ROWS)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; rows are {list(ROWS)}")
    peers = [] if args.no_peers else [p for p in PEERS if available(p)]
    reps = 1 if args.quick else 3
    # .pyc present (as after an install): byte-compiled before any timed process, even
    # when PYTHONDONTWRITEBYTECODE is set (the timed processes then read them)
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(os.path.join(ROOT, d) for d in PACKAGES), HERE],
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, check=True)
    for lib in peers:
        subprocess.run([sys.executable, "-c", f"import {lib}"], env=dict(os.environ, PYTHONPATH=ROOT), check=True)
    results = {}
    for row in rows:
        results[row] = {"lucid": measure(row, "lucid", reps, args.compile_threads)}
        for peer in peers:
            # torch.compile's cold GPT / CNN take minutes: one process even in full mode
            results[row][peer] = measure(row, peer, 1 if row.split()[0] in ("gpt", "cnn") else reps)
    load = os.getloadavg()
    print(f"compile latency, fresh processes, 1 thread, median of {reps} process(es) per figure; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          + (f"; LUCID_COMPILE_THREADS={args.compile_threads}" if args.compile_threads else ""))
    headers = ["row", "unit", "lucid", "target", "met"]
    for peer in peers:
        headers += [peer, f"{peer}/lucid"]
    from harness import print_table
    print_table(headers, table(results, rows, peers))
    print("cold: empty cache; warm: cache filled by an earlier process; mlp warm = import + model + "
          "first compiled step; ratio > 1: lucid is faster")
    cold = [row for row in rows if ROWS[row][1] == "cold"]
    if args.breakdown and cold:
        parts = {row: breakdown(row) for row in cold}
        load = os.getloadavg()
        print(f"\nwhere each cold row's first call goes, one compile thread, seconds (modules); "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print_table(["row", "call", "LLVM gemm", "LLVM loops", "LLVM other", "LLVM all", "longest module", "rest"],
                    breakdown_table(parts))
        results["breakdown"] = parts
    return results


if __name__ == "__main__":
    main()
