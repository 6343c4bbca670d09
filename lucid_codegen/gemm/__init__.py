"""The GEMM: kernel generator (``kernel``), shared core, micro-kernel, packing, small-shape and
few-rows paths, epilogues, batched entry, and the Python calls."""
