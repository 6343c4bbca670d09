"""lucid_codegen: kernels of a fused graph as native code (llvmlite), their cache and runtime.

The middle layer: it imports ``lucid_ir`` (graphs and ops), never ``lucid`` (the user API
above it). ``__version__`` is the code generator's own version; the kernel cache puts it
into every key (``cache.full_key``), with the source stamps of the generators, so a
release of ``lucid`` whose code generator is unchanged keeps its cache, and a new code
generator never loads another one's kernels.

>>> import lucid_codegen
>>> lucid_codegen.__version__
'0.1.0'
"""
#: the code generator's version: part of every kernel cache key (``cache.full_key``)
__version__ = "0.1.0"
