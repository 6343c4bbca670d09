"""What the examples share: a progress bar (tqdm, from the ``examples`` extra, or a plain
line without it), the loss plot (matplotlib, optional) and rank-aware printing."""
from __future__ import annotations

import sys


def progress(iterable, total: int, desc: str, enabled: bool = True):
    """``tqdm(iterable)`` when tqdm is installed, else the iterable with a plain status line."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return _Plain(iterable, total, desc)
    return tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, leave=False)


class _Plain:
    """A minimal progress line: ``desc: done/total loss=…`` (install tqdm for a bar:
    ``pip install 'lucid[examples]'``)."""

    def __init__(self, iterable, total, desc):
        self.iterable, self.total, self.desc, self.post = iterable, total, desc, ""

    def __iter__(self):
        for i, item in enumerate(self.iterable, 1):
            yield item
            if i % max(1, self.total // 20) == 0 or i == self.total:
                sys.stdout.write(f"\r{self.desc}: {i}/{self.total} {self.post}")
                sys.stdout.flush()
        sys.stdout.write("\n")

    def set_postfix_str(self, text: str) -> None:
        self.post = text


def set_postfix(bar, text: str) -> None:
    if hasattr(bar, "set_postfix_str"):
        bar.set_postfix_str(text)


def save_loss_plot(path: str, curves: dict, title: str) -> str | None:
    """Plot ``{label: [(step, loss), ...]}`` into ``path`` (PNG); None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no loss plot: matplotlib is not installed; pip install 'lucid[examples]')")
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in curves.items():
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
