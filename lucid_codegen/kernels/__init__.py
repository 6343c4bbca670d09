"""Loop kernels (elementwise, reduction, row, scan, index, attention) and the op emitters
(``lowering``, ``vector_*``) they share with the GEMM epilogue."""
