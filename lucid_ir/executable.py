"""The interface of a runnable graph: what a backend gives for a fused graph and what
the layers above may ask of it (``lucid.backend.executable`` returns one; the compiled
backend's ``lucid_codegen.runtime.plan.Plan`` and the reference interpreter's runners are
the implementations). Callers read these members directly: a backend provides every
one of them (the defaults here are an interpreter's).

>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> class Interpreting(Executable):
...     def __init__(self, graph):
...         self.graph = graph
...     def __call__(self, arrays):
...         return interpret(self.graph, arrays)
>>> b = GraphBuilder()
>>> x = b.input((2,))
>>> run = Interpreting(b.build([b.emit("neg", x)]))
>>> import numpy as np
>>> run([np.array([1.0, 2.0], np.float32)])[0].tolist(), run.donations, run.in_place_direct
([-1.0, -2.0], (), frozenset())
>>> run.llvm_text()
'; (interpreted: no LLVM IR)'
"""
from __future__ import annotations


class Executable:
    """A fused graph made runnable.

    - ``executable(arrays) -> list``: the graph's outputs for its inputs ``arrays`` (numpy
      arrays, in the graph's input order);
    - ``donations``: the ``(output, input)`` pairs whose output's values are left in that
      input array (which the call returns as the output): a training step's parameters;
    - ``in_place_direct``: the outputs among them that a kernel writes straight into the
      input (the others are computed elsewhere and copied in after the kernels);
    - ``llvm_text()`` / ``asm_text()``: the native code, for ``lucid-ir`` and ``lower``.
    """

    donations: tuple = ()
    in_place_direct: frozenset = frozenset()

    def __call__(self, arrays) -> list:
        raise NotImplementedError

    def llvm_text(self) -> str:
        return "; (interpreted: no LLVM IR)"

    def asm_text(self) -> str:
        return "# (interpreted: no assembly)"
