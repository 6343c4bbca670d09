"""The host CPU as LLVM sees it: one target machine, created once per process.

Every kernel module is given this machine's triple and data layout, so LLVM emits
vector code for the host (AVX2 + FMA on the development machines) instead of
generic SSE.

>>> from lucid_codegen.jit.target import host_target
>>> host_target().cpu_name  # doctest: +SKIP
'znver3'
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import llvmlite
import llvmlite.binding as llvm


@dataclass(frozen=True)
class HostTarget:
    """The native target machine plus the facts kernels specialise on."""

    machine: llvm.TargetMachine
    triple: str
    data_layout: str
    cpu_name: str
    cpu_features: str

    @property
    def has_avx512(self) -> bool:
        return "+avx512f" in self.cpu_features.split(",")

    @property
    def vector_bytes(self) -> int:
        """Width of the widest vector register kernels should use."""
        feats = self.cpu_features.split(",")
        if "+avx512f" in feats:
            return 64
        if "+avx" in feats:
            return 32
        return 16

    @property
    def fingerprint(self) -> str:
        """A short hash naming this CPU and LLVM build, part of every cache key."""
        text = "|".join((self.triple, self.cpu_name, self.cpu_features, llvmlite.__version__,
                         ".".join(map(str, llvm.llvm_version_info))))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def host_target() -> HostTarget:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    triple = llvm.get_process_triple()
    target = llvm.Target.from_triple(triple)
    cpu = llvm.get_host_cpu_name()
    features = llvm.get_host_cpu_features().flatten()
    machine = target.create_target_machine(cpu=cpu, features=features, opt=3,
                                           reloc="static", codemodel="jitdefault")
    return HostTarget(machine, triple, str(machine.target_data), cpu, features)
