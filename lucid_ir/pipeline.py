"""The pass pipeline, in order, in one place: every path that transforms a graph runs it.

    graph → autodiff (with residuals) → simplify → verify → fuse → verify

Paths differ only by their :class:`Options`, named here so that a reader sees every
variant on one screen:

========================  =========================================================
``COMPILE``               ``lucid.compile``'s traced function and every graph
                          ``lucid.compiler.compile_graph`` lowers (eager backward
                          graphs included): simplify, fuse, verify after each.
``EAGER``                 one eager call's chain of ops (``lucid.dispatch``): fused as
                          recorded; no simplify (a chain is the user's ops, already
                          minimal, and its outputs are read by position), verified
                          only under ``LUCID_DEBUG`` (planned once per signature).
``UPDATE``                an optimiser's update rule: one elementwise kernel by
                          construction; verified, nothing else to do.
``differentiate(wrt)``    autodiff only: the backward graph and the residuals it reads
                          (a backward inside a trace, ``lucid.compile``'s backward, the
                          eager backward, and which inner results an eager call keeps).
========================  =========================================================

Each stage is timed as a phase of the compilation being recorded
(:mod:`lucid_ir.compile_times`: ``autodiff``, ``NAME: simplify``, ``NAME: fuse``,
``NAME: verify``) and logged by :mod:`lucid_ir.debug`.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((3,))
>>> fwd = b.build([b.emit("exp", b.emit("mul", x, b.constant(1.0)))])
>>> [n.op for n in run(fwd, COMPILE).simplified.nodes]
['exp']
>>> [n.kind for n in run(fwd, EAGER).fused.nodes]
['elementwise']
>>> result = run(fwd, differentiate([0]))
>>> [v is x for v in result.backward.residuals], result.graph is result.backward.graph
([False], True)
"""
from __future__ import annotations

from dataclasses import dataclass

from . import debug
from .compile_times import phase
from .graph import Graph
from .passes import autodiff, col2im, fuse, simplify
from .verify import verify

__all__ = ["Options", "Result", "run", "COMPILE", "EAGER", "UPDATE", "differentiate"]


@dataclass(frozen=True)
class Options:
    """What :func:`run` does. ``wrt`` (input positions) differentiates first and runs the
    remaining stages on the backward graph; ``retained`` adds the gradients of those
    intermediate values (``Tensor.retain_grad``). ``fusion=False`` makes every compute
    op a kernel of its own (``LUCID_FUSION=0``). ``verify``: after each pass, always
    (True) or only under ``LUCID_DEBUG`` (False)."""

    wrt: tuple[int, ...] | None = None
    retained: tuple = ()
    free: tuple = ()
    simplify: bool = True
    fuse: bool = True
    fusion: bool = True
    verify: bool = True


COMPILE = Options()
EAGER = Options(simplify=False, verify=False)
UPDATE = Options(simplify=False, fuse=False)


def differentiate(wrt, retained=(), free=()) -> Options:
    """Autodiff alone: the backward graph of the input positions ``wrt`` (and of the
    ``retained`` intermediate values) and the residuals it reads (``free``: values the
    caller holds anyway, see ``autodiff.run``)."""
    return Options(wrt=tuple(wrt), retained=tuple(retained), free=tuple(free), simplify=False, fuse=False,
                   verify=False)


@dataclass(frozen=True)
class Result:
    """Every stage's graph. ``traced`` is what :func:`run` was given; ``backward`` the
    autodiff result when asked (its ``graph`` is then what the later stages start from);
    a stage that did not run repeats the graph before it."""

    traced: Graph
    backward: autodiff.BackwardGraph | None
    simplified: Graph
    fused: Graph

    @property
    def graph(self) -> Graph:
        """The final graph."""
        return self.fused


def run(graph: Graph, options: Options = COMPILE, name: str = "graph") -> Result:
    """``graph`` through the pipeline as ``options`` say (see the module docstring)."""
    check = options.verify or debug.level() >= 1
    backward = None
    current = graph
    if options.wrt is not None:
        with phase("autodiff"):
            backward = autodiff.run(graph, options.wrt, options.retained, options.free)
        current = backward.graph
        if check:
            _verify(name, current)
    if options.simplify:
        with phase(f"{name}: simplify"):
            current = simplify.run(current)
            if options.fuse and options.fusion:  # col2im as a gathered GEMM (packed only when fused)
                current = col2im.run(current)
        if check:
            _verify(name, current)
        debug.log_stage(name, "simplified", current)
    simplified = current
    if options.fuse:
        with phase(f"{name}: fuse"):
            current = fuse.run(current, enabled=options.fusion)
        if check:
            _verify(name, current)
        debug.log_stage(name, "fused", current)
    elif check and not options.simplify and options.wrt is None:
        _verify(name, current)
    return Result(graph, backward, simplified, current)


def _verify(name: str, graph: Graph) -> None:
    with phase(f"{name}: verify"):
        verify(graph)
