"""The Train page's jobs: the running job live (progress, ETA, curves), the queue and the latest jobs.

Everything is read from disk by :mod:`facecore.train.jobs`, so every tab (and the command line)
sees the same jobs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import streamlit as st

from facecore.evaluate import curves_figure
from facecore.mode import read_only
from facecore.train import Job, jobs

#: Where the page keeps the signature of the active jobs it was drawn with (see :func:`signature`).
ACTIVE_KEY = "train-active"


def _duration(seconds: float | None) -> str:
    """``42 s`` or ``3 min 05 s``."""
    if seconds is None:
        return "?"
    seconds = max(int(round(seconds)), 0)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def progress_panel(job: Job) -> None:
    """The progress bar within the epoch, the ETA, and the fast-path note."""
    p = job.progress
    if p is None:
        st.progress(0.0, text="Starting: loading the dataset and building the model")
        return
    where = f"**{p.model}** (model {p.run_index + 1} of {p.runs_total})"
    if p.batches:
        left = jobs.model_seconds_left(p)
        text = (
            f"{where}: epoch {p.epoch}/{p.epochs}, batch {p.batch}/{p.batches}, running loss {p.loss:.4f}, "
            f"about {_duration(p.eta_seconds)} left in this epoch"
            + (f", {_duration(left)} for this model" if left is not None else "")
        )
        if p.batch == p.batches:
            text = f"{where}: epoch {p.epoch}/{p.epochs}, validating"
        st.progress(min(p.batch / p.batches, 1.0), text=text)
    elif p.epoch:
        st.progress(1.0, text=f"{where}: epoch {p.epoch}/{p.epochs} finished")
    else:
        what = "computing the frozen layers' features once" if p.feature_cache else "preparing"
        st.progress(0.0, text=f"{where}: {what}")
    if p.feature_cache:
        st.info(
            f":material/bolt: {p.model} is on the fast path: its frozen layers were computed once per "
            "image (cached features), so each epoch trains only the layers after them."
        )


def curves_chart(curves: dict[str, list[dict[str, float]]], revision: str) -> Any:
    """The shared training-curves figure, laid out for the page (legend below, zoom kept on refresh)."""
    fig = curves_figure(curves)
    fig.update_annotations(font_size=13)
    fig.update_layout(
        uirevision=revision,
        height=400,
        margin={"t": 70, "b": 20, "l": 40, "r": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
    )
    return fig


def job_header(job: Job) -> str:
    """One line naming the job, its models, dataset, group, status and creation time."""
    group = f", group `{job.group}`" if job.group else ""
    when = datetime.fromtimestamp(job.created).strftime("%Y-%m-%d %H:%M:%S")
    procs = f", {job.world_size} processes (DDP)" if job.world_size > 1 else ""
    models = ", ".join(job.models)
    return f"Job `{job.id}`: {models} on `{job.dataset}`{group}{procs}, {job.status} (created {when})"


def job_panel(job: Job, queue_ahead: list[str]) -> None:
    """One job: its status, progress or failure, the stop button, and its curves."""
    status = job.status
    st.markdown(job_header(job))
    if status == "running":
        progress_panel(job)
    elif status == "queued" and not queue_ahead:
        # first in line: its process is starting (loading PyTorch takes a few seconds)
        st.progress(0.0, text="Starting the training process (loading PyTorch)")
    elif status == "queued":
        ahead = ", ".join(f"`{j}`" for j in queue_ahead)
        st.info(f"Queued behind {ahead}: jobs train one at a time, first come, first served.")
    elif status == "failed":
        st.error(f"Failed: {job.message}")
        st.code(jobs.read_log(job.id, tail=30) or "(the log is empty)", language=None)
    elif status == "stopped":
        st.warning(f"Stopped: {job.message}")
    else:
        st.success(f"Done: {job.message}")
    if (
        job.active
        and not read_only()
        and st.button(
            "Stop" if status == "running" else "Cancel", key=f"train-stop-{job.id}", icon=":material/stop:"
        )
    ):
        jobs.stop_job(job.id)
        st.toast(f"Stopping job {job.id}: the last finished epoch is kept.")
    curves = {label: rows for label, rows in jobs.job_curves(job).items() if rows}
    if curves:
        st.plotly_chart(curves_chart(curves, job.id), key=f"train-curves-{job.id}")
    elif job.active:
        st.caption("The curves appear when the first epoch ends.")


def signature(all_jobs: list[Job]) -> tuple:
    """What the rest of the page depends on: the active jobs, their status and their runs."""
    return tuple((j.id, j.status, tuple(j.runs)) for j in all_jobs if j.active)


def live_jobs() -> None:
    """The running job, the queue and the latest job, re-read from disk every few seconds."""
    all_jobs = jobs.list_jobs()
    active = sorted((j for j in all_jobs if j.active), key=lambda j: j.created)
    if st.session_state.get(ACTIVE_KEY) != signature(all_jobs):
        st.rerun(scope="app")  # a job started, moved on or ended: refresh the history and the forms too
    if not all_jobs:
        st.caption("No training job yet.")
        return
    shown = active or all_jobs[:1]
    for i, job in enumerate(shown):
        with st.container(border=True):
            job_panel(job, [j.id for j in active[:i]])
    recent = [j for j in all_jobs if not j.active and j not in shown][:5]
    if recent:
        with st.expander(f"Earlier jobs ({len(recent)} most recent)"):
            for job in recent:
                st.markdown(job_header(job) + f": {job.message or ''}")
                if job.status == "failed":
                    st.code(jobs.read_log(job.id, tail=15) or "(the log is empty)", language=None)
