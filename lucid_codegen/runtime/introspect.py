"""LLVM IR and assembly of a plan's kernels, for ``lower(...).as_text`` and dumps."""
from __future__ import annotations

from lucid_codegen.jit import llvm as jit


def _kernel_modules(plan):
    """(title, llvmlite module) for each native kernel of the plan."""
    from lucid_codegen.runtime.attention_steps import AttentionStep
    from lucid_codegen.runtime.scan_steps import ScanStep
    from lucid_codegen.runtime.steps import GemmStep, KernelStep
    out = []
    for i, ((fn, _, _), kind) in enumerate(zip(plan.steps, plan.kinds)):
        if isinstance(fn, GemmStep):
            from lucid_codegen.gemm.kernel import build_gemm_module
            out.append((f"kernel {i} [gemm {fn.gemm.spec.key()}]", build_gemm_module(fn.gemm.spec)))
        elif isinstance(fn, (KernelStep, ScanStep)):
            out.append((f"kernel {i} [{kind}]", fn.kernel.llvm_module()))
        elif isinstance(fn, AttentionStep):
            out.append((f"kernel {i} [{fn.op}]", fn.llvm_module()))
    return out


def plan_llvm_text(plan) -> str:
    parts = []
    for title, module in _kernel_modules(plan):
        parts.append(f"; ===== {title}\n{jit.optimised_ir(module)}")
    return "\n".join(parts) or "; (no native kernels)"


def plan_asm_text(plan) -> str:
    parts = []
    for title, module in _kernel_modules(plan):
        parts.append(f"# ===== {title}\n{jit.assembly(module)}")
    return "\n".join(parts) or "# (no native kernels)"
