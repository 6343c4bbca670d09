"""Donated inputs: which outputs of a plan a kernel may write straight into an input's
array (``Plan(in_place={output: input})``), and in which step order.

A compiled training step returns the new parameters as outputs donated to the
parameters' own arrays; when the rule below holds, the kernel computing a new value
writes it over the old one (no copy, no extra buffer); otherwise the plan computes it
into a buffer and copies it into the input at the end of the call.
"""
from __future__ import annotations

import heapq

from lucid_ir.graph import Graph


def donations(graph: Graph, in_place) -> list:
    """``in_place`` (``{output index: input index}`` or None) checked against the graph:
    ``[(j, i)]`` sorted; ValueError for an index out of range, an input given twice, or
    an output whose type is not its input's."""
    pairs = sorted((int(j), int(i)) for j, i in dict(in_place or {}).items())
    taken = set()
    for j, i in pairs:
        if not 0 <= j < len(graph.outputs):
            raise ValueError(f"in_place: no output {j} (the graph has {len(graph.outputs)})")
        if not 0 <= i < len(graph.inputs):
            raise ValueError(f"in_place: no input {i} (the graph has {len(graph.inputs)})")
        if i in taken:
            raise ValueError(f"in_place: input {i} would receive more than one output")
        taken.add(i)
        out, inp = graph.outputs[j].type, graph.inputs[i].type
        if out != inp:
            raise ValueError(f"in_place: output {j} ({out}) cannot be written into input {i} "
                             f"({inp}): shapes or dtypes differ")
    return pairs


def plan_donations(steps, kinds, input_slots, output_slots, pairs):
    """``(order, direct)``: a step order, and ``{output j: (step index in the original
    order, output position)}`` for the donations ``pairs`` that a kernel can write straight
    into their input's array. The safety rule, for output j into input i:

    - output j is a kernel's output, and no other output is it or a view of it;
    - input i is not also a plan output (or viewed by one: read when the call ends), and
      is given once among the inputs;
    - the kernel reads input i only where it writes: directly (never through a view) at a
      position of its ``same_element_reads`` (an elementwise operand of the output's
      shape; a GEMM's residual folded in once), so each element is read before the same
      element is overwritten and by nothing after;
    - every other kernel reading input i, or any view of it, runs before that kernel. The
      order is the original one moved as little as possible (a stable topological sort);
      a donation that would need a kernel before one of its own inputs is left to the
      copy at the end of the call.
    """
    root = {s: s for s in input_slots}  # slot -> the input it is (a view of)
    base = {}                           # slot -> the slot it is a view of, transitively
    made = {}                           # slot -> the step making it
    for k, ((_, ins, outs), kind) in enumerate(zip(steps, kinds)):
        for o in outs:
            made[o] = k
        if kind == "view":
            base[outs[0]] = base.get(ins[0], ins[0])
            if ins[0] in root:
                root[outs[0]] = root[ins[0]]
    deps = [{made[s] for s in ins if s in made} for _, ins, _ in steps]
    readers = {}  # input slot -> the kernels reading it or a view of it
    for k, ((_, ins, _), kind) in enumerate(zip(steps, kinds)):
        for s in ins:
            if kind != "view" and s in root:
                readers.setdefault(root[s], set()).add(k)
    read_at_end = {root[s] for s in output_slots if s in root}
    direct = {}
    for j, i in pairs:
        s, target = output_slots[j], input_slots[i]
        k = made.get(s)
        if (k is None or kinds[k] == "view" or input_slots.count(target) != 1 or target in read_at_end
                or sum(base.get(o, o) == s for o in output_slots) != 1):
            continue
        fn, ins, outs = steps[k]
        safe = getattr(fn, "same_element_reads", ())
        if any(root.get(r) == target and not (r == target and q in safe) for q, r in enumerate(ins)):
            continue
        first = readers.get(target, set()) - {k}
        if any(_depends(deps, r, k) for r in first):
            continue
        deps[k].update(first)
        direct[j] = (k, outs.index(s))
    return _stable_order(deps), direct


def _depends(deps, a: int, b: int) -> bool:
    """Whether step ``a`` needs step ``b`` to have run (``deps``: direct needs)."""
    seen, stack = set(), [a]
    while stack:
        k = stack.pop()
        if k == b:
            return True
        if k not in seen:
            seen.add(k)
            stack.extend(deps[k])
    return False


def _stable_order(deps) -> list:
    """A topological order of the steps, each as early in the original order as its
    needs allow."""
    waiting = [len(d) for d in deps]
    users = [[] for _ in deps]
    for k, d in enumerate(deps):
        for x in d:
            users[x].append(k)
    ready = [k for k, n in enumerate(waiting) if n == 0]
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users[k]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    assert len(order) == len(deps), "a cycle among plan steps"
    return order
