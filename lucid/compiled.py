"""``lucid.compile(fn)``: trace a whole Python function once per input signature and
run it as one compiled graph (forward and backward compiled together).

>>> import lucid, lucid.nn.functional as F
>>> w = lucid.randn(3, 4, requires_grad=True)
>>> @lucid.compile
... def f(x):
...     return F.relu(F.linear(x, w)).sum()
>>> loss = f(lucid.randn(2, 4))
>>> loss.backward()
>>> w.grad.shape
(3, 4)
>>> f.lower(lucid.randn(2, 4)).kernels
[Kernel(gemm: matmul + maximum), Kernel(reduction: sum)]

A whole training step compiles too: ``backward()`` and the optimiser's ``step()``
inside the function join the same graph, and each call updates ``w`` in place:

>>> opt = lucid.optim.SGD([w], lr=0.1)
>>> @lucid.compile
... def train_step(x):
...     opt.zero_grad()
...     loss = F.relu(F.linear(x, w)).sum()
...     loss.backward()
...     opt.step()
...     return loss
>>> before = w.numpy().copy()
>>> x = lucid.randn(2, 4)
>>> loss = train_step(x)
>>> bool(np.allclose(w.numpy(), before - 0.1 * w.grad))
True
"""
from __future__ import annotations

import functools
import math
import operator
import threading
from collections import OrderedDict

import numpy as np

from lucid_ir import compile_times, gc_pause
from lucid_ir.compile_times import phase
from lucid_ir.graph import Graph
from lucid_ir import pipeline
from lucid_ir.passes import autodiff

from . import grad_mode, pytree, versions
from .autograd import CallOutput
from .call_site import _REQUIRES, MISS, CallSite
from .compiler import compile_graph
from .grad_mode import is_grad_enabled
from .tensor import Tensor
from .tracing import Tracer, TracingError

MAX_VARIANTS = 3  # programs kept per signature besides the current one (other guards)
STAGES = ("traced", "autodiff", "simplified", "fused", "llvm", "asm")


class Program:
    """One traced signature: the forward graph (plus residual outputs) and the backward
    graph, each compiled; the tensors captured from outside; how to rebuild outputs.

    A function that runs ``backward()`` (and an optimiser's ``step()``) itself compiles
    to one graph: its gradients and updated tensors are extra outputs, written back
    after each call (the updates in place, see ``Tracer.assign``)."""

    def __init__(self, fn, flat_args, tree, n_dynamic, grad_enabled: bool, name: str):
        self.name = name
        #: where the compilation's time went (``LUCID_DEBUG``), reported after the first run
        self.times = compile_times.begin(name)
        if self.times is None:
            self._compile(fn, flat_args, tree, n_dynamic, grad_enabled)
        else:
            with self.times.active():
                self._compile(fn, flat_args, tree, n_dynamic, grad_enabled)
            self._report_after_first_runs(self.times)

    def _compile(self, fn, flat_args, tree, n_dynamic, grad_enabled: bool) -> None:
        name = self.name
        tracer = Tracer(grad_enabled)
        with phase("trace"), tracer:
            symbolic = []
            for a in flat_args:
                if isinstance(a, Tensor):
                    symbolic.append(tracer.argument(a.shape, a.dtype, a.requires_grad and grad_enabled, a))
                else:
                    symbolic.append(a)
            args, kwargs = pytree.unflatten(tree, symbolic)
            result = fn(*args, **kwargs)
            out_leaves, self.out_tree = pytree.flatten(result)
            self.static_outputs = {}
            out_values = []
            for i, leaf in enumerate(out_leaves):
                if isinstance(leaf, Tensor):
                    out_values.append(tracer.value_of(leaf))
                else:
                    self.static_outputs[i] = leaf
        self.n_leaves = len(out_leaves)
        self.captured = [t for t, _ in tracer.captured.values()]
        self.captured_sig = [(t.shape, t._data.dtype, t.requires_grad) for t in self.captured]
        self.grad_inputs = [owner for owner, _ in tracer.grad_inputs]
        self.grad_guards = list(tracer.grad_guards)
        # gradients the function overwrites before reading them (``zero_grad()`` first) are
        # dropped before the call: their arrays are free for the plan to reuse
        self.grads_dropped = list(tracer.grads_overwritten)
        self.scalar_sources = [ScalarSource(f, np.dtype(dtype), len(values)) for f, dtype, values in tracer.scalar_sources]
        self.static_guards = list(tracer.static_guards)
        inputs = tracer.inputs()
        nodes = tuple(tracer.builder.nodes)
        self.forward = Graph(inputs, nodes, tuple(out_values))
        n_tensors = n_dynamic + len(self.captured)   # inputs a gradient can flow to
        requires = [bool(grad_enabled and a.requires_grad) for a in flat_args if isinstance(a, Tensor)]
        requires += [bool(grad_enabled and t.requires_grad) for t in self.captured]
        # a function that ran backward() itself returns plain tensors
        self.wrt = [] if tracer.did_backward else [i for i, r in enumerate(requires[:n_tensors]) if r]
        active = autodiff.depends_on(self.forward, [inputs[i] for i in self.wrt])
        self.out_requires = [v in active for v in out_values]
        self.backward_graph = None
        self.residual_sources = []
        outputs = self.forward.outputs
        if self.wrt and any(self.out_requires):
            bwd = pipeline.run(self.forward, pipeline.differentiate(self.wrt), "backward").backward
            self.backward_graph = bwd.graph
            position = {v: i for i, v in enumerate(inputs)}
            extra = []
            for v in bwd.residuals:  # ("input", i) or ("output", j) of the extended forward
                if v in position:
                    self.residual_sources.append(("input", position[v]))
                else:
                    self.residual_sources.append(("output", len(outputs) + len(extra)))
                    extra.append(v)
            outputs = outputs + tuple(extra)
        # what the call writes back: tensors updated in place, then gradients
        position = {v: i for i, v in enumerate(inputs)}
        self.data_sinks, self.grad_sinks, in_place = [], [], {}
        for t, v in tracer.assigned.values():
            self.data_sinks.append((t, len(outputs)))
            in_place[len(outputs)] = position[tracer.input_of(t)]
            outputs += (v,)
        for owner, v in tracer.grad_writes():
            self.grad_sinks.append((owner, None if v is None else len(outputs)))
            outputs += (() if v is None else (tracer.value_of(v),))
        self.n_outputs = len(self.forward.outputs)
        self.did_backward = tracer.did_backward
        self.compiled_forward = compile_graph(Graph(inputs, nodes, outputs), name, in_place=in_place or None)
        self.compiled_backward = (compile_graph(self.backward_graph, name + ".backward")
                                  if self.backward_graph is not None else None)
        # the plans themselves, called directly on every call
        self.run_forward = self.compiled_forward.executable
        self.run_backward = self.compiled_backward.executable if self.compiled_backward else None
        # the call without a signature key (``call_prepared``): the plan's native checks,
        # and the guards that are not arrays
        self.run_prepared = getattr(self.run_forward, "run_prepared", None)
        self.check_prepared = getattr(self.run_forward, "check_prepared", None)
        self.single_prepared = getattr(self.run_forward, "single_prepared", None)
        self.captured_requires = [(t, req) for t, (_, _, req) in zip(self.captured, self.captured_sig)]
        self.grads_absent = [owner for owner, expected in self.grad_guards if expected is None]
        self.guarded = bool(self.captured_requires or self.grads_absent or self.static_guards)
        # the result is one tensor with no backward: wrapping it is all that is left
        self.plain_result = (self.out_tree is None and not self.static_outputs and not self.grad_sinks
                             and self.run_backward is None and self.n_leaves == 1)
        self.calls_prepared = 0  # calls that took that path (tests watch it)

    def _report_after_first_runs(self, times) -> None:
        """Report ``times`` after the forward plan's first run, which builds the kernels
        the plan specialises on the arrays' layouts (so they count as this compilation's),
        and again after the backward's first run if that compiled or loaded more. The
        plans are wrapped until then: the calls after the first pay nothing."""
        def reported_once(attr: str, label: str):
            plain = getattr(self, attr)

            def first(arrays):
                setattr(self, attr, plain)
                with times.active(), phase(label):
                    results = plain(arrays)
                times.report(label)
                return results
            setattr(self, attr, first)
        reported_once("run_forward", "first run")
        if self.run_backward is not None:
            reported_once("run_backward", "first backward run")

    def guards_hold(self, dynamic: list) -> bool:
        """Whether a call with these argument tensors may run this program (the captured
        tensors, the ``.grad`` states and static values it was traced with still hold)."""
        for t, (shape, dtype, req) in zip(self.captured, self.captured_sig):
            d = t._data
            if d is None or d.shape != shape or d.dtype != dtype or t.requires_grad != req:
                return False
        for (kind, what), expected in self.grad_guards:
            g = (what if kind == "tensor" else dynamic[what])._grad
            if g is None or expected is None:
                if g is not expected:
                    return False
            elif (g.shape, g.dtype) != expected:
                return False
        for fn, value in self.static_guards:
            if fn() != value:
                return False
        return True

    def call(self, dynamic: list):
        self._drop_grads(dynamic)
        inputs = dynamic + self.captured
        arrays = [t._data for t in inputs] + self._grad_arrays(dynamic)
        for source in self.scalar_sources:
            arrays += source.arrays()
        return self._outputs(dynamic, inputs, arrays, self.run_forward(arrays))

    def call_prepared(self, dynamic: list):
        """``call(dynamic)`` when the guards hold and the arrays have the layouts of the
        plan's native program of the last call (checked natively, see ``CallSite``);
        else ``MISS``, nothing done (no ``.grad`` dropped, no scalar source read)."""
        run = self.run_prepared
        if run is None or (self.guarded and not self._other_guards_hold(dynamic)):
            return MISS
        inputs = dynamic + self.captured
        arrays = list(map(_DATA, inputs))
        if self.grad_inputs:
            arrays += self._grad_arrays(dynamic)
        if self.scalar_sources:  # a source may count steps: read it only for a call that runs
            if not self.check_prepared(arrays):
                return MISS
            self._drop_grads(dynamic)
            for source in self.scalar_sources:
                arrays += source.arrays()
            results = run(arrays)
            if results is None:  # (0-d arrays of the traced dtypes pass: not seen)
                results = self.run_forward(arrays)
        elif self.grads_dropped:
            dropped = self._drop_grads(dynamic)
            results = run(arrays)
            if results is None:
                for t, g in dropped:
                    t._grad = g
                return MISS
        else:
            results = run(arrays)
            if results is None:
                return MISS
        self.calls_prepared += 1
        if self.plain_result:
            return _wrap(results[0])
        return self._outputs(dynamic, inputs, arrays, results)

    def plain_call(self, types: tuple, requires: tuple, grad_enabled: bool):
        """``call_prepared`` for a call site whose arguments are all tensors, as one
        closure over what it reads: ``call(args)`` gives the result tensor or ``MISS``.
        Only for a program whose call is its plan's and nothing more (no guards but the
        arrays' and the captured tensors' ``requires_grad``, no gradients read or
        dropped, no scalar sources, one plain result); else None."""
        make = self.single_prepared
        if (make is None or self.grads_absent or self.static_guards or self.grad_inputs
                or self.scalar_sources or self.grads_dropped or not self.plain_result):
            return None
        run = make()
        if run is None:
            return None
        captured, program, state = tuple(self.captured), self, grad_mode._state
        captured_requires = tuple(req for _, req in self.captured_requires)
        any_requires = any(requires)

        def call(args):
            if (state.enabled != grad_enabled or tuple(map(type, args)) != types
                    or (tuple(map(_REQUIRES, args)) != requires if any_requires
                        else True in map(_REQUIRES, args))
                    or (captured and tuple(map(_REQUIRES, captured)) != captured_requires)):
                return MISS
            arrays = list(map(_DATA, args))
            if captured:
                arrays += map(_DATA, captured)
            result = run(arrays)
            if result is None:
                return MISS
            program.calls_prepared += 1
            return _wrap(result)
        return call

    def _other_guards_hold(self, dynamic: list) -> bool:
        """``guards_hold`` but what a native program checks (the arrays' layouts)."""
        for t, req in self.captured_requires:
            if t.requires_grad != req:
                return False
        for kind, what in self.grads_absent:
            if (what if kind == "tensor" else dynamic[what])._grad is not None:
                return False
        for fn, value in self.static_guards:
            if fn() != value:
                return False
        return True

    def _drop_grads(self, dynamic: list) -> list:
        """Drop the gradients the function overwrites before reading them (their arrays
        are then free for the plan to reuse); ``[(tensor, old gradient)]``."""
        dropped = []
        for kind, what in self.grads_dropped:
            t = what if kind == "tensor" else dynamic[what]
            dropped.append((t, t._grad))
            t._grad = None
        return dropped

    def _grad_arrays(self, dynamic: list) -> list:
        """The gradients from before the call that the plan reads."""
        return [(what if kind == "tensor" else dynamic[what])._grad for kind, what in self.grad_inputs]

    def _outputs(self, dynamic: list, inputs: list, arrays: list, results: list):
        """The function's result from the plan's: gradients written back, outputs as
        tensors (connected to this call's backward when they require grad)."""
        if self.grad_sinks:  # (updated tensors: the plan wrote them in place)
            self._write_back(results, dynamic)
        record = None
        if self.run_backward is not None:
            residuals = [arrays[i] if kind == "input" else results[i] for kind, i in self.residual_sources]
            record = CallRecord(self, inputs, residuals)
        tensors, k = [], 0
        for i in range(self.n_leaves):
            if i in self.static_outputs:
                tensors.append(self.static_outputs[i])
                continue
            if record is not None and self.out_requires[k]:
                tensors.append(Tensor._from_call(results[k], record, k))
            else:
                tensors.append(Tensor._wrap(results[k]))
            k += 1
        if self.out_tree is None:  # the function returned one tensor
            return tensors[0]
        return pytree.unflatten(self.out_tree, tensors)

    def _write_back(self, results, dynamic) -> None:
        """Give the tensors whose ``.grad`` the function set their new gradients."""
        handed = {id(results[k]) for k in range(self.n_outputs)}
        for (kind, what), k in self.grad_sinks:
            g = None if k is None else results[k]
            if g is not None:
                if id(g) in handed:  # one array for two gradients, or a returned tensor
                    g = g.copy()
                handed.add(id(g))
            (what if kind == "tensor" else dynamic[what])._grad = g


class ScalarSource:
    """A run-time scalar source of a program (``Tracer.scalars``): ``arrays()`` reads it
    once and gives its values as read-only 0-d arrays; the last call's arrays when the
    values are the same bit for bit (equal, zeros of the same sign), which is the rule
    (a learning rate changes now and then), else ``_scalar_arrays``. A source whose
    values are new at every call (``fresh``: a random key) gets new arrays, unkept."""

    __slots__ = ("fn", "dtype", "n", "last", "fresh")

    def __init__(self, fn, dtype: np.dtype, n: int):
        self.fn, self.dtype, self.n = fn, dtype, n
        self.last = None   # (values, [(position of a float zero, its sign)], arrays)
        self.fresh = getattr(fn, "fresh", False)

    def arrays(self) -> list:
        values = tuple(self.fn())
        if self.fresh:
            return [np.array(v, self.dtype) for v in values]
        last = self.last
        if last is not None and values == last[0]:
            for i, sign in last[1]:
                if math.copysign(1.0, values[i]) != sign:
                    break
            else:
                return last[2]
        arrays = _scalar_arrays(values, self.dtype, self.n)
        zeros = [(i, math.copysign(1.0, v)) for i, v in enumerate(values) if isinstance(v, float) and v == 0]
        self.last = (values, zeros, arrays)
        return arrays


_SCALARS: dict = {}


def _scalar_arrays(values, dtype, n: int) -> list:
    """``values`` as ``n`` read-only 0-d arrays of ``dtype`` (made once per value; floats
    keyed by their bits, so 0.0 and -0.0 stay apart)."""
    key = (dtype, *[v.hex() if type(v) is float else v for v in values])
    hit = _SCALARS.get(key)
    if hit is None:
        if len(values) != n:
            raise ValueError(f"lucid.compile: a run-time scalar source gave {len(values)} values, "
                             f"expected {n}")
        if len(_SCALARS) > 4096:
            _SCALARS.clear()
        hit = _SCALARS[key] = [np.array(v, dtype) for v in values]
        for a in hit:
            a.setflags(write=False)
    return hit


class CallRecord:
    """What one call saved for its backward: the input tensors and the residual arrays."""

    def __init__(self, program: Program, inputs: list, residuals: list):
        self.program = program
        self.inputs = inputs
        self.residuals = residuals
        self.n_outputs = program.n_outputs
        self.parents = tuple(inputs[i] for i in program.wrt)
        self.clock = versions.clock[0]   # when it was made (see lucid.versions)

    def backward(self, cotangents):
        p = self.program
        outs = p.forward.outputs
        cots = [c if c is not None else np.zeros(v.shape, v.dtype) for c, v in zip(cotangents, outs)]
        grads = p.run_backward(cots + self.residuals)
        return list(zip(self.parents, grads))


class Lowered:
    """The compiled stages of one signature (``lucid.compile(fn).lower(*args)``)."""

    def __init__(self, program: Program):
        self.program = program

    @property
    def kernels(self):
        """The forward's kernels, each with the ops it runs."""
        return self.program.compiled_forward.kernels

    @property
    def backward_kernels(self):
        cb = self.program.compiled_backward
        return cb.kernels if cb is not None else []

    def as_text(self, stage: str = "fused") -> str:
        """The program at ``stage``: traced, autodiff, simplified, fused, llvm or asm."""
        if stage not in STAGES:
            raise ValueError(f"as_text: unknown stage {stage!r}; choose from {', '.join(STAGES)}")
        p = self.program
        if stage == "traced":
            return str(p.forward)
        if stage == "autodiff":
            if p.backward_graph is not None:
                return str(p.backward_graph)
            return ("# the function runs backward() itself: its backward graph is part of the "
                    "traced graph" if p.did_backward else "# no backward graph")
        parts = []
        for title, cg in (("forward", p.compiled_forward), ("backward", p.compiled_backward)):
            if cg is None:
                continue
            text = {"simplified": lambda: str(cg.simplified), "fused": cg.fused_text,
                    "llvm": cg.llvm_text, "asm": cg.asm_text}[stage]()
            parts.append(f"# {title}\n{text}")
        return "\n".join(parts)


class CompiledFunction:
    """A function traced and compiled per input signature (see the module docstring).

    Tensors and numpy arrays among the arguments are inputs; every other argument is
    static (part of the signature: a new value retraces). Tensors the function reaches
    from outside (parameters) are inputs too, read at every call.
    """

    def __init__(self, fn, max_signatures: int = 32):
        if not callable(fn):
            raise TypeError(f"lucid.compile: expected a callable, got {type(fn).__name__}")
        self.fn = fn
        self.max_signatures = max_signatures
        self._programs: "OrderedDict[tuple, Program]" = OrderedDict()
        # positional calls of plain tensors, arrays and scalars: a cheaper key to the same
        # programs and their call sites, and the last such call's site (``call_site``);
        # both cleared whenever ``_programs`` changes
        self._quick: dict = {}
        self._site = None
        self._others: dict = {}  # signature -> programs traced for it under other guards
        self._lock = threading.Lock()
        self.traces = 0  # how many times fn was traced (tests and users can watch retracing)
        functools.update_wrapper(self, fn)

    def _signature(self, args, kwargs):
        flat, tree = pytree.flatten((args, kwargs))
        grad = is_grad_enabled()
        sig, dynamic = [], []
        for i, a in enumerate(flat):
            if isinstance(a, np.ndarray):
                a = flat[i] = Tensor(a)
            if isinstance(a, Tensor):
                if a._data is None:
                    raise TracingError("lucid.compile: a compiled function was called on a tensor "
                                       "of another function's trace")
                sig.append((a.shape, a.dtype, a.requires_grad and grad))
                dynamic.append(a)
            else:
                try:
                    hash(a)
                except TypeError:
                    raise TypeError(f"lucid.compile: argument {a!r} is neither a tensor nor "
                                    f"hashable, so it cannot be a static argument") from None
                sig.append(("static", type(a), a))
        return (tree, tuple(sig), grad), flat, tree, dynamic

    def _program(self, args, kwargs):
        key, flat, tree, dynamic = self._signature(args, kwargs)
        program = self._programs.get(key)
        if program is None or not program.guards_hold(dynamic):
            with self._lock:  # two threads on a new signature trace it once
                program = self._programs.get(key)
                if program is None or not program.guards_hold(dynamic):
                    # the same signature traced under other guards (a .grad that existed or
                    # not, another hyper-parameter): reuse one that holds, else trace
                    others = self._others.setdefault(key, [])
                    if program is not None:
                        others.insert(0, program)
                    program = next((p for p in others if p.guards_hold(dynamic)), None)
                    if program is not None:
                        others.remove(program)
                    else:
                        with gc_pause.paused():   # (tracing, the passes, the kernels)
                            program = Program(self.fn, flat, tree, len(dynamic), key[2],
                                              getattr(self.fn, "__name__", "fn"))
                        self.traces += 1
                    del others[MAX_VARIANTS:]
                    site = self._site  # its calls did not reorder the programs: it is the latest
                    if site is not None and site.key in self._programs:
                        self._programs.move_to_end(site.key)
                    self._programs[key] = program
                    self._quick, self._site = {}, None
                    if len(self._programs) > self.max_signatures:
                        self._others.pop(self._programs.popitem(last=False)[0], None)
        self._programs.move_to_end(key) if key in self._programs else None
        return program, dynamic

    def __call__(self, *args, **kwargs):
        site = self._site
        if site is not None and not kwargs:
            result = site.run(args)
            if result is not MISS:
                return result
        if not kwargs:
            key = _quick_key(args)
            hit = self._quick.get(key) if key is not None else None
            if hit is not None:
                full_key, program, site = hit
                dynamic = [a if type(a) is Tensor else Tensor(a) for a in args if type(a) in _DYNAMIC]
                if full_key in self._programs and program.guards_hold(dynamic):
                    self._programs.move_to_end(full_key)
                    self._site = site
                    return program.call(dynamic)
        program, dynamic = self._program(args, kwargs)
        if not kwargs and key is not None:
            full_key = self._signature(args, kwargs)[0]
            site = CallSite(program, full_key, args, key[0])
            self._quick[key] = (full_key, program, site)
            self._site = site
        return program.call(dynamic)

    def lower(self, *args, **kwargs) -> Lowered:
        """Trace and compile for these arguments (without running) and show the stages."""
        program, _ = self._program(args, kwargs)
        if program.times is not None:  # (LUCID_DEBUG) what it took, if not reported yet
            program.times.report()
        return Lowered(program)


_DYNAMIC = (Tensor, np.ndarray)
_DATA = operator.attrgetter("_data")
_wrap = Tensor._wrap
_STATIC = (int, float, bool, str, type(None))


def _quick_key(args):
    """A signature key for positional arguments that are tensors, arrays or plain scalars
    (None for anything else: the general path handles it)."""
    parts = [is_grad_enabled()]
    for a in args:
        t = type(a)
        if t is Tensor:
            d = a._data
            if d is None:
                return None
            parts.append((d.shape, d.dtype, a.requires_grad))
        elif t is np.ndarray:
            parts.append((t, a.shape, a.dtype))
        elif t in _STATIC:
            parts.append((t, a))
        else:
            return None
    return tuple(parts)


def compile(fn=None, *, max_signatures: int = 32):
    """Compile ``fn`` (also usable as ``@lucid.compile`` or ``@lucid.compile(...)``)."""
    if fn is None:
        return lambda f: CompiledFunction(f, max_signatures)
    return CompiledFunction(fn, max_signatures)
