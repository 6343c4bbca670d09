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

    def walk(x):
        if isinstance(x, tuple) and not hasattr(x, "_fields"):
            return ("tuple", tuple(walk(v) for v in x))
        if isinstance(x, list):
            return ("list", tuple(walk(v) for v in x))
        if isinstance(x, dict):
            keys = tuple(x.keys())
            return ("dict", keys, tuple(walk(x[k]) for k in keys))
        leaves.append(x)
        return None

    return leaves, walk(obj)


def unflatten(tree, leaves):
    it = iter(leaves)

    def build(t):
        if t is None:
            return next(it)
        if t[0] == "tuple":
            return tuple(build(c) for c in t[1])
        if t[0] == "list":
            return [build(c) for c in t[1]]
        return {k: build(c) for k, c in zip(t[1], t[2])}

    return build(tree)
