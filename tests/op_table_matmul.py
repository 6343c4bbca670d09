"""Op-table entries for the matrix products (lucid/products.py): ``matmul`` with
torch's full semantics (1-D operands, broadcast batch axes), ``mm``, ``bmm``, ``addmm``,
``baddbmm``, on shapes with 0, 1, primes, broadcasts and transposed/permuted views."""
from op_table import In, T, op

op("matmul_nd", lambda lib, x, y: lib.matmul(x, y), [
    [In((5,)), In((5,))],                       # dot
    [In((3,)), In((3, 4))], [In((4, 3)), In((3,))],      # vector-matrix, matrix-vector
    [In((7,)), In((2, 7, 3))], [In((2, 3, 7)), In((7,))],  # 1-D against a batch
    [In((2, 3, 5)), In((2, 5, 4))],             # bmm-shaped
    [In((2, 1, 3, 5)), In((4, 5, 2))],          # broadcast batch axes
    [In((1, 3, 5)), In((6, 5, 1))],             # 1-sized batch and matrix axes
    [T(2, 3, 5), In((2, 5, 4))],                # a permuted view (all axes reversed)
    [In((3, 2, 4)), T(3, 4, 2)],                # both operands permuted views
    [In((0, 3, 4)), In((4, 2))], [In((2, 3, 0)), In((2, 0, 4))],  # empty batch, K = 0
    [In((13, 11, 7)), In((7, 17))],             # primes, broadcast B
])
op("matmul_operator_nd", lambda lib, x, y: x.transpose(-1, -2) @ y.transpose(-1, -2), [
    [In((2, 5, 3)), In((2, 4, 5))], [In((3, 2, 3, 5)), In((1, 2, 4, 3))],
    [In((2, 6, 6)), In((6, 6))]])
op("mm", lambda lib, x, y: lib.mm(x, y), [[In((3, 4)), In((4, 5))], [T(4, 3), T(3, 2)],
                                         [In((1, 1)), In((1, 7))], [In((2, 0)), In((0, 3))]])
op("Tensor.mm", lambda lib, x, y: x.mm(y), [[In((2, 3)), In((3, 2))]])
op("bmm", lambda lib, x, y: lib.bmm(x, y), [[In((3, 2, 4)), In((3, 4, 5))], [T(4, 2, 3), T(4, 3, 2)],
                                           [In((1, 1, 1)), In((1, 1, 1))], [In((0, 2, 3)), In((0, 3, 2))]])
op("Tensor.bmm", lambda lib, x, y: x.bmm(y), [[In((2, 3, 4)), In((2, 4, 3))]])
op("Tensor.matmul", lambda lib, x, y: x.matmul(y), [[In((2, 3, 4)), In((4,))]])
op("rmatmul", lambda lib, y: [[1.0, 2.0], [3.0, 4.0]] @ y if lib.__name__ == "lucid"
   else lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=y.dtype) @ y, [[In((2, 3))]])
op("addmm", lambda lib, b, x, y: lib.addmm(b, x, y), [[In((5,)), In((3, 4)), In((4, 5))],
                                                     [In((3, 5)), T(3, 4), In((4, 5))],
                                                     [In((1, 5)), In((3, 4)), In((4, 5))]])
op("addmm_scaled", lambda lib, b, x, y: lib.addmm(b, x, y, beta=0.5, alpha=-2.0),
   [[In((5,)), In((3, 4)), In((4, 5))], [In((3, 1)), In((3, 4)), T(4, 5)]])
op("addmm_beta0", lambda lib, b, x, y: lib.addmm(b, x, y, beta=0, alpha=3.0),
   [[In((3, 5)), In((3, 4)), In((4, 5))]])
op("baddbmm", lambda lib, b, x, y: lib.baddbmm(b, x, y), [[In((2, 3, 5)), In((2, 3, 4)), In((2, 4, 5))],
                                                         [In((5,)), In((2, 3, 4)), In((2, 4, 5))]])
op("baddbmm_scaled", lambda lib, b, x, y: lib.baddbmm(b, x, y, beta=2.0, alpha=0.25),
   [[In((1, 3, 1)), T(2, 3, 4), In((2, 4, 5))]])
