"""The processes a command runs as: one, or several started by ``torchrun``, ``accelerate launch`` or
``mpirun``, joined through accelerate.

accelerate reads the launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
...) when the first ``Accelerator`` / ``PartialState`` of a process is built. On a machine without a
GPU it has two traps (accelerate 1.x, ``state.py`` ``PartialState._prepare_backend`` and
``commands/launch.py`` ``launch_command``):

1. ``torchrun --nproc_per_node N`` (or ``accelerate launch --multi_gpu --num_processes N``) starts N
   processes, but accelerate joins them (gloo, ``DistributedType.MULTI_CPU``) only when told to use
   the CPU: ``Accelerator(cpu=True)`` or ``ACCELERATE_USE_CPU=true``. Otherwise, finding no GPU, each
   process believes it is alone and does all the work itself. :func:`accelerate_cpu_flag` says when
   to pass ``cpu=True``: several processes were launched and torch sees no CUDA device. So the
   variable is no longer needed, and setting it does no harm.
2. ``accelerate launch --cpu --num_processes N`` goes to accelerate's *simple* launcher, which starts
   exactly one ``python`` process whatever N is (it starts several CPU processes only through
   ``mpirun``, with ``--mpirun_hostfile``); it sets ``ACCELERATE_USE_CPU`` and, for N > 1 only,
   ``MASTER_ADDR``/``MASTER_PORT``, but no rank or world size. :func:`check_launch` recognises that
   environment and refuses it with one error line naming the commands that work, instead of silently
   running one process.

:class:`Processes` is what the benchmark uses to split its sequences and gather their results.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from lase_e2v.errors import ConfigError

T = TypeVar("T")

#: environment variables that carry the number of processes, per launcher (torchrun, MPI flavours)
WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
#: the commands that start several CPU processes on one machine (README, docs/training.md)
WORKING_COMMANDS = ("torchrun --nproc_per_node N -m lase_e2v.cli ...",
                    "accelerate launch --multi_gpu --num_processes N -m lase_e2v.cli ...")


def launched_world_size(environ: dict[str, str] | None = None) -> int:
    """How many processes the launcher says it started (1 when started plainly)."""
    environ = os.environ if environ is None else environ
    for name in WORLD_SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.strip().isdigit():
            return max(int(value), 1)
    return 1


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def check_launch(environ: dict[str, str] | None = None) -> None:
    """Refuse ``accelerate launch --cpu --num_processes N`` (N > 1), which runs one process (trap 2 of
    the module docstring): its environment has ``ACCELERATE_USE_CPU`` and ``MASTER_ADDR`` but no world
    size."""
    environ = os.environ if environ is None else environ
    if (_flag(environ.get("ACCELERATE_USE_CPU")) and environ.get("MASTER_ADDR")
            and not any(name in environ for name in (*WORLD_SIZE_VARIABLES, "RANK", "LOCAL_RANK"))):
        raise ConfigError(
            "accelerate launch --cpu starts one process whatever --num_processes says (accelerate runs several "
            f"CPU processes only through mpirun); use `{WORKING_COMMANDS[0]}` or `{WORKING_COMMANDS[1]}`"
        )


def accelerate_cpu_flag(environ: dict[str, str] | None = None) -> bool:
    """``cpu=`` for ``Accelerator``/``PartialState``: True when several processes were launched and
    torch sees no CUDA device, so that accelerate joins them over gloo (trap 1 of the module docstring)."""
    if launched_world_size(environ) <= 1:
        return False
    import torch

    return not torch.cuda.is_available()


@dataclass(frozen=True)
class Processes:
    """This process's place among the processes of one command: ``index`` of ``count``.

    Built by :meth:`current`; with one process nothing of accelerate or torch.distributed is used.
    """

    index: int = 0
    count: int = 1
    local_index: int = 0

    @classmethod
    def current(cls) -> Processes:
        """The processes the launcher started (checked by :func:`check_launch`); joins them through
        accelerate's ``PartialState`` when there are several."""
        check_launch()
        if launched_world_size() <= 1:
            return cls()
        from accelerate import PartialState

        state = PartialState(cpu=accelerate_cpu_flag())
        return cls(state.process_index, state.num_processes, state.local_process_index)

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """This process's part of ``items``: contiguous, in order, sizes differing by at most one
        (accelerate's ``split_between_processes``); all of them with one process."""
        if self.count == 1:
            return list(items)
        from accelerate import PartialState

        with PartialState().split_between_processes(list(items)) as part:
            return list(part)

    def device(self, device: str) -> str:
        """``device`` for this process: a bare ``cuda`` becomes ``cuda:<local index>`` when several
        processes share a machine's GPUs; anything else is kept."""
        return f"cuda:{self.local_index}" if self.count > 1 and device == "cuda" else device

    def run_everywhere(self, work: Callable[[], T]) -> list[T]:
        """Run ``work`` here and return every process's result, in process order. If ``work`` raised
        in any process, every process raises the first such error (by process index), so none waits
        forever for a process that failed."""
        own_error: Exception | None = None
        try:
            outcome: tuple[Any, Exception | None] = (work(), None)
        except Exception as error:  # handed to the other processes, re-raised below
            own_error = error
            outcome = (None, error if self.count == 1 else _portable(error))
        outcomes = self.all_gather(outcome)
        for index, (_, error) in enumerate(outcomes):
            if error is not None:
                raise own_error if index == self.index else error
        return [result for result, _ in outcomes]

    def all_gather(self, value: T) -> list[T]:
        """``value`` of every process, in process order, on every process (picklable values)."""
        if self.count == 1:
            return [value]
        from accelerate.utils import gather_object

        return list(gather_object([value]))

    def gather_to_main(self, value: T) -> list[T] | None:
        """``value`` of every process, in process order, on the main process only (``None`` elsewhere):
        for large values that the others need not receive."""
        if self.count == 1:
            return [value]
        import torch.distributed as distributed

        gathered: list[Any] | None = [None] * self.count if self.is_main else None
        distributed.gather_object(value, gathered, dst=0)
        return gathered


def _portable(error: Exception) -> Exception:
    """``error`` if it survives pickling (to reach the other processes), else a ``RuntimeError`` saying it."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # any failure to pickle or rebuild: send its text instead
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
