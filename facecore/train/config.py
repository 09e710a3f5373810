"""The training config: one dataclass that the CLI and the dashboard both build.

It is saved whole in every checkpoint (``TrainConfig.to_dict``), so a run can be rebuilt and
resumed from its checkpoint alone.

Each setting is a field whose metadata holds its help and what it accepts (bounds, choices): the
one definition :meth:`TrainConfig.validate`, the CLI's ``--flags`` and the Train page's widgets
are built from (:func:`setting_bounds`).

Each model's own defaults are declared where it is registered (``ModelSpec.train_defaults``, in
:mod:`facecore.models.resnet` and :mod:`facecore.models.custom_cnn`, with why); the study trained
with Adam and cross-entropy, batch 32-128, 5 epochs for the ResNet50s and 10 for the custom CNN.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from facecore.data.transforms import AugmentConfig, is_deterministic
from facecore.errors import ConfigError
from facecore.models.registry import get_model_spec

Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
Schedule = Literal["none", "step", "cosine", "plateau"]
Monitor = Literal["val_loss", "val_f1"]
Switch = Literal["auto", "on", "off"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
MONITORS: tuple[str, ...] = get_args(Monitor)
SWITCHES: tuple[str, ...] = get_args(Switch)


def _opt(default: Any, help: str, **meta: Any) -> Any:
    """A setting: a field with its default, and in its metadata its help and what it accepts.

    ``min`` / ``max`` (inclusive), ``positive`` (> 0) and ``choices`` are checked by
    :meth:`TrainConfig.validate`; ``options`` are offered (the Train page's list) but not enforced;
    ``step`` is the Train page's increment; ``metavar`` and ``group`` are for the ``--flag``.
    The CLI's training options (:func:`facecore.cli.train.add_config_arguments`), ``validate`` and
    the Train page's widgets are all built from this (:func:`setting_bounds`).
    """
    return field(default=default, metadata={"help": help, **meta})


#: The augmentations a model's ``train_defaults`` may name (the models cannot import AugmentConfig).
AUGMENT_PRESETS = {"none": AugmentConfig.none}


@dataclass
class TrainConfig:
    """Everything a training run depends on. Build it with :meth:`for_model`."""

    dataset: str
    model: str
    epochs: int = _opt(5, "epochs (default: the model's own)", min=1)
    batch_size: int = _opt(
        32, "the global batch size, split evenly over the nproc processes", min=1, max=4096
    )
    lr: float = _opt(
        1e-3, "learning rate (default: the model's own; not scaled with nproc)", positive=True, step=1e-4
    )
    optimizer: Optimizer = _opt("adam", "optimizer", choices=OPTIMIZERS)
    weight_decay: float = _opt(0.0, "weight decay (L2)", min=0.0, step=1e-4)
    momentum: float = _opt(0.9, "SGD and RMSprop momentum", min=0.0, max=0.999, step=0.05)
    schedule: Schedule = _opt("none", "learning-rate schedule", choices=SCHEDULES)
    step_size: int = _opt(
        3, "step schedule: epochs between decays (plateau: waits step_size - 1 epochs)", min=1
    )
    gamma: float = _opt(
        0.1, "step and plateau schedules: the decay factor", min=0.001, max=1.0, step=0.05
    )
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    early_stopping: int = _opt(
        0, "stop after N epochs without improvement (0: never)", min=0, metavar="PATIENCE"
    )
    monitor: Monitor = _opt("val_f1", "what picks the best checkpoint", choices=MONITORS)
    seed: int = _opt(0, "random seed (splits of batches, initial weights, augmentation)", min=0)
    device: str = _opt("auto", "auto (default), cpu, cuda, mps", options=("auto", "cpu", "cuda", "mps"))
    amp: Switch = _opt("auto", "mixed precision (auto: on CUDA)", choices=SWITCHES)
    channels_last: Switch = _opt(
        "auto", "channels-last memory format (auto: CUDA)", choices=SWITCHES
    )
    workers: int = _opt(-1, "DataLoader workers (-1: automatic)", min=-1)
    cache_features: Switch = _opt(
        "auto",
        "pretrained model: compute the frozen layers once and cache them (auto: when every online "
        "augmentation is off)",
        choices=SWITCHES,
    )
    trainable_from: str | None = _opt(
        None,
        "pretrained model: fc (feature extraction), layer4 (default, the study's choice), layer3, "
        "layer2, layer1 or all (full fine-tuning)",
    )
    target_far: float = _opt(
        0.01, "false-accept rate the stored Unknown threshold aims at (default 0.01)", min=0.0, max=1.0
    )
    run_name: str = _opt("", "run folder name under models/ (default: DATASET-MODEL-TIME)")
    group: str = _opt("", "comparison group name stamped on the runs")
    #: processes on this machine (DDP under torchrun when > 1): ``batch_size`` is the global batch,
    #: split evenly over them; the learning rate is not scaled
    nproc: int = _opt(
        1,
        "processes on this machine (DistributedDataParallel under torchrun): one per GPU, or per "
        "CPU socket (default 1); the batch size is the global batch, split evenly over them",
        min=1,
        max=256,
        group="ddp",
    )

    @classmethod
    def for_model(cls, model: str, dataset: str, **overrides: Any) -> TrainConfig:
        """The config with ``model``'s own defaults, then ``overrides`` (None values ignored)."""
        base = dict(get_model_spec(model).train_defaults)
        if "augment" in base:
            if base["augment"] not in AUGMENT_PRESETS:
                raise ConfigError(f"{model}'s train_defaults name an unknown augment {base['augment']!r}.")
            base["augment"] = AUGMENT_PRESETS[base["augment"]]()
        base.update({k: v for k, v in overrides.items() if v is not None})
        cfg = cls(dataset=dataset, model=model, **base)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field: each setting against its
        bounds (:func:`setting_bounds`), then the rules that tie settings together."""
        spec = get_model_spec(self.model)
        problems = [setting_bounds(f.name).problem(getattr(self, f.name)) for f in setting_fields()]
        checks = [
            (self.batch_size % max(self.nproc, 1) == 0, "batch_size (the global batch) must divide by nproc"),
            (
                self.trainable_from is None or self.trainable_from in spec.trainable_from_choices,
                f"trainable_from must be one of {', '.join(spec.trainable_from_choices)}",
            ),
        ]
        for message in [p for p in problems if p] + [m for ok, m in checks if not ok]:
            raise ConfigError(f"Invalid training config: {message}.")
        if self.cache_features == "on" and not is_deterministic(self.augment):
            raise ConfigError(
                "cache_features=on needs every online augmentation off (the cached features would "
                "not match augmented images); use cache_features=auto."
            )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["augment"] = self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"Unknown training config fields: {', '.join(sorted(unknown))}.")
        d = dict(d)
        d["augment"] = AugmentConfig.from_dict(d.get("augment") or {})
        return cls(**d)


@dataclass(frozen=True)
class SettingBounds:
    """What one :class:`TrainConfig` setting accepts, and its help (from the field's metadata)."""

    name: str
    help: str
    min: int | float | None = None
    max: int | float | None = None
    positive: bool = False
    choices: tuple[str, ...] | None = None
    options: tuple[str, ...] | None = None
    step: int | float | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused (the end of :meth:`TrainConfig.validate`'s message), else None."""
        low, high = self.min, self.max
        if self.choices is not None and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}"
        if self.positive and not value > 0:
            return f"{self.name} must be positive"
        if low is not None and high is not None and not low <= value <= high:
            return f"{self.name} must be between {_number(low)} and {_number(high)}"
        if low is not None and value < low:
            return f"{self.name} must be at least {_number(low)}"
        if high is not None and value > high:
            return f"{self.name} must be at most {_number(high)}"
        return None


def _number(v: int | float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def setting_fields() -> list[dataclasses.Field]:
    """The :class:`TrainConfig` fields that are settings (those with a help): all but ``dataset``,
    ``model`` and ``augment``, which the CLI and the page ask for on their own."""
    return [f for f in fields(TrainConfig) if "help" in f.metadata]


def setting_bounds(name: str) -> SettingBounds:
    """The bounds, choices and help of setting ``name`` (a :class:`TrainConfig` field)."""
    found = [f for f in setting_fields() if f.name == name]
    if not found:
        raise ConfigError(f"{name!r} is not a training setting.")
    meta = found[0].metadata
    keys = ("help", "min", "max", "positive", "choices", "options", "step")
    return SettingBounds(name=name, **{k: meta[k] for k in keys if k in meta})
