"""Work split over the processes of ``accelerate launch``: the Accelerator, each process's share, gathering.

A script started by ``accelerate launch --num_processes N`` (or ``torchrun``) runs once per process;
each takes a contiguous share of the items, writes its own outputs and the main process merges
what :func:`gather` brings back. A plain ``python`` run is one process and imports no accelerate.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def launched() -> bool:
    """Whether this process is one of several started by ``accelerate launch`` / ``torchrun``."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    """This process's index among all processes (0 in a plain run)."""
    return int(os.environ.get("RANK", "0"))


def make_accelerator(device: str = "auto", mixed_precision: str = "no") -> Any:
    """An ``Accelerator`` on the CPU when asked or when CUDA is absent (``--multi_gpu`` on CPU runs
    several CPU processes with the gloo backend), else on this process's GPU."""
    from accelerate import Accelerator

    from react.utils.device import resolve_device

    return Accelerator(cpu=resolve_device(device).type == "cpu", mixed_precision=mixed_precision)


def share(n: int, process_index: int, num_processes: int) -> range:
    """The contiguous part of ``range(n)`` that process ``process_index`` of ``num_processes`` takes
    (sizes differ by at most one, earlier processes take the larger parts)."""
    base, extra = divmod(n, num_processes)
    start = process_index * base + min(process_index, extra)
    return range(start, start + base + (process_index < extra))


def share_summary(n: int, num_processes: int, unit: str = "clips") -> str:
    """How :func:`share` split ``n`` items: ``"2 processes, 3 clips each"`` (``"4 or 3"`` when uneven)."""
    if num_processes == 1:
        return f"1 process, {n} {unit}"
    sizes = sorted({len(share(n, i, num_processes)) for i in range(num_processes)}, reverse=True)
    return f"{num_processes} processes, {' or '.join(map(str, sizes))} {unit} each"


def gather(obj: Any, acc: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in process order, on every process."""
    from accelerate.utils import gather_object

    return gather_object([obj]) if acc.num_processes > 1 else [obj]


def cpu_workers() -> int:
    """This process's share of the CPU cores of its machine (at least one): the cores divided by
    the processes launched on this machine (``LOCAL_WORLD_SIZE``; ``accelerate launch`` sets
    ``OMP_NUM_THREADS=1``, which would leave each CPU process one core whatever the machine has)."""
    return max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def shutdown() -> None:
    """Tear the process group down before the process exits (a live gloo group can abort at exit);
    a run that never imported torch has none."""
    if "torch" not in sys.modules:
        return
    import torch.distributed as td

    if td.is_available() and td.is_initialized():
        td.destroy_process_group()
