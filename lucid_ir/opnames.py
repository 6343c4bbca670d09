"""Every primitive op of the IR, in named groups: views of the ops' traits
(``lucid_ir.ops``; passes ask the traits, ``get_op(name).group``, directly).

>>> "exp" in ELEMENTWISE and "sum" in REDUCTION
True
>>> group_of("slice"), group_of("gather"), group_of("random_uniform")
('movement', 'indexing', 'elementwise')
"""
from .ops import all_ops, get_op


def _named(**traits) -> tuple[str, ...]:
    return tuple(d.name for d in all_ops() if all(getattr(d, k) == v for k, v in traits.items()))


# derived from the ops' traits (``lucid_ir.ops``): the table passes read is the ops' own
UNARY = _named(group="elementwise", kind="unary")            # cast, isnan, floor... included
BINARY = _named(group="elementwise", kind="binary")
COMPARISON = _named(group="elementwise", kind="comparison")  # give bool
SELECT = _named(group="elementwise", kind="select")          # select(c, a, b) = a where c else b
# counter-based random numbers: a function of an int64 key and the element's position in
# the op's shape, so a kernel computes them only in a loop over exactly that shape
RANDOM = _named(random=True)
ELEMENTWISE = UNARY + BINARY + COMPARISON + SELECT + RANDOM
REDUCTION = _named(group="reduction")
SCAN = _named(group="scan")                 # along one axis: native kernels or numpy plans
MOVEMENT = _named(group="movement")         # views: no data moves
INDEXING = _named(group="indexing")         # new arrays by position: kernels of their own
MATMUL = _named(group="matmul")
SOURCE = _named(group="source")
COLLECTIVE = _named(group="collective")     # across ranks: plans call the registered communicator
ATTENTION = _named(group="attention")       # fused softmax(q·kᵀ)·v: native kernels of their own
ALL_OPS = ELEMENTWISE + REDUCTION + SCAN + MOVEMENT + INDEXING + MATMUL + SOURCE + COLLECTIVE + ATTENTION


def group_of(op: str) -> str:
    if op not in ALL_OPS:
        raise KeyError(f"unknown op {op!r}")
    return get_op(op).group
