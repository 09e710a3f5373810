"""Train: one form per model, the running job live (state read from disk), and the history of runs.

Everything here is also on the command line: ``python -m facecore train ... --background``,
``jobs list | show ID | stop ID`` and ``runs list | delete RUN --yes``. The forms and the jobs are
drawn by :mod:`pages.widgets.train_forms` and :mod:`pages.widgets.train_jobs`.
"""

from __future__ import annotations

import pages.widgets.torch_first  # noqa: F401  # first: see there

# isort: split

from datetime import datetime

import streamlit as st

from facecore.errors import FacecoreError
from facecore.mode import read_only
from facecore.train import Run, add_run, delete_run, jobs, list_runs, run_metrics
from pages.common import choose_dataset, setup_page
from pages.widgets.train_forms import STARTED_KEY, forms
from pages.widgets.train_jobs import ACTIVE_KEY, curves_chart, live_jobs, signature

setup_page()

#: Seconds between re-reads of the jobs from disk: while a job is queued or running, and otherwise
#: (to notice a job started elsewhere: another tab, another user, the command line).
REFRESH_ACTIVE_S, REFRESH_IDLE_S = 2.0, 10.0


# --- the history -----------------------------------------------------------------------------------


def _when(t: float | None) -> datetime | None:
    """A file time as a datetime (None stays None)."""
    return datetime.fromtimestamp(t) if t else None


def _score(value: float | None) -> str:
    """A 0-1 score as ``0.853``, or a dash when there is none yet."""
    return "-" if value is None else f"{value:.3f}"


def history_table(runs: list[Run]) -> None:
    """Every run with its final scores, model, dataset, group, state and time."""
    groups = any(r.group for r in runs)
    rows = []
    for r in runs:
        best = f", best {r.best_epoch}" if r.best_epoch else ""
        row = {"run": r.run, "model": r.model, "dataset": r.dataset}
        if groups:
            row["group"] = r.group or ""
        row |= {
            "state": r.state + (" (cached features)" if r.feature_cache else ""),
            "epochs": f"{r.epochs_run}/{r.epochs or '?'}{best}",
            "val acc": _score(r.val_acc),
            "val F1": _score(r.val_f1),
            "test acc": _score(r.test_acc),
            "time": _when(r.updated or r.started),
        }
        rows.append(row)
    st.dataframe(
        rows,
        hide_index=True,
        key="train-history",
        column_config={
            "time": st.column_config.DatetimeColumn(format="MM-DD HH:mm", help="last epoch or finish"),
        },
    )
    st.caption(
        "val acc / F1 at the best epoch (the checkpoint kept as best.pt); test acc once the run is "
        "evaluated (Compare page, or `python -m facecore evaluate --model RUN`)."
    )


def _delete(name: str) -> None:
    """The Delete button's callback: delete, remember the outcome, untick the confirmation."""
    try:
        delete_run(name)
        st.session_state["train-deleted"] = ("success", f"Deleted run {name}.")
    except FacecoreError as exc:
        st.session_state["train-deleted"] = ("error", str(exc))
    st.session_state["train-delete-confirm"] = False


def delete_form(runs: list[Run]) -> None:
    """Pick a run, tick the confirmation, delete."""
    kind, message = st.session_state.pop("train-deleted", (None, None))
    if kind:
        getattr(st, kind)(message)
    c1, c2, c3 = st.columns([3, 3, 1], vertical_alignment="bottom")
    name = c1.selectbox("Run to delete", [r.run for r in runs], key="train-delete-run")
    sure = c2.checkbox(f"Yes, delete {name} and its checkpoints", key="train-delete-confirm")
    c3.button(
        "Delete",
        key="train-delete",
        disabled=not sure,
        on_click=_delete,
        args=(name,),
        icon=":material/delete:",
    )


def add_form() -> None:
    """Upload a checkpoint (e.g. a best.pt trained on another machine); it is checked before it is kept."""
    kind, message = st.session_state.pop("train-added", (None, None))
    if kind:
        getattr(st, kind)(message)
    upload = st.file_uploader(
        "Checkpoint (.pt)",
        type=["pt", "pth"],
        key="train-add-file",
        help="A facecore checkpoint: `models/RUN/best.pt` from another machine. It is loaded safely "
        "(weights only, never code) and checked against its own architecture and classes.",
    )
    name = st.text_input("Run name (optional)", key="train-add-name")
    if st.button("Add the model", key="train-add", disabled=upload is None) and upload is not None:
        try:
            path = add_run(upload.getvalue(), name=name.strip() or None, label=upload.name)
            st.session_state["train-added"] = ("success", f"Added run {path.name}.")
        except FacecoreError as exc:
            st.session_state["train-added"] = ("error", str(exc))
        st.rerun()


def history(dataset: str | None) -> None:
    """The runs table, the curves of chosen runs, and deleting a run."""
    st.header("History")
    only = bool(dataset) and st.toggle(f"Only runs on {dataset}", key="train-only-dataset")
    runs = list_runs(dataset=dataset if only else None)
    if not read_only():
        with st.expander("Add a trained model from a checkpoint file"):
            add_form()
    if not runs:
        st.caption("No runs yet: train a model above, or `python -m facecore train --dataset NAME ...`.")
        return
    history_table(runs)
    picked = st.multiselect("Show the curves of", [r.run for r in runs], key="train-history-curves")
    if picked:
        curves = {n: run_metrics(n) for n in picked}
        st.plotly_chart(curves_chart(curves, "history"), key="train-picked")
    if not read_only():
        with st.expander("Delete a run"):
            delete_form(runs)


# --- the page --------------------------------------------------------------------------------------

st.title("Train")
if STARTED_KEY in st.session_state:
    st.toast(st.session_state.pop(STARTED_KEY), icon=":material/model_training:")
chosen = choose_dataset(key="train")
st.header("Jobs")
jobs_area = st.container()  # above the forms, filled after them
# read once per run: a job a button starts reruns the page (start()), so this run has it
st.session_state[ACTIVE_KEY] = active = signature(jobs.list_jobs())
if chosen and not read_only():
    if active:
        # a job is running: its progress stays in view at the top, the forms fold away below it
        with st.expander("New training: queue another job"):
            forms(chosen)
    else:
        st.header("New training")
        forms(chosen)
with jobs_area:
    st.fragment(live_jobs, run_every=REFRESH_ACTIVE_S if active else REFRESH_IDLE_S)()
history(chosen)
