"""The README's examples run as written, and print what the README says they print.

* Python blocks run statement by statement; a statement whose trailing comment looks
  like a value (``# Tensor(...)``, ``# array(...)``, ``# [...]``, a number) is an
  expected output: the repr of the expression (or of what the statement assigned) must
  match it, whitespace collapsed and ``...`` standing for any text (doctest's ELLIPSIS).
  Other comments are prose.
* The ``$ lucid-ir ...`` block is run through the command and compared line for line.
* The fragment of ``train_step.lower(x, y).as_text("fused")`` shown under the compiled
  training step is compared with the end of that text (its value names are stale: an
  ``xfail(strict=True)`` records it; its structure is checked).

A mismatch is a finding about the README (or the library), not something to adjust here.
"""
import ast
import io
import os
import re
import shlex
import tokenize

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "README.md")
ROOT = os.path.join(os.path.dirname(__file__), "..")
OUTPUT_COMMENT = re.compile(r"^(Tensor\(|array\(|\[|\(|-?\d|True\b|False\b|None\b|['\"])")


def readme() -> str:
    return open(README, encoding="utf-8").read()


def python_blocks():
    return re.findall(r"```python\n(.*?)```", readme(), re.S)


def squash(text: str) -> str:
    return " ".join(text.split())


def matches(expected: str, got: str) -> bool:
    """``got`` fits ``expected`` with whitespace collapsed and ``...`` as a wildcard."""
    pattern = ".*".join(re.escape(part) for part in squash(expected).split("..."))
    return re.fullmatch(pattern, squash(got), re.S) is not None


def output_comments(source: str) -> dict:
    """{line number: comment text} of the comments that are expected outputs."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string[1:].strip()
            if OUTPUT_COMMENT.match(text):
                out[tok.start[0]] = text
    return out


def run_block(source: str, namespace: dict) -> list:
    """Run ``source`` statement by statement; return [(line, expected, repr)] for every
    statement with an output comment."""
    comments = output_comments(source)
    checked = []
    for stmt in ast.parse(source).body:
        expected = comments.get(stmt.end_lineno)
        code = ast.Module(body=[stmt], type_ignores=[])
        if expected is not None and isinstance(stmt, ast.Expr):
            value = eval(compile(ast.Expression(stmt.value), "README.md", "eval"), namespace)
        else:
            exec(compile(code, "README.md", "exec"), namespace)
            if expected is None:
                continue
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
                raise AssertionError(f"README line {stmt.lineno}: an output comment on a statement "
                                     f"that has no value: {ast.unparse(stmt)}")
            value = eval(ast.unparse(stmt.targets[0]), namespace)
        checked.append((stmt.lineno, expected, repr(value)))
    return checked


def test_readme_python_blocks_run_and_print_what_they_show():
    blocks = python_blocks()
    assert len(blocks) >= 3
    checked = []
    for block in blocks:
        checked += run_block(block, {})
    assert len(checked) >= 3  # the quick start's out and b.grad, the kernels of the loss
    wrong = [f"line {n}: README shows {exp!r}, the code gives {got!r}"
             for n, exp, got in checked if not matches(exp, got)]
    assert not wrong, "\n".join(wrong)


def test_comment_rules():
    assert output_comments("x = 1  # Tensor([1.0])\ny  # seeds a tensor\nz  # [Kernel(a), ...]\n") == {
        1: "Tensor([1.0])", 3: "[Kernel(a), ...]"}
    assert matches("[Kernel(gemm: a), ...]", "[Kernel(gemm: a), Kernel(b)]")
    assert matches("Tensor([[1.0, 2.0], [3.0]], grad=None)", "Tensor([[1.0, 2.0],\n [3.0]], grad=None)")
    assert not matches("Tensor([[26.0, 33.0], [48.0, 75.0]])", "Tensor([[26.0, 33.0], [48.0, 63.0]])")
    (_, expected, got), = run_block("a = [1, 2]\nlen(a)  # 3\n", {})
    assert not matches(expected, got)


def test_lucid_ir_dump_block_prints_what_the_readme_shows(capsys):
    from lucid.cli import main
    block = re.search(r"```\n\$ (lucid-ir dump [^\n]*)\n(.*?)```", readme(), re.S)
    assert block, "the README's lucid-ir dump example is gone"
    argv = shlex.split(block.group(1))[1:]
    argv = [os.path.join(ROOT, a) if a.startswith("examples/") else a for a in argv]
    assert main(argv) == 0
    got = capsys.readouterr().out
    assert got.strip().splitlines() == block.group(2).strip().splitlines()


def _in_place_fragment():
    """(the lines the README shows, then ``...``; the lines ``lower`` prints after the
    same header) for the compiled training step's fused text."""
    fragment = re.search(r"ends with what\s+it writes in place.*?```\n(.*?)```", readme(), re.S)
    assert fragment, "the README's in-place fragment is gone"
    shown = [line.strip() for line in fragment.group(1).strip().splitlines()]
    assert shown[0] == "# outputs written into input arrays:" and shown[-1] == "..."
    step_block = next(b for b in python_blocks() if "def train_step" in b)
    ns: dict = {}
    exec(compile(step_block, "README.md", "exec"), ns)
    got = ns["train_step"].lower(*ns["batches"][0]).as_text("fused").splitlines()
    return shown[:-1], got[got.index(shown[0]):]


def test_training_step_writes_every_parameter_and_state_buffer_by_its_kernel():
    """What the fragment claims ("here every weight and bias, by the kernel that
    computes it"), with the value names left out: the step's inputs %2.. are the four
    parameters, then their four momentum buffers, each written by its kernel."""
    shown, got = _in_place_fragment()
    line = re.compile(r"#   %\d+ -> %(\d+) \(written by its kernel\)")
    assert all(line.fullmatch(s) for s in shown[1:])
    assert all(line.fullmatch(g) for g in got[1:]), got
    assert sorted(int(line.fullmatch(g).group(1)) for g in got[1:]) == list(range(2, 10))


def test_training_step_fragment_is_what_lower_prints():
    shown, got = _in_place_fragment()
    assert got[:len(shown)] == shown
    assert len(got) > len(shown)  # the README elides the rest: there is a rest


@pytest.mark.parametrize("name", ["quickstart.py", "linear_layer.py"])
def test_examples_the_readme_names_exist(name):
    assert os.path.exists(os.path.join(ROOT, "examples", name))
