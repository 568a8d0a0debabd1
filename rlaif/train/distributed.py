"""Which process of a multi-process launch this is, and how the processes wait for each other.

`torchrun` and `accelerate launch` start one process per GPU and set `RANK`, `LOCAL_RANK` and
`WORLD_SIZE` in each one's environment; `ranks()` reads them, here and nowhere else. Rank 0 does what
one process does alone: it takes the run directory's lock, exports, checks the gates and writes every
file (model, tokenizer, card, curves, summary). The other ranks take no lock: they wait for rank 0's
word (`follow`) that the export is ready, then only train, so TRL's trainers see every process.

The word travels over a gloo process group of its own (`torch.distributed`, whatever backend training
uses), with a timeout of `WAIT_SECONDS` (`RLAIF_RANK_WAIT_SECONDS`): `rlaif run` generates for as long
as it takes before rank 0 is ready, longer than the 30 minutes torch allows a collective by default.
Rank 0 sends it once: `ready`, or the reason it stopped first, which every other rank then reports.

`accelerate launch --cpu --num_processes 2` starts one process: accelerate's `--cpu` launcher runs
several only through MPI (`--mpirun_hostfile`), so `ranks()` refuses that launch in one line. On a
machine without GPUs, `accelerate launch --multi_gpu --num_processes 2 -m rlaif.cli.main ...` and
`torchrun --nproc_per_node 2 -m rlaif.cli.main ...` both start two processes (gloo).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rlaif.errors import ConfigError, RlaifError

__all__ = [
    "WAIT_SECONDS", "MainRankStopped", "Ranks", "barrier", "connect", "follow", "lead", "ranks", "share",
]  # fmt: skip

WAIT_SECONDS = 24 * 3600.0
"""How long a rank waits for rank 0 (`RLAIF_RANK_WAIT_SECONDS` overrides it): the generation of a
whole `rlaif run` happens while the other ranks wait."""

READY = "ready"

_group: Any = None
"""The gloo group the ranks talk over; made on first use."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in the launch (one process alone: rank 0 of 1)."""

    rank: int = 0
    """Global rank (`RANK`)."""
    local_rank: int = 0
    """Rank on this machine (`LOCAL_RANK`): which GPU it drives."""
    world_size: int = 1
    """Processes in the launch (`WORLD_SIZE`)."""

    @property
    def main(self) -> bool:
        """Rank 0: the one that locks the run directory and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.world_size}"


class MainRankStopped(RlaifError):
    """Rank 0 stopped before training started; it printed why, and this rank exits with its status."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


WORLD = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
RANK = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
LOCAL = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK")
"""Where torchrun (first) and MPI launchers put them, in the order accelerate reads them."""


def _int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        try:
            return int(value)
        except ValueError:
            raise ConfigError(
                f"environment variable {name}={value!r} is not a whole number; torchrun and accelerate "
                "launch set it: unset it to run one process"
            ) from None
    return default


def ranks() -> Ranks:
    """This process's rank, local rank and world size, from the launcher's environment."""
    world = _int(WORLD, 1)
    rank = _int(RANK, 0)
    local = _int(LOCAL, rank)
    if (
        world == 1
        and os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
        and "MASTER_ADDR" in os.environ
    ):
        # accelerate's --cpu launcher sets MASTER_ADDR only when asked for several processes, then starts one
        raise ConfigError(
            "accelerate launch --cpu started one process, not the several asked for (it runs more only "
            "through MPI, --mpirun_hostfile); use accelerate launch --multi_gpu --num_processes N (gloo on "
            "CPU) or torchrun --nproc_per_node N"
        )
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(
            f"RANK={rank} and WORLD_SIZE={world} do not fit (0 <= RANK < WORLD_SIZE); launch with torchrun "
            "or accelerate launch, which set both, or unset them to run one process"
        )
    return Ranks(rank=rank, local_rank=local, world_size=world)


def _wait_seconds() -> float:
    value = os.environ.get("RLAIF_RANK_WAIT_SECONDS", "").strip()
    try:
        seconds = float(value) if value else WAIT_SECONDS
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(
            f"RLAIF_RANK_WAIT_SECONDS={value!r}: give the seconds to wait for rank 0, e.g. 3600"
        )
    return seconds


def _channel() -> Any:
    """The gloo group of the launch, after the process group itself is up (accelerate's `PartialState`
    starts it the way TRL's trainers will, which then reuse it)."""
    global _group
    if _group is None:
        import torch
        import torch.distributed as dist
        from accelerate import PartialState

        if not dist.is_initialized():
            # TrainingArguments' default ddp_timeout: TRL's trainers reuse this process group
            PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(seconds=1800))
        _group = dist.new_group(backend="gloo", timeout=timedelta(seconds=_wait_seconds()))
        atexit.register(_close)
    return _group


def _close() -> None:
    """Take the process group down before the interpreter does: left up, gloo's threads abort the
    process on the way out ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def connect() -> None:
    """Join the launch's process group now: every rank calls it first thing, so none waits past torch's
    30-minute rendezvous while rank 0 generates."""
    if ranks().distributed:
        _channel()


def _broadcast(message: Any) -> Any:
    import torch.distributed as dist

    box = [message]
    dist.broadcast_object_list(box, src=0, group=_channel())
    return box[0]


def share(value: Any) -> Any:
    """Rank 0's `value` on every rank (what the others pass is ignored); `value` alone."""
    return _broadcast(value) if ranks().distributed else value


def lead(error: BaseException | None = None) -> None:
    """Rank 0: tell the other ranks to start training, or (`error`) why it stopped instead."""
    if error is None:
        _broadcast(READY)
        return
    code = getattr(error, "exit_code", 4 if not isinstance(error, KeyboardInterrupt) else 130)
    reason = str(error) if isinstance(error, RlaifError) else type(error).__name__
    _broadcast(f"{code}\t{reason}")


def follow(where: Ranks) -> None:
    """Another rank: wait for rank 0's word; raise `MainRankStopped` when it stopped before training."""
    try:
        word = str(_broadcast(None))
    except RuntimeError as exc:  # gloo: the peer went away, or the wait timed out
        raise MainRankStopped(
            f"{where}: rank 0 did not say the export is ready ({exc}); its own output says why", 3
        ) from None
    if word != READY:
        code, _, reason = word.partition("\t")
        raise MainRankStopped(f"{where}: rank 0 stopped before training: {reason}", int(code))


def barrier() -> None:
    """Every rank waits here for the others (nothing to do alone): a model rank 0 saved is complete
    before anyone reads it."""
    if ranks().distributed:
        import torch.distributed as dist

        dist.barrier(group=_channel())
