"""``DistributedDataParallel``: every rank holds the model and computes gradients on its
share of the batch; the gradients are averaged across ranks during ``backward()``.

At construction, rank 0's parameters and buffers are broadcast (so every rank starts
equal) and the model's structure is compared across ranks. Gradients travel in buckets
(``bucket_cap_mb``, 25 MB by default, as in PyTorch): each bucket's non-blocking
all-reduce starts as soon as its last gradient has been accumulated (a post-accumulate
hook on every parameter), and the last bucket's hook waits for all of them, so when
``backward()`` returns every ``.grad`` holds the average over ranks.

Lucid's eager backward computes all gradients in one native program, so buckets overlap
with one another and with the Python work that delivers the gradients, not with the
backward's arithmetic.

Usage, under ``mpiexec -n 2 python train.py``::

    dist.init_process_group("mpi")
    model = DistributedDataParallel(net)
    loss_fn(model(x_shard), y_shard).backward()     # grads averaged over ranks
    opt.step()
"""
from __future__ import annotations

import contextlib

from ... import distributed as dist
from ...distributed.process_group import group as _default_group
from ..module import Module
from .buckets import make_buckets


class DistributedDataParallel(Module):
    """Data parallelism over the ranks of ``lucid.distributed`` (PyTorch's signature;
    ``device_ids``/``output_device`` must be None on a CPU)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb: float | None = None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a lucid.nn.Module, "
                            f"got {type(module).__name__}")
        if device_ids not in (None, [], ["cpu"]) or output_device not in (None, "cpu"):
            raise ValueError("DistributedDataParallel: device_ids and output_device must be None "
                             "for CPU modules")
        group = _default_group() if process_group is None else dist.process_group._group_arg(process_group)
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.require_backward_grad_sync = True
        object.__setattr__(self, "_group", group)
        params = [p for p in module.parameters() if p.requires_grad]
        _check_same_structure(group, module)
        with _no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t, 0)
        cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * 1024 * 1024)
        buckets = make_buckets(params, cap)
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_bucket_of", {id(p): b for b in buckets for p in b.params})
        object.__setattr__(self, "_expect_reduction", False)
        object.__setattr__(self, "_handles", [p.register_post_accumulate_grad_hook(self._grad_ready)
                                              for p in params])

    # -- forward ------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        from ...tracing import current
        tracer = current()
        if tracer is not None:
            return self._traced_forward(tracer, inputs, kwargs)
        if self._expect_reduction:
            pending = [b for b in self._buckets if b.work is None and (b.ready or b.unused)]
            if pending or any(b.work is None and not b.complete for b in self._buckets):
                unready = [name for name, p in self.module.named_parameters()
                           if p.requires_grad and id(p) not in self._bucket_of[id(p)].ready]
                self._reset()
                raise RuntimeError(
                    "DistributedDataParallel: Expected to have finished reduction in the prior "
                    "iteration before starting a new one. Parameters that did not receive a gradient: "
                    f"{unready}. Pass find_unused_parameters=True if the model's forward does not use "
                    "every parameter, and make sure every output takes part in the loss.")
        if self.broadcast_buffers:
            with _no_grad():
                for b in self.module.buffers():
                    dist.broadcast(b, 0)
        out = self.module(*inputs, **kwargs)
        self._reset()
        syncing = self.require_backward_grad_sync and _grad_enabled()
        object.__setattr__(self, "_expect_reduction", syncing)
        if syncing and self.find_unused_parameters:
            self._mark_unused(out)
        return out

    def _traced_forward(self, tracer, inputs, kwargs):
        """Inside ``lucid.compile``: the buffers' broadcast and the gradients' averaging
        are nodes of the traced graph (``broadcast`` before the forward, one
        ``all_reduce`` per bucket after the backward), so they run at every call."""
        if self.broadcast_buffers:
            for b in self.module.buffers():
                tracer.assign(b, tracer.apply("broadcast", [b], {"src": 0}))
        out = self.module(*inputs, **kwargs)
        if self.require_backward_grad_sync and tracer.grad_enabled:
            tracer.after_backward.append(self._traced_reduce)
        return out

    def _traced_reduce(self, tracer) -> None:
        from ...functional_core import cat
        tracer.after_backward.remove(self._traced_reduce)   # once per forward
        for bucket in self._buckets:
            grads = [(p, tracer.read_grad(p)) for p in bucket.params]
            grads = [(p, g) for p, g in grads if g is not None]
            if not grads:
                continue
            flat = cat([g.reshape(-1) for _, g in grads])
            reduced = tracer.apply("all_reduce", [flat], {"reduce": "avg"})
            at = 0
            for p, _ in grads:
                n = p.numel()
                tracer.write_grad(p, reduced[at:at + n].reshape(p.shape))
                at += n

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients locally (no communication) inside this block; the first
        backward after it averages the accumulated gradients."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # -- the reduction --------------------------------------------------------------
    def _grad_ready(self, p) -> None:
        if not self._expect_reduction:
            return
        bucket = self._bucket_of[id(p)]
        bucket.ready.add(id(p))
        if bucket.complete and bucket.work is None:
            bucket.work = self._group.comm.Iallreduce(dist.collectives.mpi().IN_PLACE, bucket.pack())
            if all(b.work is not None for b in self._buckets):
                self._finish()

    def _finish(self) -> None:
        for b in self._buckets:
            self._group.wait(b.work, "DistributedDataParallel gradient all_reduce")
            b.unpack(self._group.size)
            b.reset()
        object.__setattr__(self, "_expect_reduction", False)

    def _reset(self) -> None:
        for b in self._buckets:
            b.reset()

    def _mark_unused(self, out) -> None:
        """Parameters the outputs do not depend on take part with zeros (they get no
        gradient here, and a bucket must not wait for them)."""
        from ...autograd import collect
        from ...pytree import flatten
        reached = set()
        for t in flatten(out)[0]:
            if getattr(t, "requires_grad", False) and getattr(t, "_node", None) is not None:
                reached.update(id(leaf) for leaf in collect(t)[1])
            elif getattr(t, "requires_grad", False):
                reached.add(id(t))
        for b in self._buckets:
            b.unused.update(id(p) for p in b.params if id(p) not in reached)
            if b.complete and not b.ready:
                b.work = self._group.comm.Iallreduce(dist.collectives.mpi().IN_PLACE, b.pack())
        if all(b.work is not None for b in self._buckets):
            self._finish()

    def extra_repr(self) -> str:
        return ""


def _check_same_structure(group, module) -> None:
    """Every rank must hold the same parameters and buffers (names, shapes, dtypes)."""
    mine = [(n, tuple(t.shape), str(t.dtype)) for n, t in module.named_parameters()]
    mine += [(n, tuple(t.shape), str(t.dtype)) for n, t in module.named_buffers()]
    everyone = [None] * group.size
    dist.all_gather_object(everyone, mine)
    for rank, theirs in enumerate(everyone):
        if theirs != everyone[0]:
            diff = next((f"{a} on rank 0 vs {b} on rank {rank}" for a, b in zip(everyone[0], theirs) if a != b),
                        f"{len(everyone[0])} tensors on rank 0 vs {len(theirs)} on rank {rank}")
            raise RuntimeError(f"DistributedDataParallel: the model differs across ranks "
                               f"(parameters and buffers must match): {diff}")


def _no_grad():
    from ...grad_mode import no_grad
    return no_grad()


def _grad_enabled() -> bool:
    from ...grad_mode import is_grad_enabled
    return is_grad_enabled()
