"""LUCID_DEBUG compile times: one report per compilation (tracing, each IR pass, LLVM per
module, cache loads), nothing when the variable is unset, and nothing paid per call."""
import os
import re
import subprocess
import sys

import pytest

import lucid
import lucid.nn.functional as F
from lucid_codegen.jit import cache
from lucid_ir import compile_times, debug
from lucid_ir.compile_times import CompileTimes, ModuleTimes

MS = r"(\d+\.\d) ms"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A kernel cache with nothing on disk and nothing in this process's memory."""
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    cache.reset_memory_cache()
    yield tmp_path
    cache.reset_memory_cache()


def reports(err: str, name: str) -> list[str]:
    """The compile-time reports of ``name`` in ``err`` (each its header and indented lines)."""
    out = []
    for block in re.split(r"^\[lucid\] ", err, flags=re.M):
        if block.startswith(f"compile times of {name}"):
            out.append(block.rstrip("\n"))
    return out


def phases(report: str) -> dict[str, float]:
    """label -> ms of each phase line (the lines before the LLVM and cache sections)."""
    out = {}
    for line in report.splitlines()[1:]:
        m = re.match(r"^( +)(\S.*?) +(\d+\.\d) ms(  \(kernels \d+\.\d ms\))?$", line)
        if m and not m.group(2).startswith(("LLVM:", "cache:")) and len(m.group(1)) <= 6:
            out[("  " * (len(m.group(1)) // 2 - 1)) + m.group(2)] = float(m.group(3))
    return out


def test_a_compiled_function_reports_every_stage_once(empty_cache, monkeypatch, capfd):
    monkeypatch.setenv("LUCID_DEBUG", "time")
    w = lucid.randn(7, 5, requires_grad=True)

    def layer(x):
        return (F.relu(F.linear(x, w)) * 2.71828).exp().sum()
    f = lucid.compile(layer)
    for _ in range(3):
        f(lucid.randn(3, 5)).backward()
    err = capfd.readouterr().err
    (report,) = reports(err, "layer:")
    assert "after traced" not in err  # LUCID_DEBUG=time: the times, no graphs
    got = phases(report)
    for label in ("trace", "autodiff", "layer: simplify", "layer: verify", "layer: fuse",
                  "layer: lower to kernels", "layer.backward: simplify", "layer.backward: fuse",
                  "layer.backward: lower to kernels", "first run"):
        assert label in got, (label, report)
    # the header's total is the sum of the top-level phases (within rounding, and the
    # Python between them: a few ms when compile threads hold the GIL on a busy machine)
    total = float(re.match(r"compile times of layer: " + MS, report).group(1))
    assert abs(sum(v for k, v in got.items() if not k.startswith(" ")) - total) <= 0.1 * len(got) + 0.2 + 0.05 * total
    # LLVM per module: every step timed, the modules adding up to the section's total
    llvm = re.search(r"LLVM: (\d+) modules? compiled in " + MS + r" \((.*)\)", report)
    assert llvm, report
    n, llvm_total = int(llvm.group(1)), float(llvm.group(2))
    for step in ("build IR", "parse", "optimise", "codegen", "link", "store"):
        assert f"{step} " in llvm.group(3)
    rows = re.findall(r"^ +" + MS + r"  (gemm|elementwise|reduction|\w+) .*optimise .*codegen .*KiB$",
                      report, flags=re.M)
    assert len(rows) == n >= 1  # (the GEMM's kernel may be in memory from another test)
    assert abs(sum(float(ms) for ms, _ in rows) - llvm_total) <= 0.1 * n + 0.1
    # the plans compile their first runs' kernels ahead (plan_kernels): the backward's
    # first run had nothing left to build, so nothing more was reported
    assert reports(err, "layer (first backward run)") == []


def test_a_backward_first_run_that_builds_kernels_is_reported_once(empty_cache, monkeypatch, capfd):
    """Kernels the plans did not compile ahead (here: none, prediction turned off) are
    built by the first runs: the forward's in the compilation's report, the backward's
    in one report of its own, after it ran."""
    from lucid_codegen.runtime import plan as runtime
    monkeypatch.setattr(runtime, "precompile_loops", lambda plan: None)
    monkeypatch.setattr(runtime, "precompile_plan", lambda graph: None)
    monkeypatch.setenv("LUCID_DEBUG", "time")
    w = lucid.randn(4, 6, requires_grad=True)
    f = lucid.compile(lambda x: (x * w).tanh().sum())
    for _ in range(3):
        f(lucid.randn(4, 6)).backward()
    err = capfd.readouterr().err
    (first,) = reports(err, "<lambda>:")
    assert "first run" in first and "LLVM: " in first
    (later,) = reports(err, "<lambda> (first backward run)")
    assert "LLVM: " in later and "first backward run" in later


WARM_START = """
import lucid
lucid.compile(lambda x: (x * 1.61803).tanh().sum())(lucid.randn(4, 6))
"""


def test_a_fresh_process_reports_loads_from_disk(tmp_path):
    """The second process finds every kernel on disk: no LLVM, each load timed."""
    env = {**os.environ, "LUCID_CACHE_DIR": str(tmp_path), "LUCID_DEBUG": "time", "PYTHONPATH": ROOT}
    runs = [subprocess.run([sys.executable, "-c", WARM_START], env=env, capture_output=True, text=True)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    (cold,) = reports(runs[0].stderr, "<lambda>:")
    (warm,) = reports(runs[1].stderr, "<lambda>:")
    assert "LLVM: " in cold and "loaded from disk" not in cold
    assert "LLVM:" not in warm, warm
    disk = re.search(r"cache: (\d+) modules? loaded from disk in " + MS + r" \(read \d+\.\d, link \d+\.\d ms\)",
                     warm)
    assert disk and int(disk.group(1)) >= 1, warm
    assert re.search(r"^ +" + MS + r"  reduction +reduction sum .*read .*link .*KiB$", warm, flags=re.M)
    assert "import lucid_codegen" in warm  # the first compilation of a process pays the import


def test_level_1_logs_graphs_and_times(monkeypatch, capfd):
    monkeypatch.setenv("LUCID_DEBUG", "1")
    lucid.compile(lambda x: (x * 1.41421).sin())(lucid.ones(5))
    err = capfd.readouterr().err
    assert "<lambda> after traced" in err and "<lambda> after fused" in err
    assert len(reports(err, "<lambda>:")) == 1


def test_a_traced_backward_is_autodiff_within_the_tracing(monkeypatch, capfd):
    w = lucid.randn(4, 3, requires_grad=True)
    opt = lucid.optim.SGD([w], lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = F.linear(x, w).square().sum()
        loss.backward()
        opt.step()
        return loss
    monkeypatch.setenv("LUCID_DEBUG", "time")
    lucid.compile(step)(lucid.randn(2, 3))
    (report,) = reports(capfd.readouterr().err, "step:")
    labels = list(phases(report))
    assert labels[:2] == ["trace", "  autodiff"]   # nested: part of the tracing
    assert "step.backward: simplify" not in labels  # one graph: no separate backward


def test_kernels_outside_a_compilation_get_a_line_each(tmp_path):
    """Eager ops compile kernels of their own (in a fresh process with an empty cache:
    this one has them in memory already): one line per module, every step timed."""
    env = {**os.environ, "LUCID_CACHE_DIR": str(tmp_path), "LUCID_DEBUG": "time", "PYTHONPATH": ROOT}
    run = subprocess.run([sys.executable, "-c", "import lucid; lucid.ones(3, 7) * 0.5 + 0.25"],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = [l for l in run.stderr.splitlines() if l.startswith("[lucid] kernel ")]
    assert any("(elementwise) compiled in" in l for l in lines), run.stderr
    assert all(re.search(r"compiled in " + MS + r" \(build IR .*parse .*optimise .*codegen .*link .*KiB\)$", l)
               for l in lines), lines
    assert "compile times of" not in run.stderr


def test_nothing_is_reported_or_paid_per_call_without_lucid_debug(monkeypatch, capfd):
    monkeypatch.delenv("LUCID_DEBUG", raising=False)
    assert compile_times.begin("f") is None
    reads = []
    real = debug.times_enabled
    monkeypatch.setattr(debug, "times_enabled", lambda: reads.append(1) or real())
    f = lucid.compile(lambda x: (x * 1.73205).cos())
    f(lucid.ones(6))
    program = next(iter(f._programs.values()))
    assert program.times is None and program.run_forward is program.compiled_forward.executable
    assert reads  # read once per compilation ...
    x, y = lucid.ones(6), lucid.ones(2, 2)
    y * 3.0  # (planned: its kernel compiled or loaded, maybe reported)
    f(x)     # (its second call builds its native program: the process's first one may
             # compile the runner's library, outside any compilation, so reading the flag)
    reads.clear()
    for _ in range(5):
        f(x)
        y * 3.0
    assert reads == []  # ... never per call of a compiled function or a planned eager op
    assert capfd.readouterr().err == ""


def test_the_first_run_wrapper_leaves_after_the_first_calls(monkeypatch, capfd):
    monkeypatch.setenv("LUCID_DEBUG", "time")
    w = lucid.randn(3, requires_grad=True)
    f = lucid.compile(lambda x: (x * w).sum())
    f(lucid.ones(3)).backward()
    program = next(iter(f._programs.values()))
    assert program.run_forward is program.compiled_forward.executable
    assert program.run_backward is program.compiled_backward.executable
    assert len(reports(capfd.readouterr().err, "<lambda>:")) == 1
    lowered = f.lower(lucid.ones(3))  # already reported: nothing more
    f(lucid.ones(3)).backward()
    assert lowered.kernels and capfd.readouterr().err == ""


def test_lower_reports_before_any_run(monkeypatch, capfd):
    monkeypatch.setenv("LUCID_DEBUG", "time")
    lucid.compile(lambda x: x.abs() + 0.30103).lower(lucid.ones(2, 2))
    (report,) = reports(capfd.readouterr().err, "<lambda>:")
    assert "<lambda>: lower to kernels" in report and "first run" not in report


def test_a_later_report_shows_only_new_modules(capfd):
    times = CompileTimes("g")
    with times.active():
        with compile_times.phase("trace"):
            compile_times.memory_hit()
    times.report()
    times.report("again")  # nothing new: nothing printed
    with times.active(), compile_times.phase("first run"):
        compile_times.add_module(ModuleTimes("k", "elementwise", "disk", {"read": 0.001, "link": 0.002}, 100))
    times.report("first run")
    err = capfd.readouterr().err
    first, second = reports(err, "g")
    assert "trace" in first and "1 kernel found in memory" in first and "again" not in err
    assert second.startswith("compile times of g (first run)") and "trace" not in second
    assert "1 module loaded from disk in 3.0 ms (read 1.0, link 2.0 ms)" in second
    assert "first run" in phases(second) and phases(second)["first run"] >= 0


def test_phase_without_a_compilation_does_nothing():
    assert compile_times.current() is None
    with compile_times.phase("trace"):
        pass
    compile_times.memory_hit()
    assert compile_times.current() is None
