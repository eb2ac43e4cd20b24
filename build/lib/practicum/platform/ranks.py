"""Which process of a multi-process run this is, read from the environment before torch is imported.

Under DDP every rank runs the same code: only rank zero prints the config and the report and writes
the run's files; each rank logs to its own file (`train.log`, `train.rank1.log`, ...).
"""

from __future__ import annotations

import os

# who sets what: torchrun sets RANK; `srun` sets SLURM_PROCID for every task of a job step;
# Lightning sets LOCAL_RANK in the processes it starts for ranks 1, 2, ... on one machine
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK")


def process_rank() -> int:
    """This process's global rank; 0 for a single process."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def is_rank_zero() -> bool:
    return process_rank() == 0


def log_suffix() -> str:
    """`''` on rank zero, `.rank<N>` on the others: the part of a log file's name that keeps ranks
    from writing into one file."""
    rank = process_rank()
    return f".rank{rank}" if rank else ""
