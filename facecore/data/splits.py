"""Deterministic, stratified train/val/test splits (scikit-learn), kept stable on append."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from facecore.constants import SPLITS
from facecore.errors import SplitError

DEFAULT_RATIOS = (0.70, 0.15, 0.15)
#: A class needs one image in each split.
MIN_PER_CLASS = 3


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or ratios[0] <= 0:
        raise SplitError(f"Split ratios must be three non-negative numbers with train > 0, got {ratios}.")
    total = sum(ratios)
    return tuple(r / total for r in ratios)  # type: ignore[return-value]


def _split_one(keys: list[str], ratios: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Split one class's keys; every split that has a non-zero ratio gets at least one key."""
    # scikit-learn loads slowly: imported when a split is made, not by every reader of datasets
    from sklearn.model_selection import train_test_split

    n = len(keys)
    n_test = max(1, round(n * ratios[2])) if ratios[2] > 0 else 0
    n_val = max(1, round(n * ratios[1])) if ratios[1] > 0 else 0
    keys = sorted(keys)
    out: dict[str, str] = {}
    rest = keys
    if n_test:
        rest, test = train_test_split(rest, test_size=n_test, random_state=seed, shuffle=True)
        out.update(dict.fromkeys(test, "test"))
    if n_val:
        rest, val = train_test_split(rest, test_size=n_val, random_state=seed, shuffle=True)
        out.update(dict.fromkeys(val, "val"))
    out.update(dict.fromkeys(rest, "train"))
    return out


def assign_splits(
    labels: dict[str, str],
    existing: dict[str, str] | None = None,
    *,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
) -> tuple[dict[str, str], list[str]]:
    """Give each key (an image's sha256) a split, stratified by its class label.

    ``existing`` assignments are kept as they are, so appending images never moves a held-out
    image into training. New keys of a class are split among themselves when there are at
    least :data:`MIN_PER_CLASS` of them; fewer join ``train`` when the class already has
    held-out images, and otherwise stay unassigned with a message in the returned list.
    """
    r = check_ratios(ratios)
    existing = {k: v for k, v in (existing or {}).items() if k in labels and v in SPLITS}
    by_class: dict[str, list[str]] = defaultdict(list)
    for key, cls in labels.items():
        if key not in existing:
            by_class[cls].append(key)
    out = dict(existing)
    messages: list[str] = []
    held_out = {labels[k] for k, v in existing.items() if v != "train"}
    for cls in sorted(by_class):
        keys = by_class[cls]
        if len(keys) >= MIN_PER_CLASS:
            out.update(_split_one(keys, r, seed))
        elif cls in held_out:
            out.update(dict.fromkeys(keys, "train"))
        else:
            total = sum(1 for c in labels.values() if c == cls)
            messages.append(
                f"Class {cls!r} has {total} image{'s' if total != 1 else ''}; at least "
                f"{MIN_PER_CLASS} are needed to give it train, validation and test images. "
                "Add more images of this person; until then it is left out of the split."
            )
    return out, messages


def split_counts(labels: dict[str, str], splits: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per class, the number of images in each split (and ``unsplit``)."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys((*SPLITS, "unsplit"), 0))
    for key, cls in labels.items():
        table[cls][splits.get(key) or "unsplit"] += 1
    return dict(sorted(table.items()))
