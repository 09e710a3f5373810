"""Training past one process: PyTorch's DistributedDataParallel, launched by ``torchrun``.

facecore writes no scheduler of its own. :func:`launch` runs PyTorch's own launcher
(``python -m torch.distributed.run``, the module behind ``torchrun``: elastic agent, c10d
rendezvous) with :mod:`facecore.train.worker` as the entry point; each process it starts is one
*rank* and runs the same :class:`~facecore.train.loop.Trainer`, which asks :func:`context` who it is:

* the backend is NCCL on CUDA (one GPU per rank, ``LOCAL_RANK``) and gloo on the CPU;
* the training split is sharded by ``DistributedSampler`` (``set_epoch`` every epoch: the
  shuffle differs by epoch and is the same for a seed, and with one rank it is exactly the
  single-process order); the **global** batch is the configured ``batch_size``, each rank takes
  ``batch_size / world_size`` of it (it must divide), and the learning rate is not scaled: the
  same config trains the same model on any number of ranks (DDP averages the gradients);
* validation is split across ranks and the predictions are gathered, so loss, accuracy and F1
  equal a single-process evaluation of the same weights;
* only rank 0 writes (metrics.csv, checkpoints, summary.json, progress, the job record);
  checkpoints hold the unwrapped model (no ``module.`` prefix), and resume works with any world size;
* a rank that fails ends the run: :func:`launch` raises :class:`TrainingFailed` naming the rank
  and its error (torchrun's error file for a Python exception, the signal for a killed process),
  and the last finished epoch's ``last.pt`` stays.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from facecore.errors import ConfigError, TrainingFailed, TrainingStopped

#: set in every rank by :func:`launch` (the workspace of the launching process)
RUN_DIR_ENV = "FACECORE_DDP_RUN_DIR"


@dataclass(frozen=True)
class Context:
    """Who this process is in the group (one process, when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def under_torchrun() -> bool:
    """True in a process started by torchrun (it sets ``WORLD_SIZE`` and ``RANK``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def context(device_type: str = "cpu") -> Context:
    """This process's :class:`Context`; joins the process group first when launched by torchrun."""
    if not under_torchrun():
        return Context()
    env = os.environ
    ctx = Context(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if ctx.enabled and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
    return ctx


def device_for(device: torch.device, ctx: Context) -> torch.device:
    """One GPU per rank: ``cuda:LOCAL_RANK``; other devices as they are."""
    return torch.device("cuda", ctx.local_rank) if device.type == "cuda" and ctx.enabled else device


def shard_order(n: int, *, ctx: Context, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """This rank's items of an epoch, from ``DistributedSampler`` (padded to equal shares)."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(
        range(n), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed, drop_last=False
    )
    sampler.set_epoch(epoch)
    return list(sampler)


def strided(n: int, ctx: Context) -> list[int]:
    """Items ``rank, rank + world, ...``: an unpadded share of ``n`` (for evaluation)."""
    return list(range(ctx.rank, n, ctx.world_size))


def all_sum(values: Sequence[float], ctx: Context) -> list[float]:
    """Each value summed over the ranks."""
    if not ctx.enabled:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def any_rank(flag: bool, ctx: Context) -> bool:
    """True on every rank when it is true on any (e.g. a stop request seen by rank 0)."""
    return bool(all_sum([1.0 if flag else 0.0], ctx)[0]) if ctx.enabled else flag


def gather(index: Sequence[int], arrays: dict[str, np.ndarray], ctx: Context) -> dict[str, np.ndarray]:
    """Rows of ``arrays`` (one per item of ``index``) from every rank, in item order."""
    if not ctx.enabled:
        return arrays
    parts: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(parts, (list(index), arrays))
    order = np.argsort(np.concatenate([np.asarray(i, dtype=np.int64) for i, _ in parts]), kind="stable")
    return {k: np.concatenate([a[k] for _, a in parts])[order] for k in arrays}


def broadcast(obj: Any, ctx: Context) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync_buffers(model: torch.nn.Module, ctx: Context) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank.

    DDP broadcasts them at the start of each training forward, so after an epoch's last step each
    rank holds its own; evaluation and the checkpoint use rank 0's.
    """
    if ctx.enabled:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


def wrap(model: torch.nn.Module, device: torch.device, ctx: Context) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (rank 0's weights broadcast to all), or as it is."""
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


# --------------------------------------------------------------------------------------------
# launching


def launch(
    config: Any,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str | None = None,
    master_port: int | None = None,
    rdzv_endpoint: str | None = None,
    job: tuple[str, int, int] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    stop_file: Path | None = None,
    entry: str = "facecore.train.worker",
    quiet: bool = False,
) -> dict[str, Any]:
    """Train ``config`` with ``config.nproc`` processes on this machine (of ``nnodes``) under torchrun.

    One machine: a free local port. Several: the same command on each machine with its
    ``node_rank`` and rank 0's ``master_addr``/``master_port`` (static rendezvous), or a shared
    ``rdzv_endpoint`` (c10d rendezvous). Returns rank 0's run summary; raises
    :class:`TrainingFailed` naming the failed rank. ``should_stop`` (polled) makes every rank stop
    after its current batch by creating ``stop_file``, which rank 0 watches (a job's ``stop``).
    ``entry``: the module each rank runs (:mod:`facecore.train.worker`; the tests wrap it with fault
    injection).
    ``quiet``: drop the ranks' progress lines (stdout) instead of passing them on.
    """
    nproc = int(config.nproc)
    if nproc < 1 or nnodes < 1:
        raise ConfigError("--nproc and --nnodes must be at least 1.")
    if rdzv_endpoint:
        rdzv_id = config.run_name or (run_dir.name if run_dir else "facecore")
        where = ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}", f"--rdzv-id={rdzv_id}"]
    else:
        port = master_port or (_free_port() if nnodes == 1 else 29500)
        addr = master_addr or "127.0.0.1"
        where = [f"--node-rank={node_rank}", f"--master-addr={addr}", f"--master-port={port}"]
    log_dir = Path(tempfile.mkdtemp(prefix="facecore-ddp-"))
    summary_file = log_dir / "summary.json"
    args = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    args += where + ["--max-restarts=0", f"--log-dir={log_dir}", "-m", entry]
    args += ["--config", json.dumps(config.to_dict()), "--summary", str(summary_file)]
    if resume:
        args.append("--resume")
    if job:
        args += ["--job", job[0], "--job-index", str(job[1]), "--job-total", str(job[2])]
    returncode, tail = _run(args, _rank_env(nproc, run_dir), quiet, should_stop, stop_file)
    if returncode == 0:
        if not summary_file.is_file():  # rank 0 ran on another machine
            return {"run": config.run_name or None, "world_size": None, "rank0_elsewhere": True}
        summary = json.loads(summary_file.read_text("utf-8"))
        if "stopped" in summary:
            raise TrainingStopped(summary["stopped"])
        return summary
    started = Path(f"{summary_file}.run")  # rank 0 names its run folder there when it starts
    if started.is_file():
        run_dir = Path(started.read_text("utf-8"))
    raise TrainingFailed(_failure(tail, run_dir, returncode))


def _rank_env(nproc: int, run_dir: Path | None) -> dict[str, str]:
    """The ranks' environment: the run folder when resuming, and their share of the cores."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}
    if run_dir is not None:  # resuming: every rank loads it; else rank 0 makes the run folder
        env[RUN_DIR_ENV] = str(run_dir)
    if not env["OMP_NUM_THREADS"]:  # the cores shared between the ranks of this machine
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    return env


def _run(
    args: list[str],
    env: dict[str, str],
    quiet: bool,
    should_stop: Callable[[], bool],
    stop_file: Path | None,
) -> tuple[int, list[str]]:
    """Run torchrun to its end, passing its stderr on; its exit status and last stderr lines.

    While it runs, ``should_stop`` is polled: when true, ``stop_file`` is created.
    """
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.PIPE, text=True, bufsize=1)
    tail: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line)
            del tail[:-400]

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    while proc.poll() is None:
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if should_stop() and stop_file is not None:
                stop_file.touch()  # rank 0 sees it and every rank stops after the batch
    reader.join(timeout=5)
    return proc.returncode, tail


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: A rank's error that only says another rank went away (the cause is that other rank).
PEER_LOST = re.compile(r"Connection (reset|closed) by peer|remote worker|NCCL communicator was aborted")


def _failure(lines: list[str], run_dir: Path | None, code: int) -> str:
    """One message from torchrun's failure report: which rank, and its error.

    torchrun's "Root Cause" is the first failure it observed, which may be a survivor that lost its
    connection to the rank that died. So the rank named is, in order: one killed by a signal other
    than the SIGTERM torchrun sends to stop the rest; one whose error is not a lost peer; the root
    cause.
    """
    text = "".join(lines)
    stopped = re.search(r"TrainingStopped: (.*)", text)
    if stopped:
        return f"stopped: {stopped.group(1)}"
    head, _, root = text.partition("Root Cause")
    blocks = [root] + re.split(r"\n\s*\[\d+\]:\s*\n", head)[1:]  # the root cause first: ties go to it
    described = [_describe(b) for b in blocks]
    who, what, _ = min(described, key=lambda d: d[2])
    if not what:
        errors = [ln.strip() for ln in lines if re.match(r"\s*\w*(Error|Exception)\b", ln)]
        exit_code = re.search(r"exitcode\s*:\s*(-?\d+)", root)
        what = errors[-1] if errors else f"exited with status {exit_code.group(1) if exit_code else code}"
    kept = run_dir is not None and (run_dir / "last.pt").is_file()
    hint = ""
    if kept:
        hint = f" The last finished epoch is kept in last.pt; resume with --resume {run_dir.name}."
    return f"Distributed training failed: {who} {what}.{hint}".replace("..", ".")


def _describe(block: str) -> tuple[str, str, int]:
    """``(who, what, priority)`` of one failure in torchrun's report (0: the likeliest cause)."""
    rank = re.search(r"rank\s*:\s*(\d+) \(local_rank: (\d+)\)", block)
    exit_code = re.search(r"exitcode\s*:\s*(-?\d+)", block)
    who = f"rank {rank.group(1)} (local rank {rank.group(2)})" if rank else "a rank"
    what = ""
    error_file = re.search(r"error_file\s*:\s*(\S+)", block)
    if error_file and Path(error_file.group(1)).is_file():
        try:
            data = json.loads(Path(error_file.group(1)).read_text("utf-8"))
            what = str(data.get("message", {}).get("message", "")).strip().splitlines()[-1]
        except (ValueError, AttributeError, IndexError):
            what = ""
    sig = -int(exit_code.group(1)) if exit_code and int(exit_code.group(1)) < 0 else 0
    if not what and sig:
        what = f"was killed by signal {signal.Signals(sig).name if sig in signal.valid_signals() else sig}"
    if sig and sig != signal.SIGTERM:
        priority = 0
    elif what and not sig and not PEER_LOST.search(what):
        priority = 1
    else:
        priority = 2
    return who, what, priority
