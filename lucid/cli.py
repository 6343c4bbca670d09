"""``lucid-ir``: look at what the compiler did, replay saved graphs, manage the cache.

    lucid-ir dump SCRIPT.py[:FUNCTION] [--shape 64x784 ...] [--stage fused] [--format text]
    lucid-ir show GRAPH.json
    lucid-ir run GRAPH.json [--seed 0]
    lucid-ir cache [info | ls | clear] [--top 10] [--clear]

Errors print one line and exit with status 2 (``run`` exits 1 when the compiled graph
disagrees with the reference interpreter); ``--verbose`` shows the traceback.

The command lives in ``lucid``, the top layer, because ``dump`` and ``run`` drive the
whole compiler (``lucid`` -> ``lucid_ir`` -> ``lucid_codegen``); ``lucid_ir`` imports
neither of the layers above it. Installed as ``lucid-ir``; also ``python -m lucid.cli``.

>>> build_parser().parse_args(["show", "graph.json"]).command
'show'
>>> parse_shape("64x784"), parse_shape("scalar")
((64, 784), ())
"""
from __future__ import annotations

import argparse
import os
import sys

STAGES = ("traced", "autodiff", "simplified", "fused", "llvm", "asm")


class CliError(Exception):
    """A user error: reported as one line, exit status 2."""


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in text.lower().split("x")) if text not in ("", "scalar") else ()
    except ValueError:
        raise CliError(f"bad --shape {text!r}: expected sizes joined by 'x', like 64x784") from None
    if any(d < 0 for d in shape):
        raise CliError(f"bad --shape {text!r}: sizes must be >= 0")
    return shape


# -- formatting of one graph at one stage ----------------------------------------------
def render(graph, fmt: str) -> str:
    from lucid_ir.analysis import to_dot
    from lucid_ir.serialize import dumps
    if fmt == "json":
        return dumps(graph)
    if fmt == "dot":
        return to_dot(graph)
    return str(graph)


def stage_texts(name: str, compiled, stages, fmt: str, is_backward: bool):
    """(title, text) for each requested stage of one compiled graph."""
    out = []
    for stage in stages:
        if stage == "autodiff":
            if is_backward:
                out.append(("autodiff", render(compiled.traced, fmt)))
            continue
        if stage == "traced" and is_backward:
            continue
        if stage in ("llvm", "asm"):
            text = compiled.llvm_text() if stage == "llvm" else compiled.asm_text()
            out.append((stage, text))
        elif stage == "fused" and fmt == "text":  # with what the plan writes in place
            out.append((stage, compiled.fused_text()))
        else:
            graph = {"traced": compiled.traced, "simplified": compiled.simplified,
                     "fused": compiled.fused}[stage]
            out.append((stage, render(graph, fmt)))
    return out


def emit(graphs, stages, fmt: str, out_dir: str | None) -> None:
    ext = {"text": "txt", "json": "json", "dot": "dot"}
    for i, (name, compiled) in enumerate(graphs):
        backward = name.endswith("backward")
        for stage, text in stage_texts(name, compiled, stages, fmt, backward):
            if out_dir:
                os.makedirs(out_dir, exist_ok=True)
                suffix = "ll" if stage == "llvm" else "s" if stage == "asm" else ext[fmt]
                path = os.path.join(out_dir, f"{i:02d}-{name}-{stage}.{suffix}")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text + "\n")
                print(path)
            else:
                print(f"=== {name} [{stage}] ===")
                print(text)


# -- subcommands ----------------------------------------------------------------------
def load_script(path: str, as_main: bool):
    import runpy
    if not os.path.isfile(path):
        raise CliError(f"no such script: {path}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    return runpy.run_path(path, run_name="__main__" if as_main else "__lucid_ir__")


def cmd_dump(args) -> int:
    import numpy as np

    import lucid

    from . import compiler
    stages = STAGES if args.stage == "all" else (args.stage,)
    script, _, function = args.target.partition(":")
    graphs = []
    compiler.observers.append(lambda name, compiled: graphs.append((name, compiled)))
    if function:
        namespace = load_script(script, as_main=False)
        fn = namespace.get(function)
        if fn is None:
            raise CliError(f"{script} defines no function {function!r}")
        if not callable(fn):
            raise CliError(f"{script}:{function} is not callable")
        compiled_fn = fn if isinstance(fn, lucid.compiled.CompiledFunction) else lucid.compile(fn)
        rng = np.random.default_rng(args.seed)
        inputs = [lucid.Tensor(rng.standard_normal(parse_shape(s)).astype(args.dtype),
                               requires_grad=args.grad) for s in args.shape]
        graphs.clear()
        compiled_fn.lower(*inputs)
    else:
        if args.shape:
            raise CliError("--shape needs a function: SCRIPT.py:FUNCTION")
        load_script(script, as_main=True)
    if not graphs:
        print("no graph was compiled", file=sys.stderr)
    emit(graphs, stages, args.format, args.out)
    return 0


def cmd_show(args) -> int:
    from lucid_ir.serialize import load_graph
    print(render(load_graph(args.graph), args.format))
    return 0


def cmd_run(args) -> int:
    import numpy as np

    from lucid_ir.interpreter import interpret
    from lucid_ir.serialize import load_graph

    from .compiler import compile_graph
    graph = load_graph(args.graph)
    rng = np.random.default_rng(args.seed)
    arrays = [rng.standard_normal(v.shape).astype(v.dtype) for v in graph.inputs]
    want = interpret(graph, arrays)
    got = compile_graph(graph, "replay")(arrays)
    worst = 0.0
    for g, w in zip(got, want):
        if g.shape != w.shape:
            print(f"FAIL: output shape {g.shape} != reference {w.shape}")
            return 1
        both_nan = np.isnan(g) & np.isnan(w)
        diff = np.where(both_nan, 0.0, np.abs(g.astype(np.float64) - w) / (1 + np.abs(w)))
        worst = max(worst, float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0)))
    tol = args.tol if args.tol is not None else (1e-4 if any(v.dtype == "float32" for v in graph.inputs) else 1e-10)
    verdict = "PASS" if worst <= tol else "FAIL"
    print(f"{verdict}: {len(got)} output(s), max relative error {worst:.3g} (tolerance {tol:g})")
    return 0 if verdict == "PASS" else 1


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def cmd_cache(args) -> int:
    from lucid_codegen.jit import cache
    if args.action == "info":
        print_cache_summary(args.top)
    elif args.action == "ls":
        for entry in cache.list_entries():
            meta = cache.entry_metadata(entry.name) or {}
            label = str(meta.get("label", ""))
            kind = meta.get("kind") or cache.kind_of(label)
            print(f"{entry.name[:16]}  {entry.size:>9}  {kind:<11}  {label[:100]}")
    if args.action == "clear" or args.clear:
        freed = sum(e.size for e in cache.list_entries())
        print(f"removed {cache.clear_cache()} entries ({_size(freed)}) from {cache.cache_dir()}")
    return 0


def print_cache_summary(top: int) -> None:
    """``lucid-ir cache``: where the kernel cache is, how big, what kinds of kernels, the
    largest entries, and how much of it this process can no longer use."""
    from lucid_codegen.jit.cache_summary import summarize
    s = summarize(top)
    print(f"directory: {s.directory}")
    print(f"enabled:   {s.enabled}")
    print(f"entries:   {s.entries}")
    print(f"size:      {_size(s.bytes)}")
    if not s.entries:
        return
    print(f"stale:     {s.stale} entries ({_size(s.stale_bytes)}) made for another CPU, LLVM, "
          f"compile pipeline or code generator version")
    print(f"by kind:   {'entries':>7} {'size':>10}  compile time")
    for k in s.kinds:
        print(f"  {k.kind:<12} {k.entries:>5} {_size(k.bytes):>10}  {k.compile_seconds:.2f} s")
    print(f"largest {len(s.largest)}:")
    for e in s.largest:
        mark = "  (stale)" if e.stale else ""
        print(f"  {_size(e.size):>10}  {e.name[:16]}  {e.kind:<11}  {e.label[:80]}{mark}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lucid-ir", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)

    dump = sub.add_parser("dump", help="print every graph a script (or one function) compiles")
    dump.add_argument("target", help="SCRIPT.py to run, or SCRIPT.py:FUNCTION to compile alone")
    dump.add_argument("--shape", action="append", default=[],
                      help="shape of the function's next tensor argument, like 64x784 (repeat)")
    dump.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    dump.add_argument("--grad", action="store_true", help="arguments require grad (show the backward)")
    dump.add_argument("--seed", type=int, default=0, help="seed of the random arguments")
    dump.add_argument("--stage", default="fused", choices=STAGES + ("all",))
    dump.add_argument("--format", default="text", choices=("text", "json", "dot"))
    dump.add_argument("--out", help="write one file per graph and stage into this directory")
    dump.set_defaults(func=cmd_dump)

    show = sub.add_parser("show", help="print a saved graph file")
    show.add_argument("graph", help="GRAPH.json")
    show.add_argument("--format", default="text", choices=("text", "json", "dot"))
    show.set_defaults(func=cmd_show)

    run = sub.add_parser("run", help="compile a saved graph, run it on seeded random inputs and "
                                     "compare with the reference interpreter")
    run.add_argument("graph", help="GRAPH.json")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--tol", type=float, help="largest allowed relative error")
    run.set_defaults(func=cmd_run)

    cache = sub.add_parser("cache", help="the kernel cache: where, how big, what kinds of kernels; "
                                         "list or clear it")
    cache.add_argument("action", nargs="?", default="info", choices=("info", "ls", "clear"),
                       help="info (the default): a summary; ls: every entry; clear: delete them")
    cache.add_argument("--top", type=int, default=10, help="largest entries the summary lists")
    cache.add_argument("--clear", action="store_true", help="then delete every entry")
    cache.set_defaults(func=cmd_cache)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every error becomes one line
        if args.verbose:
            raise
        if isinstance(exc, KeyboardInterrupt):
            return 130
        msg = str(exc) if isinstance(exc, (CliError, OSError, ValueError, TypeError)) else \
            f"{type(exc).__name__}: {exc}"
        print(f"lucid-ir: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
