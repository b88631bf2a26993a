"""Data-parallel training across processes: `okng train` under torchrun, unchanged.

``torchrun --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT] -m app.cli train PROJECT ...``
(or ``okng train PROJECT --nproc N``, which starts torchrun) runs one process per rank; each one
calls training.loop.train() as a single run would, and ``join()`` says which kind of run it is:
``Local`` (no torchrun: every method is the identity, so a single run is exactly what it was) or
``Ranks`` (RANK / WORLD_SIZE / LOCAL_RANK in the environment: a gloo process group on CPU, NCCL
on GPU). The loop talks only to this interface, at points every rank reaches the same number of
times (a collective reached by one rank only would hang the others):

* Rank 0 alone reads the project (labels and pixels of the split, the starting weights) and
  shares the result, so every rank trains on ONE consistent snapshot while the workstation goes
  on labelling, and the other ranks never open the project (another node needs no copy of it).
* Every rank draws the same epoch plan (shared seed: the class-balanced draw or the shuffle) and
  takes its slice of each global batch: ``--batch-size`` is the global batch, split across ranks.
* Each step all ranks agree, in one all_reduce, on rank 0's clock (so the time budget, the LR
  schedule and the last step are the same everywhere) and on the loss's denominator over the
  global batch (so the averaged gradient is the global batch's, also with class weights).
* Evaluation is sharded and the probabilities are gathered: every rank computes the same report,
  picks the same best epoch and stops early at the same epoch.
* A stop request on any rank stops every rank at the same step; rank 0 alone reports progress
  and stores the model, and its result is shared so every rank returns the same.

BatchNorm normalises with each rank's local batch (SyncBatchNorm exists for GPUs only); the
trainable BatchNorm layers' PreciseBN refresh averages the ranks' statistics.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import torch
from torch import nn

from labeling.progress import StopFn

from .errors import TrainingError
from .features import batches

TIMEOUT = timedelta(minutes=30)  # rank 0 reads the project meanwhile the others wait for it


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside it."""
    try:
        return (int(os.environ.get("RANK") or 0), int(os.environ.get("WORLD_SIZE") or 1),
                int(os.environ.get("LOCAL_RANK") or 0))
    except ValueError as exc:
        raise TrainingError(f"torchrun environment not understood: {exc}") from exc


def is_main_process() -> bool:
    """Rank 0, or no torchrun at all: the one process that prints and writes."""
    return env_world()[0] == 0


class Local:
    """A run of one process: every method is the identity (the loop is exactly the single run)."""

    rank, world_size, main = 0, 1, True

    def device(self, requested: torch.device) -> torch.device:
        return requested

    def batches(self, idx: Sequence[int], size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
        return batches(idx, size, rng)

    def shard(self, idx: Any) -> Any:
        return idx

    def stop(self, should_stop: StopFn | None) -> StopFn | None:
        return should_stop

    def step(self, clock: Any, criterion: nn.Module, y: torch.Tensor) -> float:
        return 1.0

    def tick(self, clock: Any) -> None:
        return None

    def count(self, n: int) -> int:
        return n

    def sum(self, x: float) -> float:
        return x

    def sum_rows(self, a: np.ndarray) -> np.ndarray:
        return a

    def share(self, obj: Any) -> Any:
        return obj

    def wrap(self, net: nn.Module, device: torch.device) -> nn.Module:
        return net

    def average_bn(self, bns: Sequence[nn.Module], weight: float) -> None:
        return None

    def close(self, finished: bool = True) -> None:
        return None


class Ranks(Local):
    """This process is one rank of a torchrun job (see the module docstring)."""

    def __init__(self, rank: int, world_size: int, local_rank: int, cuda: bool) -> None:
        import torch.distributed as dist
        self.dist = dist
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.main = rank == 0
        self.cuda = cuda
        self.owned = not dist.is_initialized()
        if cuda:
            torch.cuda.set_device(local_rank)  # before NCCL's first call: one GPU per rank (ranks_on_cuda)
        if self.owned:
            dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
        # Collectives of small control values: on the GPU for NCCL, which moves nothing else.
        self.ctl = torch.device("cuda", local_rank) if cuda else torch.device("cpu")

    def device(self, requested: torch.device) -> torch.device:
        # Not on CUDA means the CPU for every rank, also where "auto" resolved to a GPU that the
        # ranks could not have one each of (ranks_on_cuda).
        return torch.device("cuda", self.local_rank) if self.cuda else torch.device("cpu")

    def batches(self, idx: Sequence[int], size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
        """The global batches of an epoch (same on every rank: same indices, same rng); a last
        batch too small to give every rank two samples joins the one before (BatchNorm)."""
        out = batches(idx, size, rng)
        if len(out) > 1 and len(out[-1]) < 2 * self.world_size:
            last = out.pop()  # popped first: `out[-2] = ...out.pop()` would overwrite the batch before
            out[-1] = np.concatenate([out[-1], last])
        return out

    def shard(self, idx: Any) -> Any:
        """This rank's contiguous slice (sizes differ by at most one)."""
        return np.array_split(np.asarray(idx, dtype=np.int64), self.world_size)[self.rank]

    def _all_reduce(self, values: Sequence[float], op: Any = None) -> torch.Tensor:
        t = torch.tensor(list(values), dtype=torch.float64, device=self.ctl)
        self.dist.all_reduce(t, op=op or self.dist.ReduceOp.SUM)
        return t.cpu()

    def stop(self, should_stop: StopFn | None) -> StopFn:
        """A stop that every rank answers the same: any rank's request stops all of them."""
        def any_rank() -> bool:
            return bool(self._all_reduce([1.0 if should_stop is not None and should_stop() else 0.0])[0] > 0)
        return any_rank

    def step(self, clock: Any, criterion: nn.Module, y: torch.Tensor) -> float:
        """Rank 0's clock for everyone, and the factor that makes the mean of the ranks' losses
        (DDP averages gradients) the loss of the global batch."""
        den = loss_denominator(criterion, y)
        t = self._all_reduce([clock.own_elapsed() if self.main and clock is not None else 0.0, den])
        if clock is not None:
            clock.hold(float(t[0]))
        return self.world_size * den / max(float(t[1]), 1e-12)

    def tick(self, clock: Any) -> None:
        clock.hold(float(self._all_reduce([clock.own_elapsed() if self.main else 0.0])[0]))

    def count(self, n: int) -> int:
        return int(self._all_reduce([n], self.dist.ReduceOp.MAX)[0])

    def sum(self, x: float) -> float:
        return float(self._all_reduce([x])[0])

    def sum_rows(self, a: np.ndarray) -> np.ndarray:
        """Rows each filled by one rank (zeros elsewhere) -> every row on every rank (exact)."""
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).to(self.ctl)
        self.dist.all_reduce(t)
        return t.cpu().numpy()

    def share(self, obj: Any) -> Any:
        """Rank 0's object on every rank (pickled: the snapshot, the result)."""
        box = [obj if self.main else None]
        self.dist.broadcast_object_list(box, src=0, device=self.ctl)
        return box[0]

    def wrap(self, net: nn.Module, device: torch.device) -> nn.Module:
        """DistributedDataParallel over the step's module; it copies rank 0's weights to the others
        now (so the ranks start equal whatever each one built)."""
        from torch.nn.parallel import DistributedDataParallel
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)  # buffers (BatchNorm) follow rank 0 each step

    def average_bn(self, bns: Sequence[nn.Module], weight: float) -> None:
        """PreciseBN over the ranks' shards: the running statistics averaged, each rank weighted
        by the batches it averaged."""
        total = self.sum(weight)
        for m in bns:
            for name in ("running_mean", "running_var"):
                buf = getattr(m, name)
                if buf is None:
                    continue
                t = buf.detach().to(self.ctl, torch.float64) * weight
                self.dist.all_reduce(t)
                buf.copy_((t / max(total, 1e-12)).to(buf.device, buf.dtype))

    def close(self, finished: bool = True) -> None:
        """Leave the process group; `finished`: every rank got here from the run's end."""
        if self.owned and self.dist.is_initialized():
            if finished:
                # Every rank past its last collective before any tears gloo down: rank 0 leaving
                # straight after its broadcast of the result closed the pair rank 1 was still
                # reading, and rank 1 aborted ("terminate called without an active exception").
                # Not after an error of this rank alone: the others, waiting in another collective,
                # would not come to it, and it would hang for TIMEOUT.
                self.dist.barrier()
            self.dist.destroy_process_group()


def on_main(sync: Local, fn: Callable[[], Any]) -> Any:
    """fn() on rank 0 and its result on every rank; an error there is raised on every rank."""
    if sync.world_size == 1:
        return fn()
    out: Any = None
    error: BaseException | None = None
    if sync.main:
        try:
            out = ("ok", fn())
        except Exception as exc:  # noqa: BLE001 - said to the other ranks, then raised here as it is
            error, out = exc, ("error", f"{type(exc).__name__}: {exc}" if not isinstance(exc, TrainingError)
                               else str(exc))
    kind, value = sync.share(out)
    if error is not None:
        raise error
    if kind == "error":
        raise TrainingError(f"rank 0: {value}")
    return value


def loss_denominator(criterion: nn.Module, y: torch.Tensor) -> float:
    """What the task's mean loss divides by on these targets: the summed class weights of a
    weighted cross-entropy, else the number of samples (BCE's mean over samples x classes is
    proportional to it)."""
    weight = getattr(criterion, "weight", None)
    if isinstance(criterion, nn.CrossEntropyLoss) and weight is not None and y.dtype == torch.long:
        return float(weight[y].sum())
    return float(len(y))


def join(device: str = "auto") -> Local:
    """The run this process is part of: Ranks under torchrun (the process group joined here and
    left by close()), Local otherwise."""
    rank, world, local = env_world()
    if world <= 1:
        return Local()
    import torch.distributed as dist
    if not dist.is_available():
        raise TrainingError("this torch has no torch.distributed: train with one process")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return Ranks(rank, world, local, ranks_on_cuda(device, local_world_size(), gpus))


def ranks_on_cuda(device: str, local_world: int, gpus: int) -> bool:
    """Whether the ranks of this machine train on CUDA (one GPU each) or on the CPU (gloo).

    Every rank of a machine decides from the same three values, so they all decide alike. NCCL
    refuses two ranks on one GPU, so "auto" with fewer GPUs than ranks here trains on the CPU
    (found on a one-GPU machine: `--nproc 2` stopped with an NCCL error); asking for "cuda"
    explicitly in that case is an error that says what to change."""
    if device == "cpu" or (device == "auto" and gpus < local_world):
        return False
    if gpus == 0:
        raise TrainingError("device 'cuda' asked for but no CUDA GPU is available")
    if gpus < local_world:
        raise TrainingError(f"{local_world} processes on this machine but {gpus} GPU(s): one process per GPU, "
                            "or --device cpu (or auto, which trains on the CPU then)")
    return True


def local_world_size() -> int:
    """Processes of this run on this machine (torchrun's LOCAL_WORLD_SIZE; 1 outside it)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)

