"""Open-set recognition: reject faces of people the model was not trained on.

Score: the maximum softmax probability. A face is *accepted* as its top class when that score
is at least the threshold and the top class is not ``Unknown``; otherwise it is *rejected*
(shown as "Unknown"). Over thresholds from 0 to 1 we record, on a labelled split:

* ``known_accuracy``: known people's faces accepted **and** named correctly;
* ``unknown_rejected``: ``Unknown`` faces rejected;
* ``false_accept_rate``: ``Unknown`` faces accepted as some known person (1 - rejected).
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5


def sweep(
    probs: np.ndarray, labels: np.ndarray, unknown_index: int | None, *, steps: int = 101
) -> list[dict[str, float | None]]:
    """One row per threshold in ``linspace(0, 1, steps)``."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    is_unknown = labels == unknown_index if unknown_index is not None else np.zeros(len(labels), bool)
    known = ~is_unknown
    rows = []
    for t in np.linspace(0.0, 1.0, steps):
        accepted = (conf >= t) & (pred != unknown_index if unknown_index is not None else True)
        row: dict[str, float | None] = {
            "threshold": round(float(t), 4),
            "known_accuracy": float(np.mean(accepted[known] & (pred[known] == labels[known])))
            if known.any()
            else None,
            "known_accepted": float(np.mean(accepted[known])) if known.any() else None,
            "unknown_rejected": None,
            "false_accept_rate": None,
        }
        if is_unknown.any():
            far = float(np.mean(accepted[is_unknown]))
            row["false_accept_rate"], row["unknown_rejected"] = far, 1.0 - far
        rows.append(row)
    return rows


#: A target false-accept rate is given up when meeting it keeps fewer than this share of the
#: known faces that are named correctly with no threshold at all.
KEEP_FRACTION = 0.5


def suggest_threshold(rows: list[dict[str, float | None]], target_far: float = 0.01) -> dict:
    """The lowest threshold whose false-accept rate is at most ``target_far``.

    The lowest such threshold keeps the most known faces. When meeting the target would leave
    fewer than :data:`KEEP_FRACTION` of the known faces named (a weak model that is as sure of
    strangers as of the people it knows: every face would read "Unknown"), the threshold that
    best balances the two (highest known accuracy minus false-accept rate, the lowest such) is
    suggested instead, with a ``reason`` and the ``target_threshold`` that was given up.
    Without ``Unknown`` faces there is nothing to calibrate on: :data:`DEFAULT_THRESHOLD` is
    returned with ``calibrated=False``.
    """
    if not rows or rows[0]["false_accept_rate"] is None:
        return {
            "threshold": DEFAULT_THRESHOLD,
            "calibrated": False,
            "target_far": target_far,
            "reason": "no Unknown faces in the split to calibrate on",
        }
    meets = [r for r in rows if r["false_accept_rate"] is not None and r["false_accept_rate"] <= target_far]
    found = meets[0] if meets else rows[-1]
    base = rows[0]["known_accuracy"] or 0.0
    kept = found["known_accuracy"] or 0.0
    if base > 0 and kept < KEEP_FRACTION * base:
        def balance(r: dict) -> tuple[float, float]:
            return ((r["known_accuracy"] or 0.0) - r["false_accept_rate"], -r["threshold"])

        best = max(rows, key=balance)
        return {
            **best,
            "calibrated": True,
            "target_far": target_far,
            "target_threshold": found["threshold"],
            "reason": (
                f"a false-accept rate of {target_far:.0%} needs threshold {found['threshold']:.2f}, where "
                f"only {kept:.0%} of known faces are named (against {base:.0%} with no threshold); "
                + (
                    "no other threshold balances known accuracy against false accepts better"
                    if best["threshold"] == found["threshold"]
                    else "the threshold that best balances known accuracy against false accepts is used"
                )
            ),
        }
    if not meets:
        return {
            **found,
            "calibrated": True,
            "target_far": target_far,
            "reason": "no threshold reaches the target; the strictest is used",
        }
    return {**found, "calibrated": True, "target_far": target_far}
