"""Every primitive op of the IR, in named groups. Passes dispatch on group membership.

>>> "exp" in ELEMENTWISE and "sum" in REDUCTION
True
"""
UNARY = ("neg", "exp", "log", "tanh", "sigmoid", "sqrt", "cast")
BINARY = ("add", "sub", "mul", "div", "maximum")
COMPARISON = ("gt", "ge", "lt", "le", "eq")  # give 1.0 or 0.0 in the operands' dtype
SELECT = ("select",)                        # select(c, a, b) = a where c != 0 else b
ELEMENTWISE = UNARY + BINARY + COMPARISON + SELECT
REDUCTION = ("sum", "mean", "max")
MOVEMENT = ("reshape", "transpose", "broadcast_to", "stop_gradient")  # views: no data moves
MATMUL = ("matmul",)
SOURCE = ("constant", "iota")
ALL_OPS = ELEMENTWISE + REDUCTION + MOVEMENT + MATMUL + SOURCE


def group_of(op: str) -> str:
    for name, members in (("elementwise", ELEMENTWISE), ("reduction", REDUCTION),
                          ("movement", MOVEMENT), ("matmul", MATMUL), ("source", SOURCE)):
        if op in members:
            return name
    raise KeyError(f"unknown op {op!r}")
