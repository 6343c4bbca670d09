"""From an LLVM module to machine code: the LLVM pipeline (``llvm``), the host target, the
compile pool, and the kernel cache on disk (``cache``)."""
