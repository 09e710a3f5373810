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
from facecore.train import (
    MONITORS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    jobs,
    trainable_configs,
    weights_missing,
)

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
