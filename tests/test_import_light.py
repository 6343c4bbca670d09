"""``import lucid`` stays light (issue 17): the compiler's native half (llvmlite, which
loads LLVM, and lucid_codegen) is imported by the first compilation, not by the import;
a fresh process that never compiles never pays for it. Measured in fresh processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules_after(code: str) -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                         env=env, capture_output=True, text=True, timeout=300, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def heavy(names) -> list[str]:
    return sorted(n for n in names if n.split(".")[0] in ("llvmlite", "lucid_codegen"))


def test_import_lucid_imports_neither_llvmlite_nor_lucid_codegen():
    assert heavy(modules_after("import lucid")) == []


def test_building_a_model_and_an_optimizer_compiles_nothing():
    code = ("import lucid\nm = lucid.nn.Sequential(lucid.nn.Linear(4, 3), lucid.nn.ReLU())\n"
            "opt = lucid.optim.SGD(m.parameters(), lr=0.1)\nf = lucid.compile(lambda x: m(x))")
    assert heavy(modules_after(code)) == []


def test_the_first_compiled_call_brings_them_in():
    """(the check above would pass if the probe saw nothing: it must see them here)"""
    code = ("import lucid\nf = lucid.compile(lambda x: (x * 2).sum())\nf(lucid.ones(3))")
    names = modules_after(code)
    assert "llvmlite.binding" in names and "lucid_codegen.runtime.plan" in names


def test_import_lucid_leaves_what_only_some_calls_need():
    """numpy.random (the default generator makes its numpy generator on the first draw),
    logging (LUCID_DEBUG output), the data loader's thread pool and the random names of
    ``lucid.save``'s temporary files are imported when first used."""
    names = modules_after("import lucid")
    assert sorted(names & {"numpy.random", "logging", "concurrent.futures", "secrets"}) == []
    code = "import lucid\nlucid.randn(2)\nassert lucid.initial_seed() >= 0"
    assert "numpy.random" in modules_after(code)


def test_a_first_eager_linear_imports_only_the_step_families_it_runs():
    """The first eager ``F.linear`` compiles (llvmlite, the GEMM and the plan runtime)
    but imports none of the families of steps it does not run -- batched and gathered
    products, reductions, row kernels, scans, attention, collectives -- nor
    numpy.random (bounds checking's fill pattern); a softmax then brings the row
    kernels, an attention the attention kernels (the check sees them)."""
    later = {"lucid_codegen.kernels.attention", "lucid_codegen.runtime.attention_steps",
             "lucid_codegen.kernels.row_kernel", "lucid_codegen.kernels.reduction",
             "lucid_codegen.kernels.scan", "lucid_codegen.runtime.collective_steps",
             "lucid_codegen.gemm.batched_step", "lucid_codegen.gemm.gather_call", "numpy.random"}
    code = ("import numpy as np, lucid\nx, w = lucid.tensor(np.ones((4, 3), np.float32)), "
            "lucid.tensor(np.ones((2, 3), np.float32))\nlucid.nn.functional.linear(x, w)")
    names = modules_after(code)
    assert "lucid_codegen.gemm.call" in names
    assert sorted(names & later) == []
    more = modules_after(code + "\nlucid.nn.functional.softmax(x, -1)\n"
                         "q = lucid.tensor(np.ones((1, 2, 4, 8), np.float32))\n"
                         "lucid.nn.functional.scaled_dot_product_attention(q, q, q)")
    assert {"lucid_codegen.kernels.row_kernel", "lucid_codegen.kernels.attention"} <= more
