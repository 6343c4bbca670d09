"""How each node of a fused graph runs: one *step* per kernel or view.

A step is ``(fn, input slots, output slots)``; ``fn(*arrays)`` returns the output
arrays. Kernels become native calls; movement ops (slices and flips too) become numpy
views (no copy); the indexing ops (``concat``, ``embed``, ``gather``, ``scatter_add``)
call a kernel of their own (``index_steps``), and so do the scan ops (``argmax``,
``argmin``, ``cumsum``: ``scan_steps``; the other scans run their numpy reference);
the collectives call the communicator (host calls in a native program:
``collective_steps``); constants are computed once when the plan is built.
"""
from __future__ import annotations

import numpy as np

from lucid_ir.graph import Graph, Node
from lucid_ir.interpreter import evaluate_node
from lucid_ir.kernel import KernelNode
from lucid_ir.opnames import ATTENTION, COLLECTIVE, INDEXING, MATMUL, SCAN
from lucid_ir.passes.fuse_epilogue import is_row, same_rows
from lucid_ir.passes.gather_operand import find as find_gather
from lucid_ir.ops.slicing import numpy_index

from lucid_codegen.kernels.elementwise import ElementwiseKernel
from lucid_codegen.gemm.kernel import GemmSpec, k_block
from lucid_codegen.gemm.epilogue import Epilogue
from lucid_codegen.gemm.call import get_gemm, split_pays
from lucid_codegen.runtime.index_steps import index_step

# The step families a plan may not have -- batched and gathered products, reductions,
# row kernels, scans, attention, collectives -- are imported by the first step that
# needs them (below): a process's first eager call (a linear, an elementwise op) then
# imports about twenty modules fewer (~10-20 ms on Zen 3, on its critical path).

class GemmStep:
    """A gemm kernel: ``E(op(A)·op(B), bias, R)`` in one native call, E the fused
    elementwise subgraph (``gemm_epilogue.Epilogue``), A optionally gated by its relu
    mask (a prologue), or one operand gathered from a tensor (an im2col prologue:
    ``gemm.gather_call``)."""

    def __init__(self, kernel: KernelNode):
        self._read(kernel)
        self.gemm = get_gemm(self.spec, self.likely)
        self._bind()

    @classmethod
    def read(cls, kernel: KernelNode) -> "GemmStep":
        """The step of ``kernel`` read but not loaded (its ``spec`` and ``matrix``, nothing
        compiled): for compiling a plan's GEMMs ahead, in parallel (plan_kernels.py)."""
        step = cls.__new__(cls)
        step._read(kernel)
        return step

    def _read(self, kernel: KernelNode) -> None:
        """The operands, epilogue and spec of the fused kernel's body: the nodes before
        the matmul are A's relu mask ``select(gt(r, 0), g, 0)`` (a prologue), those after
        it the epilogue subgraph, read as it is (``Epilogue.of_graph``)."""
        body = kernel.body.nodes
        at = next(k for k, n in enumerate(body) if n.op in MATMUL)
        mm = body[at]
        gate_a, self.a_shape, self.gathered = None, None, None
        prologue = [n for n in body[:at] if n.op != "constant"]
        if any(n.op == "slice" for n in prologue):  # an operand gathered (gather_operand)
            made = {n.out: n for n in body[:at]}
            self.gathered = next((k, g) for k in (0, 1) for g in [find_gather(mm, k, made)]
                                 if g is not None and g.source not in made)
            prologue = []
        if prologue:  # A's relu mask, a prologue: select(gt(r, 0), g, 0) · B
            cmp, sel = prologue
            assert cmp.op == "gt" and sel.op == "select" and mm.inputs[0] is sel.out, "gemm prologue must be A's mask"
            gate_a, a_in = cmp.inputs[0], sel.inputs[1]
            if a_in.shape != sel.out.shape:  # a gradient read through a broadcast
                self.a_shape = sel.out.shape
        (self.out,) = kernel.outs
        # a reshape of the tile's rows (fuse_epilogue.same_rows) is a view: its value is
        # its input's; the epilogue's values and operands may have that shape
        alias, epi = {}, []
        for n in body[at + 1:]:
            if n.op == "reshape":
                alias[n.out] = alias.get(n.inputs[0], n.inputs[0])
            else:
                ins = tuple(alias.get(x, x) for x in n.inputs)
                epi.append(n if ins == n.inputs else Node(n.op, ins, n.attrs, n.out))
        inside = {n.out for n in epi} | {mm.out}
        reads = {x for n in epi for x in n.inputs}
        consts = [n for n in body[:at] if n.op == "constant" and n.out in reads]
        inside |= {n.out for n in consts}
        n_cols, ndim = (mm.out.shape or (1,))[-1], mm.out.ndim
        row = full = None
        for x in dict.fromkeys(x for n in epi for x in n.inputs if x not in inside):
            if same_rows(x.shape, mm.out.shape) and full is None:
                full = x
            elif is_row(x.shape, n_cols, max(ndim, x.ndim)) and row is None:
                row = x
            else:
                raise AssertionError(f"gemm epilogue cannot read {x.type} (a row and an {mm.out.type} at most)")
        operands = [(k, v) for k, v in (("row", row), ("full", full)) if v is not None]
        epilogue = Epilogue.of_graph(Graph((mm.out,) + tuple(v for _, v in operands), tuple(consts + epi),
                                           (alias.get(self.out, self.out),)), [k for k, _ in operands])
        #: the shapes the kernel's matrices are seen with (the step reshapes to and from
        #: them: views), where they differ: its output, and its (M, N) operand
        self.out_view = self.out.shape if self.out.shape != mm.out.shape else None
        self.r_view = mm.out.shape if full is not None and full.shape != mm.out.shape else None
        self.trans_a, self.trans_b = mm.attr("trans_a"), mm.attr("trans_b")
        a_shape, b_shape = mm.inputs[0].shape, mm.inputs[1].shape
        #: (M, N) of each product (a 1-D A is a row, a 1-D B a column: batched_step)
        self.matrix = M, N = (1 if len(a_shape) < 2 else a_shape[-1 if self.trans_a else -2],
                              1 if len(b_shape) < 2 else b_shape[-2 if self.trans_b else -1])
        self.alpha = 1.0
        a_operand = a_in if gate_a is not None else mm.inputs[0]
        self.inputs = [a_operand, mm.inputs[1]] + [v for v in (row, full, gate_a) if v is not None]
        if self.gathered is not None:  # the kernel reads the gathered operand's tensor
            self.inputs[self.gathered[0]] = self.gathered[1].source
        # the R slot: the epilogue's (M, N) operand, or A's gate (transposed with A)
        self.has_residual = full is not None or gate_a is not None
        self.has_bias, self.r_is_a_gate = row is not None, gate_a is not None
        self.n = n_cols
        self.bias_2d = row is not None and row.shape != (self.n,)
        self.out_shape = mm.out.shape
        self.empty = 0 in self.out_shape
        #: a product that is not plain 2-D (1-D operands, batch axes): gemm/batched_step.py
        self.batched = any(v.ndim != 2 for v in (mm.out, *mm.inputs))
        k = mm.inputs[0].shape[-2 if self.trans_a else -1]
        #: ``core.paths_for``'s arguments for contiguous operands (the usual call; which
        #: lazy parts of the GEMM core to compile ahead, ``call.precompile_tasks``)
        self.likely = (M, N, M if self.trans_a else 1, 1 if self.trans_b else N, k if self.trans_b else 1)
        size = 1
        for d in self.out_shape:
            size *= d
        self.flop = 2.0 * size * k
        self.k, self.m = k, size // max(self.n, 1)
        self.spec = GemmSpec(mm.out.dtype, epilogue, gate_a=gate_a is not None,
                             gather="ab"[self.gathered[0]] if self.gathered is not None else "")

    def _bind(self) -> None:
        """The calls, once ``self.gemm`` is loaded."""
        k = self.k
        #: whether a call splits across threads (when more than one is configured)
        self.splits = split_pays(self.m, self.n, k, self.gemm.dtype.itemsize)
        #: read positions whose operand may be this step's output array itself (see
        #: ``KernelStep.same_element_reads``): the (M, N) residual or gate R, read tile by
        #: tile just before C's same elements are stored, when that happens once. A linear
        #: epilogue folds R into C at the first K block; any other reads it at the last,
        #: after earlier K blocks stored partial sums into C: safe only with one K block.
        spec, K = self.gemm.spec, k
        one_block = k_block(spec, K) >= K
        self.same_element_reads = (frozenset({len(self.inputs) - 1})
                                   if spec.reads_r and (spec.linear or one_block) else frozenset())
        if self.batched:
            out_shape, dtype, empty = self.out_shape, self.gemm.dtype, np.empty
            from lucid_codegen.gemm import batched_step
            self._batched = batched_step   # (its native_job and run_into, below)
            self.batched_runner = runner = batched_step.BatchedRunner(self)

            def direct(a, b, *extra):
                c = empty(out_shape, dtype)
                runner(c, a, b, *extra)
                return c
            self.direct = direct
            return
        self.gather_call = None
        if self.gathered is not None:
            self.same_element_reads = frozenset()
            from lucid_codegen.gemm.gather_call import GatherCall
            self.gather_call = GatherCall(self.gemm, self.gathered, self.out_shape,
                                          self.trans_b if self.gathered[0] == 0 else self.trans_a,
                                          self.has_bias, self.has_residual, self.alpha)
            run = self.gather_call.direct
        else:
            run = self.gemm.runner(self.out_shape, self.trans_a, self.trans_b, self.alpha)
        n = self.n
        #: ``direct(a, b, *extra) -> C``: one fresh output, no tuple (eager fast paths)
        self.direct = (lambda a, b, bias, *rest: run(a, b, bias.reshape(n), *rest)) if self.bias_2d else run
        if self.a_shape is not None:
            a_shape, inner = self.a_shape, self.direct
            self.direct = lambda a, b, *rest: inner(np.broadcast_to(a, a_shape), b, *rest)
        if self.views:
            inner, out_view, r_view = self.direct, self.out_view, self.r_view

            def seen(a, b, *extra):
                if r_view is not None:
                    extra = extra[:-1] + (extra[-1].reshape(r_view),)
                c = inner(a, b, *extra)
                return c if out_view is None else c.reshape(out_view)
            self.direct = seen

    @property
    def views(self) -> bool:
        """Whether the kernel's output or (M, N) operand is seen with other rows than
        its matrix's (``out_view``, ``r_view``)."""
        return self.out_view is not None or self.r_view is not None

    def __call__(self, a, b, *extra):
        # the plan's shapes and dtypes were checked when it was built: the trusted entry
        return (self.direct(a, b, *extra),)

    def native_job(self, arrays, outs):
        """This call as a ``native_plan.GemmJob`` (operands with element-aligned strides,
        a contiguous bias, an output with unit column stride), else None."""
        from lucid_codegen.gemm.kernel import workspace_elems
        from lucid_codegen.runtime.native_plan import GemmJob
        (c,) = outs
        if self.empty:
            return None
        if self.batched:
            return self._batched.native_job(self, arrays, outs)
        if self.views:
            c, arrays = _view(c, self.out_shape), list(arrays)
            if self.r_view is not None:
                arrays[-1] = _view(arrays[-1], self.r_view)
            if c is None or arrays[-1] is None:
                return None
        if self.gathered is not None:
            if self.bias_2d:
                arrays = list(arrays[:2]) + [arrays[2].reshape(self.n)] + list(arrays[3:])
            return self.gather_call.native_job(list(arrays), c)
        a, b = arrays[0], arrays[1]
        if self.a_shape is not None:
            a = np.broadcast_to(a, self.a_shape)
        a, b = (a.T if self.trans_a else a), (b.T if self.trans_b else b)
        size = c.itemsize
        operands = [a, b] + list(arrays[2:]) + [c]
        if any(st % size for x in operands for st in x.strides):
            return None
        M, K = a.shape
        N = b.shape[1]
        if N > 1 and c.strides[1] != size:
            return None
        from lucid_codegen.gemm.gather_call import extra_words
        words_of = extra_words(arrays[2:], self.has_bias, self.has_residual, N, size,
                               r_transposed=self.r_is_a_gate and self.trans_a)  # (A's gate has A's layout)
        if words_of is None:
            return None
        in_words, r_strides = words_of
        alpha_bits = int(np.float64(self.alpha).view(np.int64))
        words = [self.gemm._address, M, N, K, alpha_bits, 0, a.strides[0] // size, a.strides[1] // size,
                 0, b.strides[0] // size, b.strides[1] // size, 0, c.strides[0] // size, 0, 0,
                 *r_strides, 0]
        self.gemm.prepare(M, N, words[7], words[9], words[10])
        return GemmJob(self.gemm, words, in_words, [11],
                       workspace_elems(self.gemm.spec, M, N, K), 2.0 * M * N * K, self.alpha)

    def call_into(self, outs, a, b, *extra):
        """The same, writing into ``outs[0]`` (bounds checking: a guarded buffer; a
        plan's donated input, which may be this call's residual R itself)."""
        (out,) = outs
        if self.empty:
            return (out,)
        if self.batched:
            self._batched.run_into(self, out, a, b, *extra)
            return (out,)
        if self.gathered is not None:  # a fresh C (its operands may be anything), copied
            out[...] = self.direct(a, b, *extra).reshape(out.shape)
            return (out,)
        if self.a_shape is not None:
            a = np.broadcast_to(a, self.a_shape)
        if self.trans_a:
            a = a.T
        if self.trans_b:
            b = b.T
        bias = (extra[0].reshape(self.n) if self.bias_2d else extra[0]) if self.has_bias else None
        residual = extra[-1] if self.has_residual else None
        over = residual is out  # the checked entries would see the overlap and copy R
        if self.r_is_a_gate and self.trans_a:  # A's gate has A's layout
            residual = residual.T
        c = out if not self.views else _view(out, self.out_shape)
        fresh = c is None  # no matrix view of out: a buffer of the step's, then a copy
        if fresh:
            c, over = np.empty(self.out_shape, out.dtype), False
        if self.r_view is not None:
            residual = residual.reshape(self.r_view)
        if over:
            self._over_residual(a, b, c, bias)
        else:
            self.gemm.trusted(a, b, c, bias, residual, self.alpha)
        if fresh:
            out[...] = c.reshape(out.shape)
        return (out,)

    def _over_residual(self, a, b, c, bias):
        """C computed over R = C (``same_element_reads``), on the unchecked entry, which
        splits rows or columns across threads but never K. ``can_write_into(c)`` held."""
        size = c.itemsize

        def aligned(x):
            return np.ascontiguousarray(x) if any(st % size for st in x.strides) else x
        if bias is not None and bias.shape[0] > 1 and bias.strides[0] != size:
            bias = np.ascontiguousarray(bias)
        M, K = a.shape
        self.gemm._run_arrays(aligned(a), aligned(b), c, bias, c, self.alpha, M, b.shape[1], K)

    def can_write_into(self, array) -> bool:
        """Whether ``call_into`` can take ``array`` (a donated input of the output's shape
        and dtype) as its output: element-aligned strides, unit column stride."""
        size = array.itemsize
        return (all(st % size == 0 for st in array.strides)
                and (array.ndim == 0 or array.shape[-1] <= 1 or array.strides[-1] == size)
                and (not self.views or _view(array, self.out_shape) is not None))


def _view(array, shape):
    """``array`` seen with ``shape`` without a copy (rows split or merged), else None."""
    if array.shape == shape:
        return array
    view = array.view()
    try:
        view.shape = shape
    except AttributeError:
        return None
    return view


class KernelStep:
    """An elementwise, reduction or row kernel."""

    def __init__(self, kernel: KernelNode):
        if kernel.kind == "elementwise":
            cls = ElementwiseKernel
        elif kernel.kind == "rows":
            from lucid_codegen.kernels.row_kernel import RowKernel as cls
        else:
            from lucid_codegen.kernels.reduction import ReductionKernel as cls
        self.kernel = cls.for_graph(kernel.body)
        #: read positions whose operand may be one of the output arrays itself (a plan
        #: writing an output into a donated input): those an elementwise loop reads with
        #: the output's full shape, so element e is read only by the iteration that
        #: stores element e, after all of that iteration's loads (every node is emitted
        #: before the stores; an output that is a bare input would be loaded after them,
        #: so such a kernel has none). A reduction reads across elements: none.
        shape = kernel.outs[0].shape
        safe = kernel.kind == "elementwise" and all(t != "i" for t, _ in self.kernel.structure.outputs)
        self.same_element_reads = frozenset(
            k for k, v in enumerate(kernel.inputs) if safe and v.shape == shape)

    def __call__(self, *arrays):
        return self.kernel(list(arrays))

    def call_into(self, outs, *arrays):
        """The same, writing into ``outs`` (bounds checking: guarded buffers)."""
        return self.kernel(list(arrays), outs=list(outs))

    def bind(self, arrays, outs):
        """A prepared call for these layouts (elementwise kernels), or None."""
        bind = getattr(self.kernel, "bind", None)
        return bind(list(arrays), list(outs)) if bind is not None else None

    def native_job(self, arrays, outs):
        """This call as a ``native_plan.LoopJob``, or None."""
        return self.kernel.native_job(list(arrays), list(outs))

    def can_write_into(self, array) -> bool:
        """Whether ``call_into`` can take ``array`` as an output: element-aligned
        strides, no broadcast (stride 0) dimension."""
        size = array.itemsize
        return all(st % size == 0 and (st or n <= 1) for st, n in zip(array.strides, array.shape))


def view_step(node: Node):
    op = node.op
    if op == "reshape":
        shape = node.attr("shape")
        return lambda x: (x.reshape(shape),)
    if op == "transpose":
        perm = node.attr("perm")
        return lambda x: (x.transpose(perm),)
    if op == "stop_gradient":
        return lambda x: (x,)
    if op == "broadcast_to":
        shape = node.attr("shape")
        return lambda x: (np.broadcast_to(x, shape),)
    if op == "slice":  # numpy basic slicing: a view, negative steps included
        index = numpy_index(node.attr("starts"), node.attr("stops"), node.attr("steps"))
        return lambda x: (x[index],)
    raise AssertionError(f"no view step for {op}")


def make_step(node):
    """(callable, kind) for one node of a fused graph; constants return their array."""
    if node.op == "kernel":
        return (GemmStep(node) if node.kind == "gemm" else KernelStep(node)), node.kind
    if node.op in ("constant", "iota"):
        value = evaluate_node(node, [])
        value.setflags(write=False)
        return value, "constant"
    if node.op in INDEXING:
        return index_step(node), "index"
    if node.op in SCAN:
        from lucid_codegen.runtime.scan_steps import scan_step
        return scan_step(node), "scan"
    if node.op in ATTENTION:
        from lucid_codegen.runtime.attention_steps import attention_step
        return attention_step(node), "attention"
    if node.op in COLLECTIVE:  # the communicator's calls (host calls in a native program)
        from lucid_codegen.runtime.collective_steps import CollectiveStep
        return CollectiveStep(node), "collective"
    return view_step(node), "view"
