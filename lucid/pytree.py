"""Flattening nested tuples, lists and dicts of arguments and results (a tiny pytree).

>>> leaves, tree = flatten(((1, [2, 3]), {"a": 4}))
>>> leaves
[1, 2, 3, 4]
>>> unflatten(tree, [5, 6, 7, 8])
((5, [6, 7]), {'a': 8})
"""
from __future__ import annotations


def flatten(obj):
    leaves: list = []
    return leaves, _walk(obj, leaves)


def _walk(x, leaves: list):
    # module-level, not a recursive closure: no reference cycle holding the arguments
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return ("tuple", tuple(_walk(v, leaves) for v in x))
    if isinstance(x, list):
        return ("list", tuple(_walk(v, leaves) for v in x))
    if isinstance(x, dict):
        keys = tuple(x.keys())
        return ("dict", keys, tuple(_walk(x[k], leaves) for k in keys))
    leaves.append(x)
    return None


def unflatten(tree, leaves):
    return _build(tree, iter(leaves))


def _build(t, it):
    # a module-level function: a recursive closure would form a reference cycle that
    # keeps the leaves (big result arrays) alive until the garbage collector runs
    if t is None:
        return next(it)
    if t[0] == "tuple":
        return tuple(_build(c, it) for c in t[1])
    if t[0] == "list":
        return [_build(c, it) for c in t[1]]
    return {k: _build(c, it) for k, c in zip(t[1], t[2])}
