"""mpi4py, imported on first use: ``lucid.distributed`` runs on MPI (MPICH's wheels), an
optional extra. Without it, a clear message says what to install."""
from __future__ import annotations

_MPI = None


def mpi():
    """The ``mpi4py.MPI`` module (imported once), or ``ModuleNotFoundError`` naming the extra."""
    global _MPI
    if _MPI is None:
        try:
            import mpi4py
            mpi4py.rc.initialize = True
            mpi4py.rc.finalize = True
            mpi4py.rc.threads = False
            from mpi4py import MPI
        except ImportError as exc:
            raise ModuleNotFoundError(
                "lucid.distributed needs mpi4py and an MPI library: pip install 'lucid[distributed]' "
                "(or: pip install mpi4py mpich), then launch with: mpiexec -n 2 python your_script.py"
            ) from exc
        _MPI = MPI
    return _MPI


def available() -> bool:
    """Whether mpi4py imports (without initialising anything else)."""
    try:
        mpi()
    except ModuleNotFoundError:
        return False
    return True
