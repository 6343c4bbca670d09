"""prod / argmax / cumsum along the last axis of a 1000x1000 float32 tensor: lucid
eager against numpy and torch (one thread each, interleaved, medians of 15).

    OPENBLAS_THREAD_TIMEOUT=4 python benchmarks/bench_reductions.py
"""
import time

import numpy as np
import torch

import lucid


def main():
    torch.set_num_threads(1)
    x = np.random.default_rng(0).uniform(0.999, 1.001, (1000, 1000)).astype(np.float32)
    t, tt = lucid.tensor(x), torch.from_numpy(x)
    calls = {"lucid prod(1)": lambda: t.prod(1), "numpy prod(1)": lambda: x.prod(1),
             "torch prod(1)": lambda: tt.prod(1),
             "lucid argmax(1)": lambda: t.argmax(1), "numpy argmax(1)": lambda: x.argmax(1),
             "torch argmax(1)": lambda: tt.argmax(1),
             "lucid cumsum(1)": lambda: t.cumsum(1), "numpy cumsum(1)": lambda: x.cumsum(1),
             "torch cumsum(1)": lambda: tt.cumsum(1)}
    times = {k: [] for k in calls}
    for f in calls.values():
        f()
    for _ in range(15):
        for k, f in calls.items():
            start = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - start)
    print(f"lucid {lucid.backend.backend_name()}, torch 1 thread, 1000x1000 float32, medians of 15")
    for k, v in times.items():
        print(f"{k:18s} {np.median(v) * 1e6:8.0f} us")


if __name__ == "__main__":
    main()
