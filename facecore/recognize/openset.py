"""Open-set recognition: reject faces of people the model was not trained on.

Score: the maximum softmax probability, or the cosine similarity of the face's embedding to its
class centroid when that separates Unknown faces better on validation (see :data:`SCORES`). A
face is *accepted* as its top class when that score is at least the threshold and the top class is
not ``Unknown``; otherwise it is *rejected* (shown as "Unknown"). Over thresholds from 0 to 1 we
record, on a labelled split:

* ``known_accuracy``: known people's faces accepted **and** named correctly;
* ``unknown_rejected``: ``Unknown`` faces rejected;
* ``false_accept_rate``: ``Unknown`` faces accepted as some known person (1 - rejected).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_THRESHOLD = 0.5


#: Unknown scores, higher for faces more like the known people: the maximum softmax probability,
#: the maximum logit, the energy score (logsumexp of the logits), and the cosine similarity of a
#: face's penultimate-layer embedding to the centroid of its predicted class (1 - cosine distance).
SCORES = ("max_softmax", "max_logit", "energy", "centroid_cosine")
#: Scores with a fixed 0-1 scale, which a stored threshold (and the pages' sliders) can use.
#: ``max_logit`` and ``energy`` have no fixed range: they are reported, not chosen.
THRESHOLD_SCORES = ("max_softmax", "centroid_cosine")


def class_centroids(embeddings: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per class, the unit-length mean of its unit-length embeddings (zeros for a class with none)."""
    e = _unit(embeddings)
    out = np.zeros((n_classes, e.shape[1]), np.float32)
    for c in range(n_classes):
        rows = e[np.asarray(labels) == c]
        if len(rows):
            out[c] = rows.mean(axis=0)
    return _unit(out)


def centroid_cosine(embeddings: np.ndarray, pred: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Cosine similarity of each embedding to the centroid of its predicted class."""
    return np.einsum("nd,nd->n", _unit(embeddings), np.asarray(centroids, np.float32)[np.asarray(pred)])


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def unknown_scores(
    logits: np.ndarray, embeddings: np.ndarray | None = None, centroids: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Every score of :data:`SCORES` that can be computed (centroid_cosine needs both arrays)."""
    logits = np.asarray(logits, dtype=np.float64)
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    out = {
        "max_softmax": (e / e.sum(1, keepdims=True)).max(1),
        "max_logit": logits.max(1),
        "energy": logits.max(1) + np.log(e.sum(1)),  # -E(x) = logsumexp(logits)
    }
    if embeddings is not None and centroids is not None and len(logits):
        out["centroid_cosine"] = centroid_cosine(embeddings, logits.argmax(1), centroids).astype(np.float64)
    return out


def sweep(
    probs: np.ndarray, labels: np.ndarray, unknown_index: int | None, *, steps: int = 101
) -> list[dict[str, float | None]]:
    """One row per threshold in ``linspace(0, 1, steps)``, on the maximum probability."""
    probs = np.asarray(probs, dtype=np.float64)
    return sweep_scores(probs.max(axis=1), probs.argmax(axis=1), labels, unknown_index, steps=steps)


def sweep_scores(
    conf: np.ndarray, pred: np.ndarray, labels: np.ndarray, unknown_index: int | None, *, steps: int = 101
) -> list[dict[str, float | None]]:
    """One row per threshold in ``linspace(0, 1, steps)`` for any 0-1 score ``conf`` of the
    predictions ``pred``."""
    conf = np.asarray(conf, dtype=np.float64)
    pred = np.asarray(pred)
    labels = np.asarray(labels)
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


def operating_point(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """The sweep row whose threshold is nearest ``threshold``: the figures at that operating point."""
    return min(rows, key=lambda r: abs(float(r["threshold"]) - threshold))


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


def choose_score(aurocs: dict[str, dict[str, float] | None]) -> str:
    """The score of :data:`THRESHOLD_SCORES` with the highest AUROC (max_softmax on a tie or when
    none was measured)."""
    best, best_auc = "max_softmax", -1.0
    for name in THRESHOLD_SCORES:
        auc = (aurocs.get(name) or {}).get("auroc")
        if auc is not None and auc > best_auc + 1e-9:
            best, best_auc = name, float(auc)
    return best


def open_set_scores(
    logits: np.ndarray,
    labels: np.ndarray,
    unknown: int | None,
    embeddings: np.ndarray | None = None,
    centroids: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """How well each score of :data:`facecore.recognize.openset.SCORES` separates known faces from
    ``Unknown`` ones (threshold-free); ``centroid_cosine`` when embeddings and class centroids are given.

    A face predicted as ``Unknown`` is always rejected, so its score is set below every other.
    ``auroc``: chance that a known face scores above an Unknown one; ``far_at_95_known``: the
    false-accept rate when 95% of known faces are accepted (lower is better). Training stores the
    threshold on whichever of ``max_softmax`` and ``centroid_cosine`` has the higher validation AUROC.
    """
    from sklearn.metrics import roc_auc_score, roc_curve  # scikit-learn loads slowly: only when scoring

    if unknown is None or len(labels) == 0:
        return None
    is_known = labels != unknown
    if is_known.all() or not is_known.any():
        return None
    pred = logits.argmax(1)
    raw = unknown_scores(logits, embeddings, centroids)
    out = {}
    for name, s in raw.items():
        s = s.astype(np.float64).copy()
        s[pred == unknown] = s.min() - 1.0
        fpr, tpr, _ = roc_curve(is_known, s, drop_intermediate=False)
        out[name] = {
            "auroc": round(float(roc_auc_score(is_known, s)), 6),
            "far_at_95_known": round(float(fpr[np.searchsorted(tpr, 0.95, side="left")]), 6),
        }
    return out
