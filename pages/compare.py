"""Compare: trained runs side by side on their held-out test images, and on a photo you upload.

Everything here is also on the command line: ``python -m facecore evaluate --model RUN``,
``python -m facecore compare RUN RUN --out DIR`` and ``python -m facecore predict PHOTO --model RUN``.
The tabs are drawn by :mod:`pages.widgets.compare_tabs`.
"""

from __future__ import annotations

import pages.widgets.torch_first  # noqa: F401  # first: see there

# isort: split

from dataclasses import replace
from functools import partial

import streamlit as st

from facecore.errors import FacecoreError
from facecore.evaluate import MAX_RUNS, Evaluation, cached_evaluation, evaluate_run, short_names
from facecore.gallery import cached_gallery_evaluation, evaluate_gallery, list_galleries
from facecore.mode import read_only
from facecore.recognize import RecognizerRef
from facecore.train import Run, list_runs
from pages.common import say_uncalibrated, setup_page
from pages.widgets.compare_tabs import (
    confusion_section,
    gallery_section,
    metrics_section,
    openset_section,
    photo_section,
)

setup_page()

TABS = ("Metrics", "Confusion", "Gallery", "Open set", "Try a photo")


# --- choosing and evaluating runs ------------------------------------------------------------------


def choose_runs(runs: list[Run]) -> list[Run]:
    """Pick a dataset, then a training group or runs of it (at most ``MAX_RUNS``)."""
    datasets = list(dict.fromkeys(r.dataset for r in runs))
    left, right = st.columns([1, 3])
    current = st.session_state.get("dataset")  # the dataset chosen on the other pages, if it has runs
    dataset = left.selectbox(
        "Dataset",
        datasets,
        index=datasets.index(current) if current in datasets else 0,
        key="compare-dataset",
    )
    mine = [r for r in runs if r.dataset == dataset]
    groups = list(dict.fromkeys(r.group for r in mine if r.group))
    # a choice only when there is one: runs trained together as a group, or runs picked by hand
    mode = (
        left.radio("Compare", ["A training group", "Runs I pick"], key="compare-mode", horizontal=True)
        if groups
        else "Runs I pick"
    )
    if mode == "A training group":

        def describe(group: str) -> str:
            return f"{group}: " + ", ".join(r.model for r in mine if r.group == group)

        group = right.selectbox(
            "Group (runs trained together)", groups, format_func=describe, key=f"compare-group-{dataset}"
        )
        chosen = [r for r in mine if r.group == group][:MAX_RUNS]
    else:
        names = [r.run for r in mine]
        picked = right.multiselect(
            f"Runs (up to {MAX_RUNS})",
            names,
            default=names[:3],
            max_selections=MAX_RUNS,
            key=f"compare-runs-{dataset}",
        )
        chosen = [r for r in mine if r.run in picked]
    return sorted(chosen, key=lambda r: (r.model, r.run))


def evaluate(chosen: list[Run]) -> dict[str, Evaluation]:
    """Each run's test evaluation: the one saved in its folder, else computed now (and saved)."""
    out = {}
    for r in chosen:
        try:
            result = cached_evaluation(r.path)
            if result is None and read_only():
                st.warning(
                    f"{r.run} has not been evaluated, and presentation mode saves nothing: evaluate it "
                    f"before the demo (`python -m facecore evaluate --model {r.run}`)."
                )
                continue
            if result is None:
                with st.spinner(f"Evaluating {r.run} on the test images (once: the result is saved)…"):
                    result = evaluate_run(r.path)
        except FacecoreError as exc:
            st.error(f"{r.run} cannot be evaluated: {exc}")
            continue
        out[r.run] = result
        for warning in result.warnings:
            st.warning(f"{r.run}: {warning}")
    return out


def choose_galleries(dataset: str) -> list[str]:
    """Galleries to put beside the runs, evaluated on the same dataset's test split."""
    names = list_galleries()
    if not names:
        return []
    return st.multiselect(
        "Galleries beside them (recognition by face embeddings, no training)",
        names,
        default=[dataset] if dataset in names else [],
        key=f"compare-galleries-{dataset}",
        help="Each gallery is evaluated on this dataset's test split: the same faces as the runs.",
    )


def evaluate_galleries(names: list[str], dataset: str) -> dict[str, Evaluation]:
    """Each gallery's evaluation on ``dataset``'s test split: saved, else computed now (and saved)."""
    out = {}
    for name in names:
        label = str(RecognizerRef.gallery(name))
        try:
            result = cached_gallery_evaluation(name, dataset)
            if result is None and read_only():
                st.warning(
                    f"Gallery {name} has not been evaluated on {dataset}, and presentation mode saves "
                    f"nothing: `python -m facecore gallery evaluate {name} --dataset {dataset}` first."
                )
                continue
            if result is None:
                with st.spinner(f"Evaluating gallery {name} on the test images (once: the result is saved)…"):
                    result = evaluate_gallery(name, dataset)
        except FacecoreError as exc:
            st.error(f"Gallery {name} cannot be evaluated: {exc}")
            continue
        out[label] = replace(result, checkpoint=label)
        for warning in result.warnings:
            st.warning(f"{label}: {warning}")
    return out


# --- the page ----------------------------------------------------------------------------------------------


def main() -> None:
    """The Compare page."""
    st.title("Compare")
    runs = [r for r in list_runs() if r.ready]
    if not runs:
        st.info(
            "No trained runs yet. Train the three models on a dataset first, on the Train page or from "
            "the command line: `python -m facecore train --dataset NAME --model all`."
        )
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        if list_galleries():
            st.subheader("Try a photo with a gallery")
            names = [str(RecognizerRef.gallery(g)) for g in list_galleries()]
            say_uncalibrated(names)
            photo_section(dict(zip(names, names, strict=True)), names)
        return
    chosen = choose_runs(runs)
    galleries = choose_galleries(st.session_state.get("compare-dataset") or runs[0].dataset)
    if not chosen and not galleries:
        st.info("Choose at least one run or gallery to compare.")
        return
    say_uncalibrated(galleries)
    evals = evaluate(chosen)
    evals |= evaluate_galleries(galleries, st.session_state.get("compare-dataset") or runs[0].dataset)
    if not evals:
        return
    short = short_names(evals)
    tabs = st.tabs(TABS, on_change="rerun", key="compare-tab")
    sections = (
        partial(metrics_section, evals, short),
        partial(confusion_section, evals),
        partial(gallery_section, evals, short),
        partial(openset_section, evals),
        partial(photo_section, {short[label]: e.checkpoint for label, e in evals.items()}, list(evals)),
    )
    for tab, section in zip(tabs, sections, strict=True):
        if tab.open:
            with tab:
                section()


main()
