"""Running fused graphs as native code.

A ``Plan`` is a compiled graph made concrete: a list of steps over numbered slots.
Kernels were compiled (or loaded from the cache) when the plan was built; calling the
plan only moves arrays between slots and calls kernels, back to back.

``Plan(fused, in_place={output: input})`` *donates* inputs: output j's values end up in
``arrays[i]``, which is returned as output j (a training step's new parameters and
optimiser state, updated in place), while every output is computed as if no input had
changed. The kernel producing output j writes straight into ``arrays[i]`` when that is
safe (``donation.plan_donations``); otherwise the output is computed into a buffer of the plan and
copied into ``arrays[i]`` at the end of the call.
"""
from __future__ import annotations

import os
import threading
from sys import getrefcount

import numpy as np

from lucid_ir.executable import Executable
from lucid_ir.graph import Graph
from lucid_ir.interpreter import check_inputs
from lucid_ir.printer import format_graph

from lucid_codegen.jit.bundle import Bundle
from lucid_codegen.runtime import threads
from lucid_codegen.runtime.donation import donations, plan_donations
from lucid_codegen.runtime.eager_call import fast_call, gemm_fast_call
from lucid_codegen.runtime.native_plan import NativeProgram, NotEligible
from lucid_codegen.runtime.plan_kernels import precompile_loops, precompile_plan, runner_ready
from lucid_codegen.runtime.steps import make_step
from lucid_codegen.runtime.threads import get_num_threads

#: ``LUCID_NATIVE_PLAN=0`` runs plans step by step from Python (for comparison)
NATIVE_PLANS = os.environ.get("LUCID_NATIVE_PLAN", "1").strip().lower() not in ("0", "false", "off", "no")
MAX_PROGRAMS = 4  # native programs kept per plan and thread (one per set of input layouts)


class ReusedBuffers:
    """A kernel step writing into buffers allocated once per calling thread (``keep``:
    outputs that never leave the plan), or, for outputs that do, into the previous call's
    buffers when nobody holds them any more (exact CPython reference counts), else new
    ones: a big result then costs no fresh pages. Either way the kernel call is prepared
    once per thread and layout (``bind``)."""

    def __init__(self, step, types, keep: bool = True):
        self.step, self.types, self.keep = step, types, keep
        self.local = threading.local()

    def __call__(self, *arrays):
        local = self.local
        bufs = getattr(local, "bufs", None)
        if bufs is None:
            local.bound = None
            bufs = local.bufs = [np.empty(shape, dtype) for shape, dtype in self.types]
        elif not self.keep:
            for i in range(len(bufs)):
                if getrefcount(bufs[i]) > 2:  # this list and the call's argument: else held
                    bufs = local.bufs = [np.empty(shape, dtype) for shape, dtype in self.types]
                    break
        bound = local.bound  # None: not tried yet; False: not bindable
        if bound:  # same layouts as last time: the prepared call
            layouts, runner = bound
            if [(a.shape, a.strides, a.dtype) for a in arrays] == layouts:
                return runner(arrays, bufs)
        results = self.step.call_into(bufs, *arrays)
        bind = getattr(self.step, "bind", None)
        if bind is not None and bound is None:
            runner = bind(arrays, bufs)
            local.bound = ([(a.shape, a.strides, a.dtype) for a in arrays], runner) if runner else False
        return results


class WritesIntoInputs:
    """A kernel step some of whose outputs (``positions``) go straight into donated
    input arrays, passed after the step's ``n_reads`` reads. An array whose layout the
    kernel cannot write (``step.can_write_into``) gets a buffer of the step instead, for
    the plan to copy at the end of the call. The other outputs: buffers kept per thread
    when ``keep[p]`` (they never leave the plan), else new ones."""

    def __init__(self, step, types, n_reads: int, positions, keep):
        self.step, self.types, self.n_reads = step, types, n_reads
        self.positions, self.keep = tuple(positions), tuple(keep)
        self.local = threading.local()

    def __call__(self, *arrays):
        step, n = self.step, self.n_reads
        outs = [None] * len(self.types)
        for p, target in zip(self.positions, arrays[n:]):
            if step.can_write_into(target):
                outs[p] = target
        for p, out in enumerate(outs):
            if out is None:
                outs[p] = self._kept(p) if self.keep[p] else np.empty(*self.types[p])
        return step.call_into(outs, *arrays[:n])

    def _kept(self, p: int) -> np.ndarray:
        """This thread's buffer for output ``p`` (allocated when first needed: a donated
        output written in place never needs one)."""
        bufs = getattr(self.local, "bufs", None)
        if bufs is None:
            bufs = self.local.bufs = [None] * len(self.types)
        if bufs[p] is None:
            bufs[p] = np.empty(*self.types[p])
        return bufs[p]


#: native kernel calls made by all plans of this process (``kernel_launches()``); a
#: list, not a class attribute: assigning one of those would invalidate the attribute
#: caches of every plan object at every call
_LAUNCHES = [0]


def _last_program_runner(local, n_kernels: int):
    """``run(arrays)``: the outputs of this thread's native program of the last call
    (``local.last``) when it takes ``arrays`` (built for the thread count now), counted
    as ``n_kernels`` launches; else None, nothing run. (``Plan.__call__`` inlines it.)"""
    def run(arrays):
        last = getattr(local, "last", None)
        if last is None or last.num_threads != get_num_threads():
            return None
        outs = last.run(arrays)
        if outs is not None:
            _LAUNCHES[0] += n_kernels
        return outs
    return run


def _last_program_single_runner(local, n_kernels: int):
    """``run(arrays)``: ``_last_program_runner``'s one output (a plan of one output, no
    donated inputs), or None, nothing run. A program whose output is its one buffer
    (``NativeProgram.one_buffer``) is called here directly, a Python call less on a
    compiled function's hot path."""
    def run(arrays):
        last = getattr(local, "last", None)
        if last is None or last.num_threads != get_num_threads():
            return None
        if last.one_buffer:
            bufs = last.buffers
            if getrefcount(bufs[0]) > 2:  # the caller still holds last call's output
                bufs[0] = np.empty(*last.escaping_types[0])
            out = bufs[0]
            if last.call(*arrays, out) is not last.ran:
                return None
            _LAUNCHES[0] += n_kernels
            return out
        outs = last.run(arrays)
        if outs is None:
            return None
        _LAUNCHES[0] += n_kernels
        return outs[0]
    return run


class Plan(Executable):
    """A fused graph as native kernels (``lucid_ir.executable.Executable``)."""

    #: whether kernels may write outputs straight into donated inputs (a CheckedPlan
    #: guards buffers of its own, so it copies)
    writes_in_place = True
    _bundle = None  # (set by ``__init__`` until the first call)

    def __new__(cls, fused: Graph, in_place=None):
        # LUCID_CHECK_BOUNDS=1: decided once here; the checked plan guards every output
        if cls is Plan:
            from lucid_codegen.runtime import bounds
            if bounds.enabled():
                cls = bounds.CheckedPlan
        return super().__new__(cls)

    def __init__(self, fused: Graph, in_place=None):
        self.graph = fused
        #: the plan's kernels as one file of the cache (jit/bundle.py): read when the
        #: first kernel is loaded, written after the first run if it lacked any
        self._bundle = None
        if sum(node.op == "kernel" for node in fused.nodes) >= 2:  # (else one entry already)
            self._bundle = Bundle(f"{type(self).__name__} {sorted((in_place or {}).items())}\n"
                                  f"{format_graph(fused)}")
            with self._bundle.scope():
                self._build(fused, in_place)
        else:
            self._build(fused, in_place)

    def _build(self, fused: Graph, in_place) -> None:
        precompile_plan(fused)  # its GEMMs' objects compiled in parallel, then linked below
        slot: dict = {}
        for v in fused.inputs:
            slot.setdefault(v, len(slot))
        self.n_inputs = len(fused.inputs)
        self.input_slots = [slot[v] for v in fused.inputs]
        self.steps = []
        self.kinds = []
        self.step_nodes = []
        out_types = []
        constants = {}
        for node in fused.nodes:
            fn, kind = make_step(node)
            for v in node.outs:
                slot[v] = len(slot)
            if kind == "constant":
                constants[slot[node.out]] = fn
                continue
            self.kinds.append(kind)
            self.step_nodes.append(node)
            out_types.append([(v.shape, v.dtype) for v in node.outs])
            reads = getattr(fn, "inputs", node.inputs)  # a gemm names its operands' order
            self.steps.append((fn, tuple(slot[v] for v in reads), tuple(slot[v] for v in node.outs)))
        self.n_slots = len(slot)
        #: ``[(output j, input i)]``: output j's values go into ``arrays[i]``
        self.donations = donations(fused, in_place)
        self.donated_types = {j: (fused.outputs[j].shape, np.dtype(fused.outputs[j].dtype))
                              for j, _ in self.donations}
        self.donated_inputs = {i for _, i in self.donations}
        direct = {}
        if self.donations and self.writes_in_place:  # (an empty output: nothing to write)
            order, direct = plan_donations(self.steps, self.kinds, self.input_slots,
                                           [slot[v] for v in fused.outputs],
                                           [(j, i) for j, i in self.donations if fused.outputs[j].type.size])
            self.steps, self.kinds, self.step_nodes, out_types = (
                [x[k] for k in order] for x in (self.steps, self.kinds, self.step_nodes, out_types))
            moved = {k: n for n, k in enumerate(order)}
            direct = {j: (moved[k], p) for j, (k, p) in direct.items()}
        #: the outputs that kernels write straight into their donated inputs
        self.in_place_direct = set(direct)
        self.n_kernels = sum(kind != "view" for kind in self.kinds)
        self.constants = list(constants.items())
        # outputs that are inputs or constants, or views of them, are copied: callers own
        # what they get
        aliases = set(self.input_slots) | set(constants)
        for (_, ins, outs), kind in zip(self.steps, self.kinds):
            if kind == "view" and aliases.intersection(ins):
                aliases.update(outs)
        self.outputs = [(slot[v], slot[v] in aliases) for v in fused.outputs]
        # a kernel whose outputs never leave the plan (not outputs, nor viewed by one)
        # writes into buffers kept from call to call: no allocation, no page faults
        escapes = {s for s, _ in self.outputs}
        for (_, ins, outs), kind in reversed(list(zip(self.steps, self.kinds))):
            if kind == "view" and escapes.intersection(outs):
                escapes.update(ins)
        writes = {}  # step -> [(output position, donated input slot)]
        for j, i in self.donations:
            if j in direct:
                k, p = direct[j]
                writes.setdefault(k, []).append((p, self.input_slots[i]))
        self.exec_steps = []  # what runs (a CheckedPlan wraps the plain steps instead)
        for k, ((fn, ins, outs), kind, types) in enumerate(zip(self.steps, self.kinds, out_types)):
            if k in writes:
                positions, targets = zip(*writes[k])
                fn = WritesIntoInputs(fn, types, len(ins), positions,
                                      [p in positions or o not in escapes for p, o in enumerate(outs)])
                ins = ins + targets
            elif kind != "view" and hasattr(fn, "call_into") and all(0 not in s for s, _ in types):
                fn = ReusedBuffers(fn, types, keep=not escapes.intersection(outs))
            self.exec_steps.append((fn, ins, outs))
        self._local = threading.local()   # this thread's native programs, and the last one run
        self._run_last = _last_program_runner(self._local, self.n_kernels)
        # one kernel reading the inputs in order and giving the outputs: called directly
        # when no native program runs the call (the first call, or none is eligible)
        self.single, self.single_splits = None, False
        if (len(self.steps) == 1 and not self.constants and not self.donations
                and list(self.steps[0][1]) == self.input_slots
                and [s for s, _ in self.outputs] == list(self.steps[0][2])
                and not any(copy for _, copy in self.outputs)):
            self.single = self.exec_steps[0][0]
            # (eager calls: a GEMM that splits across threads is faster from a native
            # program, its parts posted natively, than from the direct call)
            self.single_splits = getattr(self.steps[0][0], "splits", False)
        precompile_loops(self)  # the first run's loop kernels, compiled in parallel

    def __call__(self, arrays):
        last = getattr(self._local, "last", None)  # (``run_prepared``, inline: calls are hot)
        if last is not None and last.num_threads == get_num_threads():
            outs = last.run(arrays)
            if outs is not None:
                _LAUNCHES[0] += self.n_kernels
                return self._deliver(arrays, outs) if self.donations else outs
        if self._bundle is not None:
            return self._first_call(arrays)
        return self._call(arrays)

    def _first_call(self, arrays):
        """The first call in the bundle's scope (the loop kernels it plans for the arrays'
        layouts are the plan's too), then the bundle written if it lacked any kernel."""
        bundle, self._bundle = self._bundle, None
        if bundle is None:  # (another thread's first call took it)
            return self._call(arrays)
        try:
            with bundle.scope():
                return self._call(arrays)
        finally:
            bundle.close()

    def run_prepared(self, arrays):
        """The outputs, when this thread's native program of the last call takes
        ``arrays``; else None, having run nothing. The program checks natively that they
        are numpy arrays of its layouts (as many as the plan's inputs; donated ones
        writeable and passed once), so a caller that knows nothing more of ``arrays``
        may call this first and ``plan(arrays)`` (the general call) when it says None."""
        outs = self._run_last(arrays)
        if outs is not None and self.donations:
            return self._deliver(arrays, outs)
        return outs

    def single_prepared(self):
        """``run_prepared`` as a closure over what it reads, for a caller's hot path (a
        compiled function's call site), giving the one output itself: ``run(arrays)``
        -> the output array, or None as ``run_prepared`` would say it. For a plan of
        exactly one output that writes no donated input; else None."""
        if self.donations or len(self.outputs) != 1:
            return None
        return _last_program_single_runner(self._local, self.n_kernels)

    def check_prepared(self, arrays) -> bool:
        """Whether ``run_prepared`` would take arrays whose first ones are ``arrays`` (the
        same native checks, over these only; nothing runs): for a caller that computes
        the last inputs only once it knows the call will run."""
        last = getattr(self._local, "last", None)
        return (last is not None and last.num_threads == get_num_threads()
                and last.check(*arrays) is last.ran)

    def _call(self, arrays):
        """The general call: the program for these layouts and thread count (built from
        this step-by-step run on the second call with them, or a later one while the plan
        runner's library compiles in the background: ``runner_ready``), else step
        by step."""
        _LAUNCHES[0] += self.n_kernels
        if len(arrays) != self.n_inputs:
            check_inputs(self.graph, arrays)
        if self.donations:
            self._check_donated(arrays)
        local = self._local
        programs = getattr(local, "programs", None)
        program = None
        if programs is not None:
            nt = threads.get_num_threads()  # a program splits its big GEMMs for this many threads
            try:
                key = (nt, *[(a.shape, a.strides, a.dtype) for a in arrays])
            except AttributeError:
                key = None
            program = programs.get(key)
            if program:
                outs = program.run(arrays)
                if outs is not None:
                    local.last = program
                    return self._deliver(arrays, outs) if self.donations else outs
                if program.stale:  # built for what no longer holds (its guards): a new one
                    del programs[key]
                    program = None
                    if getattr(local, "last", None) is program:
                        local.last = None
                # else not numpy arrays (duck types, subclasses) of its layouts: step by step
        elif NATIVE_PLANS and type(self) is Plan:  # from the next call on (kernels are bound now)
            local.programs = {}
        if self.single is not None and (programs is None or program is False):
            return self.single(*arrays)  # no program: the one kernel's own call
        env = self.execute(arrays)
        if (program is None and programs is not None and key is not None and len(programs) < MAX_PROGRAMS
                and runner_ready()):   # (else compiling in the background: a later call)
            program = programs[key] = self._native_program(env, nt)  # False: not eligible
            if program:
                local.last = program
        outs = [np.array(env[s]) if copy else env[s] for s, copy in self.outputs]
        return self._deliver(arrays, outs) if self.donations else outs

    def _check_donated(self, arrays):
        """ValueError unless every donated input is a writeable numpy array of its
        output's shape and dtype, passed for no other input. (A donated array must share
        no memory with another input either: only the same object is caught here.)"""
        ids = set()
        for j, i in self.donations:
            a, (shape, dtype) = arrays[i], self.donated_types[j]
            if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype != dtype:
                got = f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(f"in_place: output {j} ({dtype}{list(shape)}) cannot be written "
                                 f"into input {i}: it is {got}")
            if not a.flags.writeable:
                raise ValueError(f"in_place: input {i} (receiving output {j}) is read-only")
            ids.add(id(a))
        if len(ids) < len(self.donations) or any(
                id(a) in ids for k, a in enumerate(arrays) if k not in self.donated_inputs):
            raise ValueError("in_place: a donated input array is also passed for another input")

    def _deliver(self, arrays, outs):
        """Output j's values into ``arrays[i]`` (a copy, unless a kernel wrote them there),
        and ``arrays[i]`` as output j. Runs after every kernel and every output copy."""
        for j, i in self.donations:
            target = arrays[i]
            if outs[j] is not target:
                np.copyto(target, outs[j])
                outs[j] = target
        return outs

    def _native_program(self, env, num_threads: int):
        """This thread's ``NativeProgram`` for these layouts and thread count, or False
        (not eligible)."""
        kept = {}
        for fn, _, outs in self.exec_steps:
            keep = getattr(fn, "keep", False)
            for p, o in enumerate(outs):
                kept[o] = keep[p] if isinstance(keep, tuple) else keep
        try:
            return NativeProgram(self, env, kept, num_threads)
        except NotEligible:
            return False

    def execute(self, arrays) -> list:
        """Run every step; return all slots (the kernels back to back, nothing else)."""
        env = [None] * self.n_slots
        for s, a in zip(self.input_slots, arrays):
            env[s] = a
        for s, value in self.constants:
            env[s] = value
        for fn, ins, outs in self.exec_steps:
            results = fn(*[env[i] for i in ins])
            for s, r in zip(outs, results):
                env[s] = r
        return env

    def single_output(self):
        """``arrays -> the one output``, as lean as it gets for a one-kernel plan (eager
        ops); the general call otherwise."""
        step, n = self.single, self.n_kernels
        if step is None or len(self.outputs) != 1:
            return lambda arrays: self(arrays)[0]
        direct = getattr(self.steps[0][0], "direct", None)  # the raw step's lean call

        def run(arrays):
            _LAUNCHES[0] += n
            return step(*arrays)[0]

        if direct is not None:
            def run_direct(*arrays):
                _LAUNCHES[0] += n
                return direct(*arrays)
            run.direct = run_direct  # ``run.direct(*arrays) -> output``, one call less
        return run

    def llvm_text(self) -> str:
        from lucid_codegen.runtime.introspect import plan_llvm_text
        return plan_llvm_text(self)

    def asm_text(self) -> str:
        from lucid_codegen.runtime.introspect import plan_asm_text
        return plan_asm_text(self)


def eager_runner(fused: Graph, arrays, scalars=()):
    """``run(*arrays) -> array`` for one eager call signature (``arrays`` are examples
    of its layouts; positions in ``scalars`` take Python floats). A plan of one loop
    kernel is one trampoline call (``eager_call``), a one-GEMM plan its direct entry, a
    reshape or transpose a numpy view of its input (no copy, as in PyTorch); anything
    else (several kernels, work that splits across threads, bounds checking) the plan's
    general call."""
    plan = Plan(fused)
    run = None
    if plan.kinds and set(plan.kinds) == {"view"} and not plan.constants and len(plan.input_slots) == 1 \
            and all(list(ins) == [prev] for (_, ins, _), prev in
                    zip(plan.steps, plan.input_slots + [outs[0] for _, _, outs in plan.steps])):
        views = [fn for fn, _, _ in plan.steps]  # reshapes, transposes, slices: numpy views,
        if len(views) == 1:                      # as PyTorch's views are
            view = views[0]
            return lambda a: view(a)[0]

        def run(a):
            for view in views:
                (a,) = view(a)
            return a
        return run
    if type(plan) is Plan and plan.n_kernels == 1 and not plan.constants and len(plan.outputs) == 1:
        run = _viewed_fast_call(plan, arrays, scalars)
        step, reads, outs = plan.steps[0]
        if run is None and plan.single is not None and not scalars and not plan.single_splits:
            run = gemm_fast_call(step, counter=_LAUNCHES) if hasattr(step, "gemm") else None
            if run is not None:  # (for callers that skip the signature lookup: layouts checked)
                run.checked = gemm_fast_call(step, counter=_LAUNCHES, checked=arrays)
            if run is None and getattr(step, "direct", None) is not None:
                direct = step.direct

                def run(*arrays):
                    _LAUNCHES[0] += 1
                    return direct(*arrays)
    if run is not None:
        return run
    if not scalars:
        general = lambda *arrays: plan(list(arrays))[0]  # noqa: E731
        step = plan.steps[0][0]
        if plan.single is not None and plan.single_splits and hasattr(step, "gemm") and _short(step):
            return _whole_at_one_thread(gemm_fast_call(step, counter=_LAUNCHES, whole=True), general)
        return general
    return lambda *arrays: plan([np.asarray(a) if k in scalars else a for k, a in enumerate(arrays)])[0]


def _short(step) -> bool:
    """Whether a GEMM step is short enough (under 5 splits' worth of one-thread time:
    F.linear 1x784 -> 256 is, 64x784 -> 256 is not) for the ~2 µs of the plan's general
    call to matter next to it."""
    from lucid_codegen.runtime import work_split
    return (work_split.gemm_seconds(step.m, step.n, step.k, step.gemm.dtype.itemsize)
            < 5 * work_split.GEMM_SPLIT_SECONDS)


def _whole_at_one_thread(fast, general):
    """``run(*arrays)``: a GEMM worth splitting across threads takes ``general`` (the
    plan's native program posts its parts) when the pool has several threads, and
    ``fast`` (the one-builtin call on this thread) when it has one: the same bits either
    way (a split never moves a row between the dot path and the general one)."""
    if fast is None:
        return general
    pool = threads._POOL

    def run(*arrays):
        if pool._size == 1:  # (None until the pool's size is first read: the general call)
            return fast(*arrays)
        return general(*arrays)
    return run


def _viewed_fast_call(plan: Plan, arrays, scalars):
    """The trampoline call (``eager_call.fast_call``) of a plan that is one loop or
    index kernel with views around it: each input reaches the kernel once, through
    views that keep its data pointer (a reshape, a broadcast: the kernel's template has
    the viewed strides, so the trampoline takes the caller's array as it is), and the
    output is the kernel's, or a reshape of it with the same bytes (allocated in its
    final shape). None when the plan is not of that form, the views move a pointer, or
    the work splits across threads."""
    k = next(n for n, kind in enumerate(plan.kinds) if kind != "view")  # the kernel's step
    step, reads, outs = plan.steps[k]
    kernel = getattr(step, "kernel", None)
    if kernel is None or len(outs) != 1 or plan.outputs[0][1]:
        return None
    env = dict(zip(plan.input_slots, [np.asarray(a, np.float64) if j in scalars else a
                                      for j, a in enumerate(arrays)]))
    origin = {s: j for j, s in enumerate(plan.input_slots)}  # slot -> the graph input it views
    value = plan.step_nodes[k].outs[0]
    out = np.empty(value.shape, value.dtype)
    env[outs[0]] = out
    for n, (view, ins, view_outs) in enumerate(plan.steps):
        if n == k:
            continue
        if len(ins) != 1 or len(view_outs) != 1 or ins[0] not in env:
            return None
        (env[view_outs[0]],) = view(env[ins[0]])
        if ins[0] in origin:
            origin[view_outs[0]] = origin[ins[0]]
    final = env.get(plan.outputs[0][0])
    if sorted(origin.get(r, -1) for r in reads) != list(range(len(arrays))) or final is None or (
            final is not out and not (final.flags.c_contiguous and final.nbytes == out.nbytes
                                      and final.ctypes.data == out.ctypes.data)):
        return None
    for r in reads:
        j = origin[r]
        if j in scalars and r != plan.input_slots[j]:
            return None  # (a scalar is read from its float object as it is)
        if j not in scalars and env[r].ctypes.data != arrays[j].ctypes.data:
            return None  # a view that moves the pointer (a slice from an offset)
    viewed = [env[reads[[origin[r] for r in reads].index(j)]] for j in range(len(arrays))]
    if _splits(viewed, outs, kernel):
        return None
    order = [[origin[r] for r in reads].index(j) for j in range(len(arrays))]  # input -> operand
    run = fast_call(kernel, viewed, scalars, order, counter=_LAUNCHES, out_shape=final.shape)
    if run is not None:  # (and for callers that skip the signature lookup: its layouts checked)
        run.checked = fast_call(kernel, viewed, scalars, order, counter=_LAUNCHES, out_shape=final.shape,
                                checked=arrays)
    return run


def _splits(arrays, outs, kernel) -> bool:
    """Whether a one-kernel eager call has enough work to split across threads
    (``work_split.loop_splits`` of its ``work_bytes``, its output counted as
    big as its largest input): then it takes the plan's general call, whose native
    program splits it natively, not the one-thread trampoline."""
    from lucid_codegen.runtime import work_split
    if getattr(kernel, "decides_splits", False):
        return False
    sizes = [getattr(a, "nbytes", 0) for a in arrays]
    elements = max([getattr(a, "size", 0) for a in arrays], default=0)
    structure = getattr(kernel, "structure", None)
    ops = [node[0] for node in structure.nodes] if structure is not None else []
    return work_split.loop_splits(work_split.work_bytes(sum(sizes) + max(sizes, default=0) * len(outs),
                                                        elements, ops))


def kernel_launches() -> int:
    """How many native kernels plans have called so far (for tests and curious users:
    eager ``F.linear`` with bias is one)."""
    return _LAUNCHES[0]


def in_place(graph: Graph):
    """``run(arrays, outs, prepared=None) -> None`` running a purely elementwise graph as
    one kernel that writes ``outs`` (each may be one of the inputs, same layout).
    ``prepared`` is a dict the caller keeps per set of buffers (an optimiser's state for
    one parameter): the call is prepared there once, then only pointers are patched."""
    from lucid_codegen.kernels.elementwise import ElementwiseKernel
    kernel = ElementwiseKernel.for_graph(graph)

    def run(arrays, outs, prepared=None):
        _LAUNCHES[0] += 1
        if prepared is not None:
            bound = prepared.get("call")
            if bound and [(a.shape, a.strides) for a in arrays] == bound[0]:
                bound[1](arrays, outs)
                return
        kernel(arrays, outs=outs)
        if prepared is not None and "call" not in prepared:
            runner = kernel.bind(arrays, outs)
            prepared["call"] = ([(a.shape, a.strides) for a in arrays], runner) if runner else None
    return run
