"""Train: one form per model, the running job live (state read from disk), and the history of runs.

Everything here is also on the command line: ``python -m facecore train ... --background``,
``jobs list | show ID | stop ID`` and ``runs list | delete RUN --yes``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import streamlit as st

from facecore import workspace
from facecore.data.dataset import load_dataset
from facecore.data.transforms import AugmentConfig, is_deterministic
from facecore.errors import FacecoreError
from facecore.evaluate.figures import curves_figure
from facecore.mode import read_only
from facecore.models.registry import get_model_spec, list_models
from facecore.models.weights import DOWNLOAD_COMMAND, weights_status
from facecore.train import jobs
from facecore.train.addrun import add_run
from facecore.train.config import MONITORS, OPTIMIZERS, SCHEDULES, TrainConfig
from facecore.train.loop import read_metrics
from facecore.train.runs import (
    delete_run,
    list_runs,
    read_run,
    trainable_configs,
    weights_missing,
)
from pages.common import choose_dataset, setup_page

setup_page()

#: Seconds between re-reads of the jobs from disk: while a job is queued or running, and otherwise
#: (to notice a job started elsewhere: another tab, another user, the command line).
REFRESH_ACTIVE_S, REFRESH_IDLE_S = 2.0, 10.0
#: Online augmentations as switches: label -> AugmentConfig field (on/off values from its defaults).
AUGMENTATIONS = {
    "rotation ±20°": "rotation",
    "random resized crop": "random_resized_crop",
    "Gaussian noise": "gaussian_noise_sigma",
    "horizontal flip": "hflip",
    "colour jitter": "color_jitter",
    "translation ±5%": "translate",
}


# --- the forms -------------------------------------------------------------------------------------


def _reset(prefix: str) -> None:
    """Forget one model's widget values, so they show its defaults again."""
    buttons = (prefix + "reset", prefix + "start")
    for key in [k for k in st.session_state if str(k).startswith(prefix) and k not in buttons]:
        del st.session_state[key]


def augment_switches(default: AugmentConfig, key: str) -> AugmentConfig:
    """One checkbox per online augmentation, on where ``default`` has it on."""
    on, off = AugmentConfig(), AugmentConfig.none()
    values: dict[str, Any] = {}
    cols = st.columns(3)
    for i, (label, name) in enumerate(AUGMENTATIONS.items()):
        default_on = getattr(default, name) != getattr(off, name)
        checked = cols[i % 3].checkbox(label, value=default_on, key=f"{key}{name}")
        values[name] = getattr(on if checked else off, name)
    return AugmentConfig(**values)


def config_form(model: str, dataset: str) -> TrainConfig | str:
    """The widgets of ``model``'s TrainConfig, filled with its defaults: the config, or why it is invalid."""
    d, spec, k = TrainConfig.for_model(model, dataset), get_model_spec(model), f"train-{model}-"
    c1, c2, c3 = st.columns(3)
    v: dict[str, Any] = {
        "epochs": c1.number_input("Epochs", 1, 10_000, d.epochs, key=k + "epochs"),
        "batch_size": c1.number_input("Batch size", 1, 4096, d.batch_size, key=k + "batch"),
        "lr": c1.number_input("Learning rate", 1e-7, 10.0, d.lr, 1e-4, format="%g", key=k + "lr"),
        "optimizer": c2.selectbox("Optimizer", OPTIMIZERS, OPTIMIZERS.index(d.optimizer), key=k + "opt"),
        "weight_decay": c2.number_input(
            "Weight decay", 0.0, 1.0, d.weight_decay, 1e-4, format="%g", key=k + "wd"
        ),
        "momentum": c2.number_input(
            "Momentum (sgd, rmsprop)", 0.0, 0.999, d.momentum, 0.05, key=k + "momentum"
        ),
        "schedule": c2.selectbox("LR schedule", SCHEDULES, SCHEDULES.index(d.schedule), key=k + "sched"),
        "early_stopping": c3.number_input(
            "Early stopping patience (epochs, 0 = off)", 0, 10_000, d.early_stopping, key=k + "patience"
        ),
        "monitor": c3.selectbox("Best checkpoint by", MONITORS, MONITORS.index(d.monitor), key=k + "monitor"),
        "seed": c3.number_input("Seed", 0, 2**31 - 1, d.seed, key=k + "seed"),
    }
    st.caption("Online augmentation (training images only)")
    v["augment"] = augment_switches(d.augment, k + "aug-")
    if spec.pretrained:
        c1, c2 = st.columns(2)
        choices = list(spec.trainable_from_choices)
        v["trainable_from"] = c1.selectbox(
            "Train from (earlier layers stay frozen)",
            choices,
            choices.index(spec.trainable_from),
            key=k + "from",
            help="fc: feature extraction; layer4: the study's choice; all: full fine-tuning",
        )
        v["cache_features"] = c2.selectbox(
            "Cache frozen-layer features",
            ("auto", "on", "off"),
            key=k + "cache",
            help="auto: compute the frozen layers once per image when every augmentation is off",
        )
    with st.expander("Hardware, schedule details and run name"):
        c1, c2, c3 = st.columns(3)
        v["device"] = c1.selectbox("Device", ("auto", "cpu", "cuda", "mps"), key=k + "device")
        v["amp"] = c2.selectbox("Mixed precision", ("auto", "on", "off"), key=k + "amp")
        v["workers"] = c3.number_input("Data workers (-1: automatic)", -1, 64, d.workers, key=k + "workers")
        v["step_size"] = c1.number_input("Step size / plateau patience", 1, 1000, d.step_size, key=k + "step")
        v["gamma"] = c2.number_input("Gamma (LR factor)", 0.001, 1.0, d.gamma, 0.05, key=k + "gamma")
        v["run_name"] = c3.text_input("Run name (optional)", key=k + "name").strip()
        v["nproc"] = c1.number_input(
            "Processes (DDP)", 1, 64, d.nproc, key=k + "nproc",
            help="Train with this many processes on this machine (DistributedDataParallel under torchrun): "
            "one per GPU, or per CPU socket. The batch size is the global batch, split evenly over them.",
        )
    st.button("Reset to defaults", key=k + "reset", on_click=_reset, args=(k,))
    try:
        return TrainConfig.for_model(model, dataset, **v)
    except FacecoreError as exc:
        return str(exc)


def fast_path_note(cfg: TrainConfig | str) -> None:
    """Say when the pretrained model will take the cached-feature fast path."""
    if not isinstance(cfg, TrainConfig) or not get_model_spec(cfg.model).pretrained:
        return
    if cfg.cache_features != "off" and is_deterministic(cfg.augment):
        st.info(
            f":material/bolt: Fast path: with online augmentation off, {cfg.model} computes its frozen "
            f"layers (everything before `{cfg.trainable_from}`) once per image and trains on the cached "
            "features; exact, and several times faster on a CPU."
        )
    else:
        st.caption("Cached features are off (an augmentation is on, or caching is switched off).")


def weights_help(model: str) -> None:
    """Exactly how to get the ImageNet weights of ``model``."""
    status = weights_status(model)
    st.warning(
        f"**The ImageNet weights for `{model}` are not on this machine**, so it cannot train here yet. "
        f"Run `{DOWNLOAD_COMMAND}` on this machine (it needs internet), or download\n\n{status['url']}\n\n"
        f"elsewhere and place the file at\n\n`{status['path']}`\n\n"
        "(`$TORCH_HOME/hub/checkpoints/`). `resnet50_scratch` and `custom_cnn` train without it."
    )


def start(configs: list[TrainConfig], group: str) -> None:
    """Queue ``configs`` as one background job and say so."""
    try:
        job_id = jobs.start_job(configs, group=group)
    except FacecoreError as exc:
        st.error(str(exc))
        return
    models = ", ".join(c.model for c in configs)
    # rerun at once: the forms fold away and the new job's progress is shown at the top
    st.session_state["train-started"] = f"Started job {job_id}: {models}"
    st.rerun()


def forms(dataset: str) -> None:
    """The three model tabs, their train buttons and "Train all three"."""
    try:
        load_dataset(dataset).check_trainable()
        problem = None
    except FacecoreError as exc:
        problem = str(exc)
        st.error(problem)
    group = st.text_input(
        "Comparison group (optional)",
        key="train-group",
        help="Stamped on every run of the job; runs of one group are compared together. "
        "Train all three uses the job id when this is empty.",
    ).strip()
    configs: dict[str, TrainConfig | str] = {}
    compared = list_models(compared=True)
    tabs = st.tabs(compared, key="train-model-tab", on_change="rerun")  # kept across reruns
    for model, tab in zip(compared, tabs, strict=True):
        with tab:
            missing = weights_missing(model)
            if missing:
                weights_help(model)
            configs[model] = cfg = config_form(model, dataset)
            if not missing:
                fast_path_note(cfg)
            if isinstance(cfg, str):
                st.error(cfg)
            ready = isinstance(cfg, TrainConfig) and not (problem or missing)
            label, key = f"Train {model}", f"train-{model}-start"
            if st.button(label, key=key, type="primary", disabled=not ready) and isinstance(cfg, TrainConfig):
                start([cfg], group)
    train_all(configs, group, disabled=bool(problem))


def train_all(configs: dict[str, TrainConfig | str], group: str, *, disabled: bool) -> None:
    """One job with the three configs as one comparison group (those that can train here)."""
    valid = [c for c in configs.values() if isinstance(c, TrainConfig)]
    kept, skipped = trainable_configs(valid)
    invalid = [m for m, c in configs.items() if isinstance(c, str)]
    if skipped:
        st.caption(
            f"Train all three trains {' and '.join(c.model for c in kept)} only: "
            f"{', '.join(skipped)} needs its ImageNet weights first (see its tab)."
        )
    if invalid:
        st.caption(f"Fix the settings of {', '.join(invalid)} to train all three.")
    if st.button("Train all three", key="train-all", disabled=disabled or bool(invalid) or not kept):
        start(kept, group)


# --- the running job -------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    """``42 s`` or ``3 min 05 s``."""
    if seconds is None:
        return "?"
    seconds = max(int(round(seconds)), 0)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def job_runs(job: dict[str, Any]) -> dict[str, list[dict[str, float]]]:
    """The metrics rows of the job's runs and of the other runs of its group, labelled by model."""
    names = list(job.get("runs", []))
    if job.get("group"):
        names += [r["run"] for r in reversed(list_runs(group=job["group"])) if r["run"] not in names]
    out: dict[str, list[dict[str, float]]] = {}
    for name in names:
        path = workspace.models_dir() / name
        if path.is_dir():
            model = read_run(path, {})["model"] or name
            out[model if model not in out else name] = read_metrics(path)
    return out


def progress_panel(job: dict[str, Any]) -> None:
    """The progress bar within the epoch, the ETA, and the fast-path note."""
    p = job.get("progress") or {}
    if not p:
        st.progress(0.0, text="Starting: loading the dataset and building the model")
        return
    where = f"**{p['model']}** (model {p['run_index'] + 1} of {p['runs_total']})"
    epoch, epochs, batch, batches = p["epoch"], p["epochs"], p["batch"], p["batches"]
    if batches:
        rows = read_metrics(workspace.models_dir() / p["run"])
        per_epoch = sum(r["epoch_seconds"] for r in rows) / len(rows) if rows else None
        eta = p.get("eta_seconds")
        left = (eta or 0) + per_epoch * (epochs - epoch) if per_epoch is not None else None
        text = (
            f"{where}: epoch {epoch}/{epochs}, batch {batch}/{batches}, running loss {p['loss']:.4f}, "
            f"about {_duration(eta)} left in this epoch"
            + (f", {_duration(left)} for this model" if left is not None else "")
        )
        if batch == batches:
            text = f"{where}: epoch {epoch}/{epochs}, validating"
        st.progress(min(batch / batches, 1.0), text=text)
    elif epoch:
        st.progress(1.0, text=f"{where}: epoch {epoch}/{epochs} finished")
    else:
        what = "computing the frozen layers' features once" if p.get("feature_cache") else "preparing"
        st.progress(0.0, text=f"{where}: {what}")
    if p.get("feature_cache"):
        st.info(
            f":material/bolt: {p['model']} is on the fast path: its frozen layers were computed once per "
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


def job_header(job: dict[str, Any]) -> str:
    """One line naming the job, its models, dataset, group, status and creation time."""
    models = ", ".join(c["model"] for c in job["configs"])
    dataset = job["configs"][0]["dataset"]
    group = f", group `{job['group']}`" if job.get("group") else ""
    when = datetime.fromtimestamp(job["created"]).strftime("%Y-%m-%d %H:%M:%S")
    world = max(int(c.get("nproc", 1)) for c in job["configs"])
    procs = f", {world} processes (DDP)" if world > 1 else ""
    return f"Job `{job['id']}`: {models} on `{dataset}`{group}{procs}, {job['status']} (created {when})"


def job_panel(job: dict[str, Any], queue_ahead: list[str]) -> None:
    """One job: its status, progress or failure, the stop button, and its curves."""
    status = job["status"]
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
        st.error(f"Failed: {job.get('message')}")
        st.code(jobs.read_log(job["id"], tail=30) or "(the log is empty)", language=None)
    elif status == "stopped":
        st.warning(f"Stopped: {job.get('message')}")
    else:
        st.success(f"Done: {job.get('message')}")
    if (
        status in jobs.ACTIVE
        and not read_only()
        and st.button(
            "Stop" if status == "running" else "Cancel", key=f"train-stop-{job['id']}", icon=":material/stop:"
        )
    ):
        jobs.stop_job(job["id"])
        st.toast(f"Stopping job {job['id']}: the last finished epoch is kept.")
    curves = {label: rows for label, rows in job_runs(job).items() if rows}
    if curves:
        st.plotly_chart(curves_chart(curves, job["id"]), key=f"train-curves-{job['id']}")
    elif status in jobs.ACTIVE:
        st.caption("The curves appear when the first epoch ends.")


def _signature(all_jobs: list[dict[str, Any]]) -> tuple:
    """What the rest of the page depends on: the active jobs, their status and their runs."""
    active = (j for j in all_jobs if j["status"] in jobs.ACTIVE)
    return tuple((j["id"], j["status"], tuple(j.get("runs", []))) for j in active)


def live_jobs() -> None:
    """The running job, the queue and the latest job, re-read from disk every few seconds."""
    all_jobs = jobs.list_jobs()
    active = sorted((j for j in all_jobs if j["status"] in jobs.ACTIVE), key=lambda j: j["created"])
    if st.session_state.get("train-active") != _signature(all_jobs):
        st.rerun(scope="app")  # a job started, moved on or ended: refresh the history and the forms too
    if not all_jobs:
        st.caption("No training job yet.")
        return
    shown = active or all_jobs[:1]
    for i, job in enumerate(shown):
        with st.container(border=True):
            job_panel(job, [j["id"] for j in active[:i]])
    recent = [j for j in all_jobs if j["status"] not in jobs.ACTIVE and j not in shown][:5]
    if recent:
        with st.expander(f"Earlier jobs ({len(recent)} most recent)"):
            for job in recent:
                st.markdown(job_header(job) + f": {job.get('message') or ''}")
                if job["status"] == "failed":
                    st.code(jobs.read_log(job["id"], tail=15) or "(the log is empty)", language=None)


# --- the history -----------------------------------------------------------------------------------


def _when(t: float | None) -> datetime | None:
    """A file time as a datetime (None stays None)."""
    return datetime.fromtimestamp(t) if t else None


def _score(value: float | None) -> str:
    """A 0-1 score as ``0.853``, or a dash when there is none yet."""
    return "-" if value is None else f"{value:.3f}"


def history_table(runs: list[dict[str, Any]]) -> None:
    """Every run with its final scores, model, dataset, group, state and time."""
    groups = any(r["group"] for r in runs)
    rows = []
    for r in runs:
        best = f", best {r['best_epoch']}" if r["best_epoch"] else ""
        row = {"run": r["run"], "model": r["model"], "dataset": r["dataset"]}
        if groups:
            row["group"] = r["group"] or ""
        row |= {
            "state": r["state"] + (" (cached features)" if r["feature_cache"] else ""),
            "epochs": f"{r['epochs_run']}/{r['epochs'] or '?'}{best}",
            "val acc": _score(r["val_acc"]),
            "val F1": _score(r["val_f1"]),
            "test acc": _score(r["test_acc"]),
            "time": _when(r["updated"] or r["started"]),
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


def delete_form(runs: list[dict[str, Any]]) -> None:
    """Pick a run, tick the confirmation, delete."""
    kind, message = st.session_state.pop("train-deleted", (None, None))
    if kind:
        getattr(st, kind)(message)
    c1, c2, c3 = st.columns([3, 3, 1], vertical_alignment="bottom")
    name = c1.selectbox("Run to delete", [r["run"] for r in runs], key="train-delete-run")
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
    picked = st.multiselect("Show the curves of", [r["run"] for r in runs], key="train-history-curves")
    if picked:
        models_dir = workspace.models_dir()
        curves = {n: read_metrics(models_dir / n) for n in picked}
        st.plotly_chart(curves_chart(curves, "history"), key="train-picked")
    if not read_only():
        with st.expander("Delete a run"):
            delete_form(runs)


# --- the page --------------------------------------------------------------------------------------

st.title("Train")
if "train-started" in st.session_state:
    st.toast(st.session_state.pop("train-started"), icon=":material/model_training:")
chosen = choose_dataset(key="train")
st.header("Jobs")
jobs_area = st.container()  # above the forms, filled after them
# read once per run: a job a button starts reruns the page (start()), so this run has it
st.session_state["train-active"] = signature = _signature(jobs.list_jobs())
if chosen and not read_only():
    if signature:
        # a job is running: its progress stays in view at the top, the forms fold away below it
        with st.expander("New training: queue another job"):
            forms(chosen)
    else:
        st.header("New training")
        forms(chosen)
with jobs_area:
    st.fragment(live_jobs, run_every=REFRESH_ACTIVE_S if signature else REFRESH_IDLE_S)()
history(chosen)
