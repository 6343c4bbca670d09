"""GEMM specs for the kernel tests: the fixed chains ``act(alpha·A·B + bias) + R`` or
``where(R > 0, act(alpha·A·B + bias), 0)`` as epilogue subgraphs (``Epilogue.chain``),
remembering the chain so a numpy reference can compute the same thing."""
from __future__ import annotations

from lucid_codegen.gemm.kernel import GemmSpec
from lucid_codegen.gemm.epilogue import Epilogue

_CHAINS: dict = {}


def chain_spec(dtype: str, *, bias: bool = False, epilogue: str = "none", residual: bool = False,
               gate: bool = False, accumulate: bool = False, gate_a: bool = False, blocking=None) -> GemmSpec:
    """A ``GemmSpec`` whose epilogue is ``Epilogue.chain(dtype, bias, epilogue, residual, gate)``."""
    spec = GemmSpec(dtype, Epilogue.chain(dtype, bias=bias, activation=epilogue, residual=residual, gate=gate),
                    accumulate=accumulate, gate_a=gate_a, blocking=blocking)
    _CHAINS[spec] = (epilogue, gate)
    return spec


def activation(spec: GemmSpec) -> str:
    """The chain's activation ("none" for a spec not made by ``chain_spec``)."""
    return _CHAINS.get(spec, ("none", False))[0]


def gated(spec: GemmSpec) -> bool:
    """Whether the chain gates by R (relu's backward mask) instead of adding it."""
    return _CHAINS.get(spec, ("none", False))[1]
