"""The lucid-ir command: golden dumps, graph files that replay, errors, cache."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid.cli import main
from lucid_ir.serialize import dumps, load_graph, loads

ROOT = os.path.join(os.path.dirname(__file__), "..")
LAYER = os.path.join(ROOT, "examples", "linear_layer.py")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dump_traced_golden(capsys):
    code, out, _ = run_cli(capsys, "dump", f"{LAYER}:layer", "--shape", "64x784", "--stage", "traced")
    assert code == 0
    assert out == """\
=== layer [traced] ===
{ lambda ; %0:f32[64,784] %1:f32[256,784] %2:f32[256]. let
    %3:f32[64,256] = matmul[trans_b=True] %0 %1
    %4:f32[64,256] = add %3 %2
    %5:f32[] = constant[value=0.0]
    %6:f32[64,256] = maximum %4 %5
  in (%6, %6) }
"""
    # the second output is the residual the backward reads (the weight requires grad)


def test_dump_fused_golden_with_backward(capsys):
    code, out, _ = run_cli(capsys, "dump", f"{LAYER}:layer", "--shape", "8x784", "--grad", "--stage", "fused")
    assert code == 0
    forward = out.split("=== layer.backward [fused] ===")[0]
    assert forward == """\
=== layer [fused] ===
{ lambda ; %0:f32[8,784] %1:f32[256,784] %2:f32[256]. let
    (%3:f32[8,256]) = kernel[gemm](%0, %1, %2) {
      %4:f32[8,256] = matmul[trans_b=True] %0 %1
      %5:f32[8,256] = add %4 %2
      %6:f32[] = constant[value=0.0]
      %3:f32[8,256] = maximum %5 %6
    }
  in (%3, %3) }
"""
    backward = out.split("=== layer.backward [fused] ===")[1]
    assert backward.count("kernel[gemm]") == 2 and backward.count("kernel[reduction]") == 1


def test_dump_llvm_asm_and_out_dir(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "dump", f"{LAYER}:layer", "--shape", "4x784", "--stage", "all",
                           "--out", str(tmp_path))
    assert code == 0
    names = sorted(os.listdir(tmp_path))
    assert any(n.endswith("-llvm.ll") for n in names) and any(n.endswith("-asm.s") for n in names)
    llvm = next(n for n in names if n.endswith("-llvm.ll"))
    assert "define" in (tmp_path / llvm).read_text()


def test_dump_whole_script(capsys):
    code, out, _ = run_cli(capsys, "dump", LAYER, "--stage", "simplified")
    assert code == 0 and "<lambda> [simplified]" in out and "<lambda>.backward [simplified]" in out


STEP_SCRIPT = """
import numpy as np, lucid, lucid.nn as nn, lucid.nn.functional as F
lucid.random.seed(0)
model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
opt = lucid.optim.SGD(model.parameters(), lr=0.1)

@lucid.compile
def step(x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss

step(lucid.randn(5, 4), np.array([0, 1, 1, 0, 1]))
"""


def test_dump_of_a_compiled_training_step_shows_what_is_written_in_place(capsys, tmp_path, monkeypatch):
    for name in ("LUCID_BACKEND", "LUCID_CHECK_BOUNDS"):
        monkeypatch.delenv(name, raising=False)
    script = tmp_path / "train_step.py"
    script.write_text(STEP_SCRIPT)
    code, out, _ = run_cli(capsys, "dump", str(script), "--stage", "fused")
    assert code == 0 and "step [fused]" in out and "step.backward" not in out
    assert "# outputs written into input arrays:" in out
    assert out.count("(written by its kernel)") == 4  # two weights, two biases


def parse_dot(text):
    """A strict little DOT reader for our output: returns (nodes, edges)."""
    assert text.startswith("digraph ") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    nodes, edges = set(), []
    for line in text.splitlines()[1:-1]:
        line = line.strip()
        if m := re.fullmatch(r'"([^"]+)" -> "([^"]+)";', line):
            edges.append(m.groups())
        elif m := re.fullmatch(r'"([^"]+)" \[.*\];', line):
            nodes.add(m.group(1))
        else:
            assert re.fullmatch(r"(rankdir=TB;|node \[.*\];|subgraph cluster_\d+ \{|label=.*;|\})", line), line
    assert all(a in nodes and b in nodes for a, b in edges)
    return nodes, edges


def test_dot_output_parses(capsys):
    code, out, _ = run_cli(capsys, "dump", f"{LAYER}:layer", "--shape", "4x784", "--format", "dot")
    first = out.split("=== ")[1]  # the forward graph's section
    nodes, edges = parse_dot(first.split("\n", 1)[1])
    assert len(edges) >= 4 and "%0" in nodes


def test_json_round_trip_gives_identical_print():
    w = lucid.randn(5, 3, requires_grad=True)
    low = lucid.compile(lambda x: F.log_softmax(F.linear(x, w))).lower(lucid.randn(4, 3))
    for graph in (low.program.forward, low.program.backward_graph, low.program.compiled_forward.fused):
        assert str(loads(dumps(graph))) == str(graph)


@pytest.mark.parametrize("which", ["forward", "backward"])
def test_run_replays_saved_linear_graphs(capsys, tmp_path, which):
    w, b = lucid.randn(16, 9, requires_grad=True), lucid.randn(16, requires_grad=True)
    low = lucid.compile(lambda x: F.linear(x, w, b)).lower(lucid.randn(7, 9))
    graph = low.program.forward if which == "forward" else low.program.backward_graph
    path = tmp_path / "g.json"
    path.write_text(dumps(graph))
    code, out, _ = run_cli(capsys, "run", str(path))
    assert code == 0 and out.startswith("PASS")
    code, out, _ = run_cli(capsys, "show", str(path))
    assert out.strip() == str(load_graph(str(path)))


def test_run_fails_when_results_disagree(capsys, tmp_path, monkeypatch):
    w = lucid.randn(4, 3)
    graph = lucid.compile(lambda x: F.linear(x, w)).lower(lucid.randn(2, 3)).program.forward
    path = tmp_path / "g.json"
    path.write_text(dumps(graph))
    import lucid.compiler as compiler
    real = compiler.compile_graph
    monkeypatch.setattr(compiler, "compile_graph",
                        lambda g, name="": (lambda arrays: [a + 1 for a in real(g, name)(arrays)]))
    code, out, _ = run_cli(capsys, "run", str(path))
    assert code == 1 and out.startswith("FAIL")


@pytest.mark.parametrize("argv,message", [
    (["show", "/no/such/file.json"], "No such file"),
    (["dump", "/no/such/script.py"], "no such script"),
    (["dump", f"{LAYER}:missing", "--shape", "2x784"], "defines no function 'missing'"),
    (["dump", f"{LAYER}:layer", "--shape", "2xq"], "bad --shape '2xq'"),
    (["dump", f"{LAYER}:layer", "--shape", "2x5"], "linear: input (2, 5) and weight (256, 784)"),
])
def test_errors_are_one_line_with_exit_code_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    ('{"format": "other"}', "not a lucid graph file"),
    ('{"format": "lucid-graph", "version": 99, "inputs": [], "nodes": [], "outputs": []}', "newer"),
    ('{"format": "lucid-graph", "version": 1, "inputs": [], "nodes": [], "outputs": [3]}', "used before"),
    ('{"format": "lucid-graph", "version": 1, "inputs": [{"id": 0, "type": "f32[2]"}], "nodes": '
     '[{"op": "exp", "inputs": [0], "attrs": {}, "out": {"id": 1, "type": "f32[3]"}}], "outputs": [1]}',
     "the file says f32[3]"),
])
def test_malformed_graph_files(capsys, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, _, err = run_cli(capsys, "show", str(path))
    assert code == 2 and message in err


def test_verbose_shows_the_traceback():
    with pytest.raises(FileNotFoundError):
        main(["--verbose", "show", "/no/such/file.json"])


def test_cache_subcommands(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    code, out, _ = run_cli(capsys, "cache", "info")
    assert code == 0 and str(tmp_path) in out and "entries:   0" in out
    from lucid_codegen.jit import cache
    cache.reset_memory_cache()
    lucid.compile(lambda x: (x * 3.5).exp())(lucid.ones(3))
    code, out, _ = run_cli(capsys, "cache", "ls")
    assert code == 0 and "elementwise" in out
    code, out, _ = run_cli(capsys, "cache", "clear")
    assert re.match(r"removed [1-9]\d* entries", out)


def _entry(key: str, n_functions: int, **kwargs) -> None:
    """A cache entry under ``key`` whose object file grows with ``n_functions``."""
    import llvmlite.ir as ir

    from lucid_codegen.jit import cache

    def build():
        m = ir.Module("cli_cache")
        i64 = ir.IntType(64)
        for k in range(n_functions):
            f = ir.Function(m, ir.FunctionType(i64, [i64]), f"f{k}")
            b = ir.IRBuilder(f.append_basic_block())
            b.ret(b.mul(f.args[0], ir.Constant(i64, k + 3)))
        return m
    cache.load_or_compile(key, build, ["f0"], **kwargs)


def test_cache_summary_kinds_largest_stale_and_clear(capsys, tmp_path, monkeypatch):
    from lucid_codegen.jit import cache
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    cache.reset_memory_cache()
    code, out, _ = run_cli(capsys, "cache")  # no action: the summary
    assert code == 0 and out.splitlines()[:4] == [f"directory: {tmp_path}", "enabled:   True",
                                                  "entries:   0", "size:      0.0 KiB"]
    assert "by kind" not in out
    _entry("gemm:cli:big", 40)
    _entry("gemm:cli:small", 1)
    _entry("elementwise/cli|mid", 12, label="elementwise cc cli")
    monkeypatch.setattr(cache, "_target_fingerprint", lambda: "another cpu")
    _entry("reduction/cli|old", 2)  # made for another machine: stale here
    monkeypatch.undo()
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    code, out, _ = run_cli(capsys, "cache", "--top", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[2] == "entries:   4" and lines[3] == f"size:      {sum(sizes.values()) / 1024:.1f} KiB"
    stale = [e for e in cache.list_entries() if cache.entry_metadata(e.name)["kind"] == "reduction"]
    assert lines[4].startswith(f"stale:     1 entries ({stale[0].size / 1024:.1f} KiB) made for another CPU")
    kinds = {m.group(1): (int(m.group(2)), m.group(3))
             for m in re.finditer(r"^  (\w+) +(\d+) +([\d.]+ KiB)  [\d.]+ s$", out, flags=re.M)}
    assert {k: n for k, (n, _) in kinds.items()} == {"gemm": 2, "elementwise": 1, "reduction": 1}
    assert list(kinds)[0] == "gemm"  # the most bytes first
    largest = out.split("largest 2:\n")[1].splitlines()
    biggest = sorted(sizes.items(), key=lambda kv: -kv[1])[:2]
    assert [row.split()[2] for row in largest] == [name[:16] for name, _ in biggest]
    assert "gemm:cli:big" in largest[0]
    code, out, _ = run_cli(capsys, "cache", "--top", "9")
    rows = out.split("largest 4:\n")[1].splitlines()
    assert [r.endswith("(stale)") for r in rows] == [" reduction " in r for r in rows] and len(rows) == 4
    code, out, _ = run_cli(capsys, "cache", "ls")
    assert code == 0 and re.search(r"^\w{16} +\d+  elementwise  elementwise cc cli$", out, flags=re.M)
    code, out, _ = run_cli(capsys, "cache", "--clear")
    assert code == 0 and "entries:   4" in out
    assert out.splitlines()[-1] == f"removed 4 entries ({sum(sizes.values()) / 1024:.1f} KiB) from {tmp_path}"
    assert not any(p.suffix == ".lucidk" for p in tmp_path.iterdir())
    cache.reset_memory_cache()


def test_console_script_and_module_entry_points():
    """``lucid-ir`` is declared in pyproject.toml as ``lucid.cli:main`` (the top layer); the
    installer's script is ``sys.exit(main())`` with ``argv[0]`` set, run here the same way
    (an installed script may belong to another checkout's environment)."""
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {"lucid-ir": "lucid.cli:main"}
    module, _, function = scripts["lucid-ir"].partition(":")
    script = (f"import sys; from {module} import {function}; "
              f"sys.argv[0] = 'lucid-ir'; sys.exit({function}())")
    for cmd, usage in (([sys.executable, "-m", "lucid.cli", "--help"], "usage: "),
                       ([sys.executable, "-c", script, "dump", "--help"], "usage: lucid-ir dump")):
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.startswith(usage), out.stderr


def test_dump_dir_saves_every_compiled_graph(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LUCID_DUMP_DIR", str(tmp_path))
    lucid.compile(lambda x: x.exp().sum())(lucid.ones(3, requires_grad=True)).backward()
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 2  # the forward and its backward
    for f in files:
        code, out, _ = run_cli(capsys, "run", str(tmp_path / f))
        assert code == 0, out


def test_debug_logging_shows_each_pass(monkeypatch, capsys):
    import logging
    monkeypatch.setenv("LUCID_DEBUG", "2")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("lucid").addHandler(handler)
    try:
        lucid.compile(lambda x: (x * 2.5).tanh())(lucid.ones(4))
    finally:
        logging.getLogger("lucid").removeHandler(handler)
    text = "\n".join(r.getMessage() for r in records)
    for stage in ("after traced", "after simplified", "after fused", "LLVM IR"):
        assert stage in text
    assert "define" in text


def test_debug_level_3_logs_assembly_and_times_and_eager_ops(monkeypatch, capfd):
    monkeypatch.setenv("LUCID_DEBUG", "3")
    lucid.compile(lambda x: (x * 1.25).sigmoid())(lucid.ones(5))
    lucid.ones(3, 7) * 0.5 + 0.25          # eager ops are logged as they are planned
    err = capfd.readouterr().err
    assert "assembly" in err and "compile times" in err and "ret" in err
    assert "eager mul" in err or "eager add" in err


def test_dump_simplified_and_autodiff_golden(capsys):
    code, out, _ = run_cli(capsys, "dump", f"{LAYER}:layer", "--shape", "8x784", "--grad",
                           "--stage", "autodiff")
    assert code == 0
    assert out == """\
=== layer.backward [autodiff] ===
{ lambda ; %0:f32[8,256] %1:f32[8,256] %2:f32[256,784] %3:f32[8,784]. let
    %4:f32[] = constant[value=0.0]
    %5:bool[8,256] = gt %1 %4
    %6:f32[] = constant[value=0.0]
    %7:f32[8,256] = select %5 %0 %6
    %8:f32[1,256] = sum[axes=(0,),keepdims=True] %7
    %9:f32[256] = reshape %8
    %10:f32[8,784] = matmul %7 %2
    %11:f32[256,784] = matmul[trans_a=True] %7 %3
  in (%10, %11, %9) }
"""
    code, out, _ = run_cli(capsys, "dump", f"{LAYER}:layer", "--shape", "8x784", "--grad",
                           "--stage", "simplified")
    backward = out.split("=== layer.backward [simplified] ===\n")[1]
    assert backward == """\
{ lambda ; %0:f32[8,256] %1:f32[8,256] %2:f32[256,784] %3:f32[8,784]. let
    %4:f32[] = constant[value=0.0]
    %5:bool[8,256] = gt %1 %4
    %6:f32[8,256] = select %5 %0 %4
    %7:f32[1,256] = sum[axes=(0,),keepdims=True] %6
    %8:f32[256] = reshape %7
    %9:f32[8,784] = matmul %6 %2
    %10:f32[256,784] = matmul[trans_a=True] %6 %3
  in (%9, %10, %8) }
"""
