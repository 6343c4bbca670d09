"""lucid_ir.gc_pause: the collector's threshold raised while any compilation runs, and
restored by the last one out (nested and concurrent uses), also when the block raises."""
import gc
import threading

import pytest

from lucid_ir import gc_pause


@pytest.fixture
def threshold():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_raised_inside_restored_after(threshold):
    with gc_pause.paused():
        assert gc.get_threshold() == (gc_pause.PAUSED_THRESHOLD, 10, 10)
        with gc_pause.paused():   # nested: still raised, and after the inner one too
            pass
        assert gc.get_threshold()[0] == gc_pause.PAUSED_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_the_block_raises(threshold):
    with pytest.raises(KeyError):
        with gc_pause.paused():
            raise KeyError("x")
    assert gc.get_threshold() == (700, 10, 10)


def test_collector_off_or_higher_left_alone():
    before = gc.get_threshold()
    try:
        for setting in ((0, 10, 10), (10 * gc_pause.PAUSED_THRESHOLD, 10, 10)):
            gc.set_threshold(*setting)
            with gc_pause.paused():
                assert gc.get_threshold() == setting
            assert gc.get_threshold() == setting
    finally:
        gc.set_threshold(*before)


def test_concurrent_uses_restore_once_all_left(threshold):
    inside, release = threading.Barrier(3), threading.Event()

    def worker():
        with gc_pause.paused():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    with gc_pause.paused():   # a third use, leaving first
        pass
    assert gc.get_threshold()[0] == gc_pause.PAUSED_THRESHOLD   # the workers are still in
    release.set()
    for t in threads:
        t.join()
    assert gc.get_threshold() == (700, 10, 10)
