"""Kernel-cache faults not covered by test_cache.py: a full disk at each step of a write,
a permission error, a file from another lucid version, and a process killed mid-write."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from lucid_codegen.jit import cache

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from test_cache import cdir, entries, get, run_worker, worker_result  # noqa: E402,F401


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullFile:
    """A file object whose writes fail as on a full disk."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _fail_at(monkeypatch, where):
    if where == "mkstemp":
        monkeypatch.setattr(cache.tempfile, "mkstemp", _enospc)
    elif where == "write":
        real = os.fdopen
        monkeypatch.setattr(cache.os, "fdopen", lambda *a, **k: _FullFile(real(*a, **k)))
    elif where == "replace":
        monkeypatch.setattr(cache.os, "replace", _enospc)
    elif where == "permission":
        def denied(*a, **k):
            raise PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr(cache.tempfile, "mkstemp", denied)


@pytest.mark.parametrize("where", ["mkstemp", "write", "replace", "permission"])
def test_full_or_unwritable_disk_falls_back_to_memory(cdir, monkeypatch, where):
    cdir.mkdir(parents=True)
    cache._WARNED_DIRS.discard(str(cdir))
    with monkeypatch.context() as m:
        _fail_at(m, where)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert get(f"full-{where}", 5) == 6
            assert get(f"full-{where}-2", 6) == 7
        mine = [w for w in caught if "lucid kernel cache" in str(w.message)]
        assert len(mine) == 1 and issubclass(mine[0].category, RuntimeWarning)
        assert cache.stats()["write_errors"] == 2
        assert get(f"full-{where}", 5) == 6  # memory hit
    # nothing half-written is left behind, and nothing bad is read later
    assert list(cdir.iterdir()) == []
    cache.reset_memory_cache()
    assert get(f"full-{where}", 5) == 6  # space again: compiled and stored
    assert cache.stats()["compiles"] == 1 and cache.stats()["disk_writes"] == 1
    assert len(entries(cdir)) == 1


def test_file_from_another_compile_pipeline_is_a_miss(cdir, monkeypatch):
    assert get("pipeline-version", 3) == 4
    (old,) = entries(cdir)
    monkeypatch.setattr(cache, "_pipeline_stamp", lambda: "0123456789abcdef")
    cache.reset_memory_cache()
    new = cdir / (cache.full_key("pipeline-version") + ".lucidk")
    assert new != old
    new.write_bytes(old.read_bytes())  # the old pipeline's file under the new name
    assert get("pipeline-version", 3) == 4
    s = cache.stats()
    assert (s["compiles"], s["hits_disk"], s["disk_rejects"]) == (1, 0, 1)


def test_file_with_a_foreign_key_but_valid_checksum_is_not_run(cdir):
    """A well-formed entry written for another key, renamed onto this key's file: the
    header names the other key, so it is rejected (never linked and run)."""
    assert get("wrong-a", 100) == 101
    (a,) = entries(cdir)
    b = cdir / (cache.full_key("wrong-b") + ".lucidk")
    b.write_bytes(a.read_bytes())
    cache.reset_memory_cache()
    assert get("wrong-b", 200) == 201
    assert cache.stats()["disk_rejects"] == 1


KILLED_CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {tests!r})
    sys.path.insert(0, os.path.dirname({tests!r}))
    from lucid_codegen.jit import cache
    from cache_worker import make_module
    stage = {stage!r}
    real_replace, real_fdopen = os.replace, os.fdopen
    def slow_replace(src, dst):
        print("IN-REPLACE", flush=True); time.sleep(60); real_replace(src, dst)
    class SlowFile:  # the temp file half written when the process is killed
        def __init__(self, f): self._f = f
        def __enter__(self): return self
        def __exit__(self, *exc): self._f.close()
        def fileno(self): return self._f.fileno()
        def write(self, data):
            self._f.write(data[: len(data) // 2]); self._f.flush()
            print("IN-WRITE", flush=True); time.sleep(60); self._f.write(data[len(data) // 2:])
    if stage == "replace":
        cache.os.replace = slow_replace
    else:
        cache.os.fdopen = lambda *a, **k: SlowFile(real_fdopen(*a, **k))
    cache.load_or_compile("killed", lambda: make_module(13), ["kernel"])
    print("FINISHED", flush=True)
""")


@pytest.mark.parametrize("stage", ["replace", "write"])
def test_process_killed_mid_write(cdir, stage):
    env = dict(os.environ, LUCID_CACHE_DIR=str(cdir))
    env.pop("LUCID_CACHE", None)
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD.format(tests=str(HERE), stage=stage)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith("IN-"), line + child.stderr.read()
        tmps = [p for p in cdir.iterdir() if p.name.endswith(".tmp")]
        assert len(tmps) == 1  # the temp file exists, the entry does not
        assert entries(cdir) == []
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # the next process: no crash, no hang, the right kernel (compiled, not the leftover)
    t0 = time.monotonic()
    res = worker_result(run_worker("killed", 13, env_dir=cdir))
    assert res["result"] == 14 and res["stats"]["compiles"] == 1
    assert time.monotonic() - t0 < 30  # a hang guard (the killed child slept 60 s)
    assert len(entries(cdir)) == 1
    # this process too, and clear_cache removes the leftover temp file
    cache.reset_memory_cache()
    assert get("killed", 13) == 14 and cache.stats()["hits_disk"] == 1
    assert cache.clear_cache() == 2
    assert list(cdir.iterdir()) == []


def test_truncated_temp_file_left_with_the_entry_name_pattern(cdir):
    """A crash can leave a temp file of any length, even one that is a prefix of a valid
    entry; it is never read as an entry."""
    assert get("prefix", 8) == 9
    (entry,) = entries(cdir)
    data = entry.read_bytes()
    entry.unlink()
    (cdir / f".{entry.name}.x1.tmp").write_bytes(data[: len(data) // 2])
    (cdir / f".{entry.name}.x2.tmp").write_bytes(data)
    cache.reset_memory_cache()
    assert get("prefix", 8) == 9
    assert cache.stats()["compiles"] == 1 and cache.stats()["hits_disk"] == 0


def test_writes_do_not_fsync(cdir, monkeypatch):
    """A stored entry is not fsynced (milliseconds per kernel on the compile path); a
    file whose data a power loss kept from the disk fails its checksum instead."""
    def no_fsync(fd):
        raise AssertionError("fsync on the compile path")
    monkeypatch.setattr(cache.os, "fsync", no_fsync)
    assert get("no-fsync", 2) == 3
    assert cache.stats()["disk_writes"] == 1 and cache.stats()["write_errors"] == 0
    (entry,) = entries(cdir)
    entry.write_bytes(bytes(entry.stat().st_size))   # what a lost write can leave: zeros
    cache.reset_memory_cache()
    assert get("no-fsync", 2) == 3
    assert cache.stats()["disk_rejects"] == 1 and cache.stats()["compiles"] == 1
