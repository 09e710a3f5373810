"""Which runs live video offers (:func:`default_runs`) and what its models are called in the
stats (:func:`display_names`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from facecore.recognize.protocol import Recognizer
    from facecore.recognize.runs import Run


def default_runs(runs: Sequence[Run], group: str | None = None) -> dict[str, str]:
    """Model -> run: the newest run of each model (only runs of ``group`` when given).

    ``runs``: :class:`~facecore.recognize.runs.Run` records, newest first (as
    :func:`~facecore.recognize.runs.list_runs` gives them); finished runs win over runs still training
    or stopped.
    """
    chosen: dict[str, str] = {}
    for finished in (True, False):
        for r in runs:
            if group is not None and (r.group or "") != group:
                continue
            if (r.state == "finished") == finished and r.model is not None and r.model not in chosen:
                chosen[r.model] = r.run
    return chosen


def display_names(models: Sequence[Recognizer]) -> list[str]:
    """Each model's name in stats: its model name, or its run name when two share a model."""
    counts: dict[str, int] = {}
    for m in models:
        counts[m.model_name] = counts.get(m.model_name, 0) + 1
    return [m.model_name if counts[m.model_name] == 1 else m.run for m in models]


__all__ = ["default_runs", "display_names"]
