"""The Train page's forms: one tab per model with its TrainConfig's widgets, and "Train all three"."""

from __future__ import annotations

from typing import Any

import streamlit as st

from facecore.data import (
    AUGMENT_SWITCHES,
    AugmentConfig,
    augment_from_switches,
    augment_switches_of,
    is_deterministic,
    load_dataset,
)
from facecore.errors import FacecoreError
from facecore.models import DOWNLOAD_COMMAND, get_model_spec, list_models, weights_status
from facecore.train import TrainConfig, jobs, setting_bounds, trainable_configs, weights_missing

#: The label of each online augmentation's switch (:data:`AUGMENT_SWITCHES`).
AUGMENTATION_LABELS = {
    "rotation": "rotation ±20°",
    "random_resized_crop": "random resized crop",
    "gaussian_noise_sigma": "Gaussian noise",
    "hflip": "horizontal flip",
    "color_jitter": "colour jitter",
    "translate": "translation ±5%",
}
#: Where a started job's message waits for the rerun that shows it.
STARTED_KEY = "train-started"


def _reset(prefix: str) -> None:
    """Forget one model's widget values, so they show its defaults again."""
    buttons = (prefix + "reset", prefix + "start")
    for key in [k for k in st.session_state if str(k).startswith(prefix) and k not in buttons]:
        del st.session_state[key]


def augment_switches(default: AugmentConfig, key: str) -> AugmentConfig:
    """One checkbox per online augmentation, on where ``default`` has it on."""
    on = augment_switches_of(default)
    cols = st.columns(3)
    for i, name in enumerate(AUGMENT_SWITCHES):
        on[name] = cols[i % 3].checkbox(AUGMENTATION_LABELS[name], value=on[name], key=f"{key}{name}")
    return augment_from_switches(on)


def _number(col: Any, label: str, name: str, value: int | float, key: str, **fmt: Any) -> int | float:
    """A number input for setting ``name``: its bounds, step and help from the config's metadata."""
    b = setting_bounds(name)
    return col.number_input(label, b.min, b.max, value, b.step, key=key, help=b.help, **fmt)


def _select(col: Any, label: str, name: str, value: Any, key: str, choices: Any = None) -> Any:
    """A select box for setting ``name``: its choices (or offered options) and help from the metadata."""
    b = setting_bounds(name)
    options = list(choices or b.choices or b.options or ())
    return col.selectbox(label, options, options.index(value), key=key, help=b.help)


def config_form(model: str, dataset: str) -> TrainConfig | str:
    """The widgets of ``model``'s TrainConfig, filled with its defaults: the config, or why it is invalid."""
    d, spec, k = TrainConfig.for_model(model, dataset), get_model_spec(model), f"train-{model}-"
    c1, c2, c3 = st.columns(3)
    v: dict[str, Any] = {
        "epochs": _number(c1, "Epochs", "epochs", d.epochs, k + "epochs"),
        "batch_size": _number(c1, "Batch size", "batch_size", d.batch_size, k + "batch"),
        "lr": _number(c1, "Learning rate", "lr", d.lr, k + "lr", format="%g"),
        "optimizer": _select(c2, "Optimizer", "optimizer", d.optimizer, k + "opt"),
        "weight_decay": _number(c2, "Weight decay", "weight_decay", d.weight_decay, k + "wd", format="%g"),
        "momentum": _number(c2, "Momentum (sgd, rmsprop)", "momentum", d.momentum, k + "momentum"),
        "schedule": _select(c2, "LR schedule", "schedule", d.schedule, k + "sched"),
        "early_stopping": _number(
            c3, "Early stopping patience (epochs, 0 = off)", "early_stopping", d.early_stopping,
            k + "patience",
        ),
        "monitor": _select(c3, "Best checkpoint by", "monitor", d.monitor, k + "monitor"),
        "seed": _number(c3, "Seed", "seed", d.seed, k + "seed"),
    }
    st.caption("Online augmentation (training images only)")
    v["augment"] = augment_switches(d.augment, k + "aug-")
    if spec.pretrained:
        c1, c2 = st.columns(2)
        v["trainable_from"] = _select(
            c1, "Train from (earlier layers stay frozen)", "trainable_from", spec.trainable_from,
            k + "from", choices=spec.trainable_from_choices,
        )
        v["cache_features"] = _select(
            c2, "Cache frozen-layer features", "cache_features", d.cache_features, k + "cache"
        )
    with st.expander("Hardware, schedule details and run name"):
        c1, c2, c3 = st.columns(3)
        v["device"] = _select(c1, "Device", "device", d.device, k + "device")
        v["amp"] = _select(c2, "Mixed precision", "amp", d.amp, k + "amp")
        v["workers"] = _number(c3, "Data workers (-1: automatic)", "workers", d.workers, k + "workers")
        v["step_size"] = _number(c1, "Step size / plateau patience", "step_size", d.step_size, k + "step")
        v["gamma"] = _number(c2, "Gamma (LR factor)", "gamma", d.gamma, k + "gamma")
        v["run_name"] = c3.text_input("Run name (optional)", key=k + "name").strip()
        v["nproc"] = _number(c1, "Processes (DDP)", "nproc", d.nproc, k + "nproc")
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
    st.session_state[STARTED_KEY] = f"Started job {job_id}: {models}"
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
