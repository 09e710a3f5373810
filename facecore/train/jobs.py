"""Background training jobs: each in its own process, queued one after another per workspace.

A job folder ``<FACECORE_HOME>/jobs/<id>/`` holds ``job.json`` (status, pid, the configs, the
run folders, a message), ``log.txt`` (everything the process printed, tracebacks included) and
``progress.json`` (epoch, batch i of n, running loss, ETA). Status moves
``queued -> running -> done | failed | stopped``. Jobs wait for a workspace-wide runner lock,
so two jobs never train at once and never share a run folder; a queued job shows as queued.
:func:`read_job` and :func:`list_jobs` give :class:`Job` records (``to_dict()``: the JSON the
command line prints).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from filelock import FileLock, Timeout

from facecore import workspace
from facecore.errors import JobError, TrainingStopped
from facecore.mode import require_writable
from facecore.recognize.jobs import (
    Job,
    JobProgress,
    _alive,
    _job_file,
    _write,
    jobs_dir,
    list_jobs,
    read_job,
)
from facecore.recognize.runs import list_runs, read_metrics, read_run
from facecore.train import distributed
from facecore.train.callbacks import Callback, ProgressPrinter
from facecore.train.config import TrainConfig
from facecore.train.loop import Trainer


def _update(job_id: str, **changes: Any) -> dict[str, Any]:
    with FileLock(str(_job_file(job_id)) + ".lock", timeout=30):
        job = json.loads(_job_file(job_id).read_text("utf-8"))
        job.update(changes)
        _write(job)
    return job


def start_job(
    configs: list[TrainConfig], *, group: str = "", resume_run: str | None = None, detach: bool = True
) -> str:
    """Queue ``configs`` (trained one after another) as one job and start its process.

    Several configs form a comparison ``group`` (default: the job id), stamped on each run.
    """
    require_writable("Starting a training job")
    if not configs:
        raise JobError("A job needs at least one training config.")
    for c in configs:
        c.validate()
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    group = group or (job_id if len(configs) > 1 else "")
    for c in configs:
        c.group = c.group or group
    folder = jobs_dir() / job_id
    folder.mkdir(parents=True)
    job = {
        "id": job_id,
        "status": "queued",
        "pid": None,
        "created": time.time(),
        "started": None,
        "finished": None,
        "group": group,
        "configs": [c.to_dict() for c in configs],
        "runs": [],
        "resume_run": resume_run,
        "message": "waiting for the trainer",
    }
    _write(job)
    if detach:
        log = (folder / "log.txt").open("ab")
        kwargs: dict[str, Any] = (
            {"start_new_session": True}
            if os.name == "posix"
            else {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        )  # type: ignore[attr-defined]
        env = {**os.environ, "FACECORE_HOME": str(workspace.home()), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "facecore", "jobs", "run", job_id],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            **kwargs,
        )
        _update(job_id, pid=proc.pid)
    return job_id


def stop_job(job_id: str) -> Job:
    """Ask a job to stop. A running job finishes no further epoch; its last finished epoch is kept."""
    require_writable("Stopping a job")
    job = read_job(job_id)
    if not job.active:
        return job
    (jobs_dir() / job_id / "stop").write_text(str(time.time()))
    if job.pid and _alive(job.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.pid, signal.SIGTERM)
    return job


def wait_job(job_id: str, timeout: float = 3600.0, poll: float = 0.5) -> Job:
    """Block until the job leaves queued/running (for tests and the CLI's --wait)."""
    end = time.monotonic() + timeout
    while True:
        job = read_job(job_id)
        if not job.active:
            return job
        if time.monotonic() > end:
            raise JobError(f"Job {job_id} still {job.status} after {timeout:.0f} s.")
        time.sleep(poll)


class _JobProgress(Callback):
    """Writes progress.json (throttled) and records each run folder in job.json."""

    def __init__(self, job_id: str, index: int, total: int) -> None:
        self.job_id, self.index, self.total = job_id, index, total
        self.path = jobs_dir() / job_id / "progress.json"
        self.last = 0.0
        self.t_epoch = time.monotonic()

    def on_train_start(self, trainer: Trainer) -> None:
        job = read_job(self.job_id)
        runs = [r for r in job.runs if r != trainer.run_dir.name] + [trainer.run_dir.name]
        _update(self.job_id, runs=runs, message=f"training {trainer.config.model}: {trainer.describe()}")
        self.t_epoch = time.monotonic()
        self._write(trainer, 0, 0, None, force=True)

    def on_batch_end(self, trainer: Trainer, batch: int, batches: int, loss: float) -> None:
        self._write(trainer, batch, batches, loss)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.t_epoch = time.monotonic()
        self._write(trainer, 0, 0, metrics["train_loss"], force=True)

    def _write(
        self, trainer: Trainer, batch: int, batches: int, loss: float | None, force: bool = False
    ) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.5 and batch != batches:
            return
        self.last = now
        elapsed = now - self.t_epoch
        eta = elapsed / batch * (batches - batch) if batch else None
        state = {
            "run": trainer.run_dir.name,
            "model": trainer.config.model,
            "run_index": self.index,
            "runs_total": self.total,
            "epoch": trainer.state.epoch + (1 if batch else 0),
            "epochs": trainer.config.epochs,
            "batch": batch,
            "batches": batches,
            "loss": loss,
            "eta_seconds": eta,
            "feature_cache": trainer.cached,
            "updated": time.time(),
        }
        workspace.atomic_write_text(self.path, json.dumps(state))


def job_callbacks(job_id: str, index: int, total: int) -> tuple[list[Callback], Callable[[], bool]]:
    """For rank 0 of a job's distributed run: the job's progress callback and its stop request."""
    stop = jobs_dir() / job_id / "stop"
    return [_JobProgress(job_id, index, total)], stop.exists


def _waiting_ahead(job_id: str) -> bool:
    """True while a job created before ``job_id`` is still queued (and its process alive)."""
    me = read_job(job_id)
    for job in list_jobs():
        if job.id == job_id or job.status != "queued" or job.created > me.created:
            continue
        if job.pid or time.time() - job.created < 60:
            return True
    return False


def run_job(job_id: str) -> int:
    """The job process: wait for the runner lock, then train each config in turn."""
    folder = jobs_dir() / job_id
    stop_flag = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_flag.set())
    should_stop = lambda: stop_flag.is_set() or (folder / "stop").exists()  # noqa: E731
    _update(job_id, pid=os.getpid())
    lock = FileLock(str(jobs_dir() / ".runner.lock"))
    while True:
        if should_stop():
            _update(job_id, status="stopped", message="stopped while queued", finished=time.time())
            return 0
        if _waiting_ahead(job_id):  # first come, first served
            time.sleep(0.5)
            continue
        try:
            lock.acquire(timeout=0.5)
            break
        except Timeout:
            continue
    try:
        job = _update(job_id, status="running", started=time.time(), message="starting")
        configs = [TrainConfig.from_dict(c) for c in job["configs"]]
        resume = job.get("resume_run")
        for i, cfg in enumerate(configs):
            print(f"[job {job_id}] {i + 1}/{len(configs)}: {cfg.model} on {cfg.dataset}", flush=True)
            run_dir = workspace.models_dir() / resume if resume and i == 0 else None
            if cfg.nproc > 1:  # DDP under torchrun; its rank 0 reports to this job (job_callbacks)
                distributed.launch(
                    cfg, run_dir=run_dir, resume=run_dir is not None,
                    job=(job_id, i, len(configs)), should_stop=should_stop, stop_file=folder / "stop",
                )
                continue
            trainer = Trainer(
                cfg,
                run_dir=run_dir,
                should_stop=should_stop,
                callbacks=[ProgressPrinter(), _JobProgress(job_id, i, len(configs))],
            )
            trainer.fit(resume=run_dir is not None)
        _update(job_id, status="done", message=f"finished {len(configs)} run(s)", finished=time.time())
        return 0
    except TrainingStopped as exc:
        print(f"[job {job_id}] {exc}", flush=True)
        _update(job_id, status="stopped", message=str(exc), finished=time.time())
        return 0
    except BaseException as exc:  # the job's record must say it failed, whatever happened
        traceback.print_exc()
        sys.stdout.flush()
        last = f"{type(exc).__name__}: {exc}".strip()
        _update(job_id, status="failed", message=last[:500], finished=time.time())
        return 1
    finally:
        lock.release()


def model_seconds_left(progress: JobProgress) -> float | None:
    """About how long the job's current run still trains: what is left of this epoch (its ETA) plus
    the mean epoch time so far (the run's ``metrics.csv``) for each epoch after it; None before the
    first epoch has ended."""
    rows = read_metrics(workspace.models_dir() / progress.run)
    if not rows:
        return None
    per_epoch = sum(r["epoch_seconds"] for r in rows) / len(rows)
    return (progress.eta_seconds or 0) + per_epoch * (progress.epochs - progress.epoch)


def job_curves(job: Job) -> dict[str, list[dict[str, float]]]:
    """The metrics rows (``metrics.csv``) of the job's runs and then of the other runs of its group,
    labelled by model (by run name when a model is there twice)."""
    names = list(job.runs)
    if job.group:
        names += [r.run for r in reversed(list_runs(group=job.group)) if r.run not in names]
    out: dict[str, list[dict[str, float]]] = {}
    for name in names:
        path = workspace.models_dir() / name
        if path.is_dir():
            model = read_run(path, {}).model or name
            out[model if model not in out else name] = read_metrics(path)
    return out


def read_log(job_id: str, tail: int = 200) -> str:
    path = jobs_dir() / job_id / "log.txt"
    if not path.is_file():
        return ""
    return "\n".join(path.read_text("utf-8", errors="replace").splitlines()[-tail:])


def delete_job(job_id: str) -> None:
    require_writable("Deleting a job")
    job = read_job(job_id)
    if job.active:
        raise JobError(f"Job {job_id} is {job.status}; stop it before deleting it.")
    import shutil

    shutil.rmtree(jobs_dir() / job_id)
