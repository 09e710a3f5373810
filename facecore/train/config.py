"""The training config: one dataclass that the CLI and the dashboard both build.

It is saved whole in every checkpoint (``TrainConfig.to_dict``), so a run can be rebuilt and
resumed from its checkpoint alone.

Defaults per model, and why (the study trained with Adam and cross-entropy, batch 32-128,
5 epochs for the ResNet50s and 10 for the custom CNN):

* ``resnet50_pretrained``: 5 epochs, Adam lr 3e-4. Only ``layer4`` and ``fc`` train, on top of
  ImageNet features; 1e-3 visibly disturbs the pretrained ``layer4`` in the first epoch, 3e-4
  does not. Online augmentation is off by default so that the frozen part's output can be
  computed once per image and cached (exact, and 3x+ faster on a CPU); switch augmentations
  on (the cache then turns itself off) or use ``dataset augment`` copies instead.
* ``resnet50_scratch``: 5 epochs, Adam lr 1e-3, every augmentation on: 23.5 M weights learn
  from a few hundred faces, so it needs all the variety it can get.
* ``custom_cnn``: 10 epochs, Adam lr 3e-4: the study saw its loss fluctuate at 1e-3 and run
  smoothly at lower rates; weight decay 1e-4 because its single Linear layer holds 99% of
  its weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from facecore.data.transforms import AugmentConfig, is_deterministic
from facecore.errors import ConfigError
from facecore.models.registry import get_model_spec

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("none", "step", "cosine", "plateau")
MONITORS = ("val_loss", "val_f1")

def _opt(default: Any, help: str, **cli: Any) -> Any:
    """A field with a default and its ``--flag`` help: the CLI's training options are built from
    these (:func:`facecore.cli.train.add_config_arguments`), so CLI and Train page offer the same."""
    return field(default=default, metadata={"help": help, **cli})


_MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "resnet50_pretrained": {"epochs": 5, "lr": 3e-4, "augment": AugmentConfig.none},
    "resnet18_pretrained": {"epochs": 5, "lr": 3e-4, "augment": AugmentConfig.none},
    "resnet50_scratch": {"epochs": 5, "lr": 1e-3},
    "custom_cnn": {"epochs": 10, "lr": 3e-4, "weight_decay": 1e-4},
}


@dataclass
class TrainConfig:
    """Everything a training run depends on. Build it with :meth:`for_model`."""

    dataset: str
    model: str
    epochs: int = _opt(5, "epochs (default: the model's own)")
    batch_size: int = _opt(32, "the global batch size, split evenly over --nproc processes")
    lr: float = _opt(1e-3, "learning rate (default: the model's own; not scaled with --nproc)")
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = _opt("adam", "optimizer")
    weight_decay: float = _opt(0.0, "weight decay (L2)")
    momentum: float = _opt(0.9, "SGD and RMSprop momentum")
    schedule: Literal["none", "step", "cosine", "plateau"] = _opt("none", "learning-rate schedule")
    step_size: int = _opt(3, "step schedule: epochs between decays (plateau: waits step_size - 1 epochs)")
    gamma: float = _opt(0.1, "step and plateau schedules: the decay factor")
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    early_stopping: int = _opt(0, "stop after N epochs without improvement (0: never)", metavar="PATIENCE")
    monitor: Literal["val_loss", "val_f1"] = _opt("val_f1", "what picks the best checkpoint")
    seed: int = _opt(0, "random seed (splits of batches, initial weights, augmentation)")
    device: str = _opt("auto", "auto (default), cpu, cuda, mps")
    amp: Literal["auto", "on", "off"] = _opt("auto", "mixed precision (auto: on CUDA)")
    channels_last: Literal["auto", "on", "off"] = _opt("auto", "channels-last memory format (auto: CUDA)")
    workers: int = _opt(-1, "DataLoader workers (-1: automatic)")
    cache_features: Literal["auto", "on", "off"] = _opt(
        "auto", "pretrained model: compute the frozen layers once and cache them"
    )
    trainable_from: str | None = _opt(
        None, "pretrained model: fc, layer4 (default), layer3, layer2, layer1 or all"
    )
    target_far: float = _opt(0.01, "false-accept rate the stored Unknown threshold aims at (default 0.01)")
    run_name: str = _opt("", "run folder name under models/ (default: DATASET-MODEL-TIME)")
    group: str = _opt("", "comparison group name stamped on the runs")
    #: processes on this machine (DDP under torchrun when > 1): ``batch_size`` is the global batch,
    #: split evenly over them; the learning rate is not scaled
    nproc: int = _opt(
        1,
        "processes on this machine: one per GPU, or per CPU socket (default 1); --batch-size is the "
        "global batch, split over all processes",
        group="ddp",
    )

    @classmethod
    def for_model(cls, model: str, dataset: str, **overrides: Any) -> TrainConfig:
        """The config with ``model``'s own defaults, then ``overrides`` (None values ignored)."""
        get_model_spec(model)
        base = {k: (v() if callable(v) else v) for k, v in _MODEL_DEFAULTS.get(model, {}).items()}
        base.update({k: v for k, v in overrides.items() if v is not None})
        cfg = cls(dataset=dataset, model=model, **base)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`FacecoreError` naming the first invalid field."""
        spec = get_model_spec(self.model)
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (1 <= self.batch_size <= 4096, "batch_size must be between 1 and 4096"),
            (self.lr > 0, "lr must be positive"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.monitor in MONITORS, f"monitor must be one of {', '.join(MONITORS)}"),
            (self.early_stopping >= 0, "early_stopping (patience) must be >= 0"),
            (self.amp in ("auto", "on", "off"), "amp must be auto, on or off"),
            (self.channels_last in ("auto", "on", "off"), "channels_last must be auto, on or off"),
            (self.cache_features in ("auto", "on", "off"), "cache_features must be auto, on or off"),
            (0 <= self.target_far <= 1, "target_far must be between 0 and 1"),
            (1 <= self.nproc <= 256, "nproc must be between 1 and 256"),
            (self.batch_size % max(self.nproc, 1) == 0, "batch_size (the global batch) must divide by nproc"),
            (
                self.trainable_from is None or self.trainable_from in spec.trainable_from_choices,
                f"trainable_from must be one of {', '.join(spec.trainable_from_choices)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
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
