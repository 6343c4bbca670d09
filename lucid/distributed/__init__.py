"""``lucid.distributed``: data-parallel training across processes over MPI, with
PyTorch's ``torch.distributed`` API (the ``mpi`` backend).

Launch N processes with ``mpiexec -n N python train.py``; in the script::

    import lucid.distributed as dist
    dist.init_process_group("mpi")
    model = lucid.nn.parallel.DistributedDataParallel(model)   # averages gradients
    ...
    dist.destroy_process_group()

Needs the optional extra: ``pip install 'lucid[distributed]'`` (mpi4py and MPICH).

>>> import lucid.distributed as dist
>>> dist.is_initialized()
False
>>> dist.ReduceOp.SUM.name
'SUM'
"""
from .collectives import (ReduceOp, Work, all_gather, all_gather_into_tensor, all_gather_object,  # noqa: F401
                          all_reduce, barrier, broadcast, broadcast_object_list, reduce_scatter,
                          reduce_scatter_tensor)
from .process_group import (DistributedError, DistributedTimeout, destroy_process_group,  # noqa: F401
                            get_backend, get_rank, get_world_size, init_process_group, is_available,
                            is_initialized, is_mpi_available)

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "is_mpi_available", "get_rank", "get_world_size", "get_backend", "barrier", "all_reduce",
           "broadcast", "all_gather", "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor",
           "broadcast_object_list", "all_gather_object", "ReduceOp", "Work", "DistributedError",
           "DistributedTimeout"]
