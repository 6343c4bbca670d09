"""``lucid.distributed`` and ``DistributedDataParallel`` on 2 MPI ranks (``mpiexec``):
the scripts in ``tests/distributed/`` run as real multi-process jobs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "distributed"
pytest.importorskip("mpi4py", reason="the distributed extra (mpi4py, mpich) is not installed")
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH")


def mpirun(script: str, *args: str, n: int = 2, timeout: float = 120):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(HERE / script), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("mode", ["eager", "nosync", "unused", "compile"])
def test_data_parallel_matches_one_process(mode):
    run = mpirun("ddp_equivalence.py", mode)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("OK") == 2


def test_unused_parameter_without_find_unused_is_an_error():
    run = mpirun("ddp_equivalence.py", "unused-error")
    assert run.returncode != 0
    assert "Expected to have finished reduction" in run.stderr and "spare.weight" in run.stderr


def test_collectives_against_numpy():
    run = mpirun("collectives_check.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("OK") == 2


@pytest.mark.parametrize("scenario", ["raise", "raise-slow"])
def test_a_failing_rank_stops_every_rank_naming_it(scenario):
    # raise-slow: rank 0 takes 3 s to report; the failing rank waits for its acknowledgement
    run = mpirun("collectives_check.py", scenario, timeout=60)
    assert run.returncode != 0
    assert "rank 0 stops because rank 1 failed: ValueError: a bug on rank 1" in run.stderr, run.stderr


def test_a_collective_times_out_instead_of_hanging():
    run = mpirun("collectives_check.py", "timeout", timeout=60)
    assert run.returncode != 0
    assert "DistributedTimeout" in run.stderr and "waited more than 2 s" in run.stderr


def test_compiled_collectives_call_mpi_from_the_native_program():
    run = mpirun("native_collectives.py", "check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("OK") == 2


def test_a_failing_rank_stops_a_rank_waiting_in_a_native_program():
    run = mpirun("native_collectives.py", "raise", timeout=90)
    assert run.returncode != 0
    assert run.stdout.count("NATIVE") == 2, run.stdout + run.stderr   # both ranks ran natively first
    assert "rank 0 stops because rank 1 failed: ValueError: a bug on rank 1" in run.stderr
    assert "native_plan.py" in run.stderr            # raised from the native program's wait


def test_a_native_programs_collective_times_out_instead_of_hanging():
    run = mpirun("native_collectives.py", "timeout", timeout=90)
    assert run.returncode != 0
    assert run.stdout.count("NATIVE") == 2, run.stdout + run.stderr
    assert "DistributedTimeout" in run.stderr and "all_reduce (compiled) on rank 0 waited more than 2 s" in run.stderr
    assert "native_plan.py" in run.stderr


def test_different_models_are_caught_at_construction():
    run = mpirun("collectives_check.py", "mismatch", timeout=60)
    assert run.returncode != 0
    assert "the model differs across ranks" in run.stderr and "on rank 1" in run.stderr


def test_without_init_the_error_is_pytorchs():
    import lucid
    import lucid.distributed as dist
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.all_reduce(lucid.ones(2))


def test_missing_mpi4py_says_what_to_install():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import lucid.distributed as dist\n"
            "try:\n    dist.init_process_group('mpi')\n"
            "except ModuleNotFoundError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'lucid[distributed]'" in out.stdout, out.stdout + out.stderr
