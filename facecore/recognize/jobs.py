"""Training jobs' records, read: which job trains which run, and how far it is.

A job folder ``<FACECORE_HOME>/jobs/<id>/`` holds ``job.json`` (status, pid, the configs, the run
folders, a message) and ``progress.json`` (epoch, batch i of n, running loss, ETA). :func:`read_job`
and :func:`list_jobs` give :class:`Job` records (``to_dict()``: the JSON the command line prints);
:func:`facecore.recognize.runs.list_runs` reads them to mark the runs being trained. Starting,
running and stopping jobs is :mod:`facecore.train.jobs`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from facecore import workspace
from facecore.errors import JobError

STATUSES = ("queued", "running", "done", "failed", "stopped")
ACTIVE = ("queued", "running")


@dataclass
class JobProgress:
    """Where a job's current run is (``progress.json``): epoch, batch i of n, running loss, ETA."""

    run: str = ""
    model: str = ""
    run_index: int = 0
    runs_total: int = 1
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    loss: float | None = None
    eta_seconds: float | None = None  # left in this epoch
    feature_cache: bool = False
    updated: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobProgress:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """The record as ``progress.json`` holds it."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Job:
    """A job's record (``job.json``), with its progress when its process has reported one.

    ``configs`` are the :meth:`TrainConfig.to_dict` of each run to train, in order; ``runs`` the
    run folders it has created so far.
    """

    id: str
    status: str
    pid: int | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    group: str = ""
    configs: list[dict[str, Any]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    resume_run: str | None = None
    message: str = ""
    progress: JobProgress | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        known = {f.name for f in fields(cls)} - {"progress"}
        job = cls(**{k: v for k, v in data.items() if k in known})
        progress = data.get("progress")
        if isinstance(progress, Mapping):
            job.progress = JobProgress.from_dict(progress)
        return job

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``jobs list --json``: ``job.json``'s keys, then ``progress`` when there is one."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "progress"}
        if self.progress is not None:
            out["progress"] = self.progress.to_dict()
        return out

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in ACTIVE

    @property
    def models(self) -> list[str]:
        return [c["model"] for c in self.configs]

    @property
    def dataset(self) -> str:
        return self.configs[0]["dataset"]

    @property
    def world_size(self) -> int:
        """The most processes (DDP) any of its runs trains with."""
        return max(int(c.get("nproc", 1)) for c in self.configs)


def jobs_dir() -> Path:
    return workspace.home() / "jobs"


def _job_file(job_id: str) -> Path:
    return jobs_dir() / job_id / "job.json"


def read_job(job_id: str) -> Job:
    """A job's record, with a dead process's ``running``/``queued`` status turned into ``failed``."""
    path = _job_file(job_id)
    if not path.is_file():
        raise JobError(f"No job {job_id!r} (jobs are under {jobs_dir()}).")
    job = json.loads(path.read_text("utf-8"))
    if job["status"] in ACTIVE and job.get("pid") and not _alive(job["pid"]):
        job.update(
            status="failed",
            message="the training process ended unexpectedly (killed, or the machine restarted); "
            "resume its run from the last checkpoint",
            finished=time.time(),
        )
        _write(job)
    record = Job.from_dict(job)
    progress = path.parent / "progress.json"
    if progress.is_file():
        with contextlib.suppress(json.JSONDecodeError):
            data = json.loads(progress.read_text("utf-8"))
            record.progress = JobProgress.from_dict(data) if isinstance(data, dict) else None
    return record


def _write(job: dict[str, Any]) -> None:
    job = {k: v for k, v in job.items() if k != "progress"}
    workspace.atomic_write_text(_job_file(job["id"]), json.dumps(job, indent=2))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as ended
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def list_jobs() -> list[Job]:
    """Every job, newest first."""
    root = jobs_dir()
    if not root.is_dir():
        return []
    jobs = [read_job(p.name) for p in root.iterdir() if (p / "job.json").is_file()]
    return sorted(jobs, key=lambda j: j.created, reverse=True)


__all__ = ["ACTIVE", "STATUSES", "Job", "JobProgress", "jobs_dir", "list_jobs", "read_job"]
