"""Every primitive op of the IR, in named groups. Passes dispatch on group membership.

>>> "exp" in ELEMENTWISE and "sum" in REDUCTION
True
>>> group_of("slice"), group_of("gather"), group_of("random_uniform")
('movement', 'indexing', 'elementwise')
"""
UNARY = ("neg", "exp", "log", "tanh", "sigmoid", "sqrt", "abs", "sign", "cast",
         "logical_not", "bitwise_not",
         "log2", "log1p", "expm1", "rsqrt", "sin", "cos", "erf",   # float only
         "floor", "ceil", "round",                                 # ints: identity
         "isnan", "isfinite")                                      # give bool
BINARY = ("add", "sub", "mul", "div", "maximum", "minimum", "floor_divide", "remainder", "pow",
          "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor")
COMPARISON = ("gt", "ge", "lt", "le", "eq", "ne")  # give bool
SELECT = ("select",)                        # select(c, a, b) = a where the bool c is true else b
# counter-based random numbers: a function of an int64 key and the element's position in
# the op's shape, so a kernel computes them only in a loop over exactly that shape
RANDOM = ("random_uniform", "random_normal")
ELEMENTWISE = UNARY + BINARY + COMPARISON + SELECT + RANDOM
REDUCTION = ("sum", "mean", "max", "min", "prod")
SCAN = ("argmax", "argmin", "cumsum",       # along one axis: native kernels of their own
        "cumprod", "cumargmax", "cumargmin", "argsort")  # plans run their numpy reference
MOVEMENT = ("reshape", "transpose", "broadcast_to", "stop_gradient", "slice")  # views: no data moves
INDEXING = ("concat", "gather", "scatter_add", "embed", "embed_sum")  # new arrays by position: kernels of their own
MATMUL = ("matmul",)
SOURCE = ("constant", "iota")
COLLECTIVE = ("all_reduce", "broadcast")  # across ranks: plans call the registered communicator
ATTENTION = ("attention", "attention_backward")  # fused softmax(q·kᵀ)·v: native kernels of their own
ALL_OPS = ELEMENTWISE + REDUCTION + SCAN + MOVEMENT + INDEXING + MATMUL + SOURCE + COLLECTIVE + ATTENTION


def group_of(op: str) -> str:
    for name, members in (("elementwise", ELEMENTWISE), ("reduction", REDUCTION), ("scan", SCAN),
                          ("movement", MOVEMENT), ("indexing", INDEXING), ("matmul", MATMUL), ("source", SOURCE),
                          ("collective", COLLECTIVE), ("attention", ATTENTION)):
        if op in members:
            return name
    raise KeyError(f"unknown op {op!r}")
