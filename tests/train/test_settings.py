"""Each training setting is defined once, in TrainConfig's field metadata: validate, the CLI's flags
and (tests/pages/test_page_train.py) the Train page's widgets all follow it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from facecore.cli.main import build_parser
from facecore.cli.train import configs_from_args
from facecore.data.transforms import AugmentConfig
from facecore.errors import ConfigError
from facecore.models.registry import get_model_spec, list_models
from facecore.train.config import AUGMENT_PRESETS, TrainConfig, setting_bounds, setting_fields

SETTINGS = [setting_bounds(f.name) for f in setting_fields()]


def _just_outside(name: str) -> list[tuple[Any, Any]]:
    """``(refused, accepted)`` pairs for each bound of ``name``: a value just past it, and the bound."""
    b = setting_bounds(name)
    is_int = isinstance(getattr(TrainConfig("d", "custom_cnn"), name), int)
    pairs = []
    if b.positive:
        pairs.append((0.0, math.nextafter(0.0, math.inf)))
    if b.min is not None:
        pairs.append((b.min - 1 if is_int else math.nextafter(b.min, -math.inf), b.min))
    if b.max is not None:
        pairs.append((b.max + 1 if is_int else math.nextafter(b.max, math.inf), b.max))
    if b.choices is not None:
        pairs += [("bogus", choice) for choice in b.choices]
    return pairs


def _config(name: str, value: Any) -> TrainConfig:
    """custom_cnn's config with setting ``name`` at ``value`` (and what else it needs to be valid)."""
    extra: dict[str, Any] = {"augment": AugmentConfig.none()} if name == "cache_features" else {}
    if name == "nproc" and isinstance(value, int) and value > 0:
        extra["batch_size"] = value  # the global batch divides over the processes
    return TrainConfig("d", "custom_cnn", **{name: value, **extra})


def _arg(value: Any) -> str:
    """``value`` on the command line (a float exactly: ``repr``)."""
    return repr(value) if isinstance(value, float) else str(value)


BOUNDED = [(b.name, refused, accepted) for b in SETTINGS for refused, accepted in _just_outside(b.name)]


def test_every_number_setting_has_bounds_and_every_word_setting_its_choices() -> None:
    bounded = {name for name, _, _ in BOUNDED}
    assert bounded == {
        "epochs", "batch_size", "lr", "optimizer", "weight_decay", "momentum", "schedule", "step_size",
        "gamma", "early_stopping", "monitor", "seed", "amp", "channels_last", "workers",
        "cache_features", "target_far", "nproc",
    }  # fmt: skip
    assert (setting_bounds("nproc").min, setting_bounds("nproc").max) == (1, 256)
    assert setting_bounds("device").options == ("auto", "cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="not a training setting"):
        setting_bounds("dataset")


@pytest.mark.parametrize(("name", "refused", "accepted"), BOUNDED)
def test_validate_refuses_a_value_just_outside_each_bound(name: str, refused: Any, accepted: Any) -> None:
    _config(name, accepted).validate()
    with pytest.raises(ConfigError, match=rf"^Invalid training config: {name} must be .*\.$") as err:
        _config(name, refused).validate()
    assert err.value.args[0] == f"Invalid training config: {setting_bounds(name).problem(refused)}."


def test_the_messages_name_each_bound() -> None:
    def message(**kw: Any) -> str:
        with pytest.raises(ConfigError) as err:
            TrainConfig("d", "custom_cnn", **kw).validate()
        return str(err.value)

    assert message(epochs=0) == "Invalid training config: epochs must be at least 1."
    assert message(batch_size=4097) == "Invalid training config: batch_size must be between 1 and 4096."
    assert message(lr=-1e-3) == "Invalid training config: lr must be positive."
    assert message(target_far=1.5) == "Invalid training config: target_far must be between 0 and 1."
    assert message(nproc=257) == "Invalid training config: nproc must be between 1 and 256."
    assert message(gamma=0.0) == "Invalid training config: gamma must be between 0.001 and 1."
    assert message(optimizer="lbfgs") == (
        "Invalid training config: optimizer must be one of adam, adamw, sgd, rmsprop."
    )
    assert message(batch_size=30, nproc=4) == (
        "Invalid training config: batch_size (the global batch) must divide by nproc."
    )


def test_the_cli_flags_follow_the_metadata_and_validate_refuses_out_of_bounds_values() -> None:
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train._actions}
    for b in SETTINGS:
        action = actions[b.name]
        assert action.help == b.help and action.default is None
        assert action.choices == (list(b.choices) if b.choices else None), b.name
    for name, refused, accepted in BOUNDED:
        # (cache_features=on needs augmentation off: the pretrained model's default)
        model = "resnet50_pretrained" if name == "cache_features" else "custom_cnn"
        base = ["train", "--dataset", "d", "--model", model]
        flag = f"--{name.replace('_', '-')}"
        extra = [f"--batch-size={accepted}"] if name == "nproc" else []
        configs_from_args(parser.parse_args([*base, f"{flag}={_arg(accepted)}", *extra]))
        if setting_bounds(name).choices:
            with pytest.raises(SystemExit):  # argparse refuses a word outside the choices
                parser.parse_args([*base, f"{flag}={refused}"])
            continue
        with pytest.raises(ConfigError, match=f"{name} must be"):
            configs_from_args(parser.parse_args([*base, f"{flag}={_arg(refused)}"]))


def test_each_models_defaults_are_declared_on_its_spec() -> None:
    """``TrainConfig.for_model`` starts from the registered model's ``train_defaults``."""
    for name in list_models():
        defaults = get_model_spec(name).train_defaults
        assert defaults, name
        cfg = TrainConfig.for_model(name, "d")
        for key, value in defaults.items():
            want = AUGMENT_PRESETS[value]() if key == "augment" else value
            assert getattr(cfg, key) == want, (name, key)
        assert TrainConfig.for_model(name, "d", epochs=2).epochs == 2  # an override wins


def test_no_augment_lets_a_scratch_model_cache_features() -> None:
    """``--no-augment`` is applied before the config is checked: a model that augments by default
    may cache features once augmentation is off, and is refused with it on."""
    parser = build_parser()
    base = ["train", "--dataset", "d", "--model", "custom_cnn", "--cache-features", "on"]
    (cfg,) = configs_from_args(parser.parse_args([*base, "--no-augment"]))
    assert cfg.cache_features == "on" and cfg.augment == AugmentConfig.none()
    with pytest.raises(ConfigError, match="cache"):
        configs_from_args(parser.parse_args(base))
