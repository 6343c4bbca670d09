"""The test session's own set-up (conftest.py): its kernel cache directory and the
worker-thread count every test finds."""
import os

import conftest
from lucid_codegen.jit import cache
from lucid_codegen.runtime import threads

START_THREADS = threads.get_num_threads()


def test_kernels_go_to_the_sessions_own_cache_dir():
    assert os.environ["LUCID_CACHE_DIR"] == conftest.SESSION_CACHE_DIR
    assert str(cache.cache_dir()) == conftest.SESSION_CACHE_DIR
    assert os.path.basename(conftest.SESSION_CACHE_DIR).startswith("lucid-test-cache-")


def test_a_test_that_changes_the_thread_count_and_does_not_restore_it():
    threads.set_num_threads(START_THREADS + 3)


def test_the_next_test_finds_the_count_restored():
    """Runs after the one above (pytest keeps a file's order)."""
    assert threads.get_num_threads() == START_THREADS
