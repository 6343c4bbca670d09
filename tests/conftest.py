"""Test-session set-up: the tests' helper modules on the path, a kernel cache of the
session's own, and the worker-thread count put back after every test.

The cache: ``LUCID_CACHE_DIR`` is set here, when pytest loads this file (before any test
module imports ``lucid_codegen``), to a new temporary directory removed at the end of
the session, so a run neither reads kernels another checkout or an earlier version
wrote nor leaves its own behind; subprocesses started by tests inherit it. Tests about
the cache itself point ``LUCID_CACHE_DIR`` at their own directories (``monkeypatch``),
as before.
"""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

SESSION_CACHE_DIR = tempfile.mkdtemp(prefix="lucid-test-cache-")
_USER_CACHE_DIR = os.environ.get("LUCID_CACHE_DIR")
os.environ["LUCID_CACHE_DIR"] = SESSION_CACHE_DIR


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_CACHE_DIR, ignore_errors=True)
    if _USER_CACHE_DIR is None:
        os.environ.pop("LUCID_CACHE_DIR", None)
    else:
        os.environ["LUCID_CACHE_DIR"] = _USER_CACHE_DIR


@pytest.fixture(autouse=True)
def _restore_thread_count():
    """Tests that call ``threads.set_num_threads`` (directly, through ``fuzz`` or an
    early ``assert``) leave the count as they found it for the next test."""
    from lucid_codegen.runtime import threads
    before = threads.get_num_threads()
    yield
    if threads.get_num_threads() != before:
        threads.set_num_threads(before)

# scripts that tests launch under mpiexec (they join an MPI job when imported)
collect_ignore_glob = ["distributed/*.py"]


@pytest.fixture(autouse=True, scope="session")
def _plan_runner_loaded():
    """The native plan runner's library loaded before any test. A process that has to
    compile it does so in the background (``plan_kernels.runner_ready``) and its plans run
    step by step until it is there; the tests about native programs count calls (a
    program from the second call on), so they start with it loaded.
    tests/test_native_plan.py tests the background compilation in a process of its own."""
    from lucid_codegen.runtime import native_runner
    native_runner.program_entries()
