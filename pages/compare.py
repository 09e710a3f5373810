"""Compare: trained runs side by side on their held-out test images, and on a photo you upload.

Everything here is also on the command line: ``python -m facecore evaluate --model RUN``,
``python -m facecore compare RUN RUN --out DIR`` and ``python -m facecore predict PHOTO --model RUN``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from facecore.data.dataset import UNKNOWN
from facecore.data.images import IMAGE_EXTENSIONS, MAX_FILE_BYTES, load_rgb
from facecore.detect.detectors import Detection, crop_face
from facecore.errors import FacecoreError, ImageError
from facecore.evaluate.compare import MAX_RUNS, summary_row
from facecore.evaluate.evaluation import cached_evaluation, evaluate_run
from facecore.evaluate.figures import (
    bars_figure,
    confusion_select_figure,
    cost_figure,
    faces_image,
    openset_threshold_figure,
)
from facecore.gallery.evaluate import cached_gallery_evaluation, evaluate_gallery
from facecore.gallery.store import list_galleries
from facecore.mode import read_only
from pages.common import get_predictor, list_runs, read_predictions, setup_page

setup_page()

PAGE_SIZE = 12
GALLERY_COLUMNS = 3
CELL_KEY = "compare-cell"
FILTERS = ("All", "Any model wrong", "Models disagree")
TABS = ("Metrics", "Confusion", "Gallery", "Open set", "Try a photo")


# --- choosing and evaluating runs ------------------------------------------------------------------


def choose_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pick a dataset, then a training group or runs of it (at most ``MAX_RUNS``)."""
    datasets = list(dict.fromkeys(r["dataset"] for r in runs))
    left, right = st.columns([1, 3])
    current = st.session_state.get("dataset")  # the dataset chosen on the other pages, if it has runs
    dataset = left.selectbox(
        "Dataset",
        datasets,
        index=datasets.index(current) if current in datasets else 0,
        key="compare-dataset",
    )
    mine = [r for r in runs if r["dataset"] == dataset]
    groups = list(dict.fromkeys(r["group"] for r in mine if r.get("group")))
    # a choice only when there is one: runs trained together as a group, or runs picked by hand
    mode = (
        left.radio("Compare", ["A training group", "Runs I pick"], key="compare-mode", horizontal=True)
        if groups
        else "Runs I pick"
    )
    if mode == "A training group":

        def describe(group: str) -> str:
            return f"{group}: " + ", ".join(r["model"] for r in mine if r.get("group") == group)

        group = right.selectbox(
            "Group (runs trained together)", groups, format_func=describe, key=f"compare-group-{dataset}"
        )
        chosen = [r for r in mine if r.get("group") == group][:MAX_RUNS]
    else:
        names = [r["run"] for r in mine]
        picked = right.multiselect(
            f"Runs (up to {MAX_RUNS})",
            names,
            default=names[:3],
            max_selections=MAX_RUNS,
            key=f"compare-runs-{dataset}",
        )
        chosen = [r for r in mine if r["run"] in picked]
    return sorted(chosen, key=lambda r: (r["model"], r["run"]))


def evaluate(chosen: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each run's test evaluation: the one saved in its folder, else computed now (and saved)."""
    out = {}
    for r in chosen:
        try:
            result = cached_evaluation(r["path"])
            if result is None and read_only():
                st.warning(
                    f"{r['run']} has not been evaluated, and presentation mode saves nothing: evaluate it "
                    f"before the demo (`python -m facecore evaluate --model {r['run']}`)."
                )
                continue
            if result is None:
                with st.spinner(f"Evaluating {r['run']} on the test images (once: the result is saved)…"):
                    result = evaluate_run(r["path"])
        except FacecoreError as exc:
            st.error(f"{r['run']} cannot be evaluated: {exc}")
            continue
        out[r["run"]] = result
        for warning in result.get("warnings", []):
            st.warning(f"{r['run']}: {warning}")
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


def evaluate_galleries(names: list[str], dataset: str) -> dict[str, dict[str, Any]]:
    """Each gallery's evaluation on ``dataset``'s test split: saved, else computed now (and saved)."""
    out = {}
    for name in names:
        label = f"gallery:{name}"
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
        out[label] = {**result, "checkpoint": label}
        for warning in result.get("warnings", []):
            st.warning(f"{label}: {warning}")
    return out


def cli_names(evals: dict[str, Any], run_flag: str = "") -> str:
    """The runs and galleries of ``evals`` as command-line arguments (``--gallery NAME`` for a gallery)."""
    gallery = "gallery:"
    return " ".join(
        f"--gallery {label.removeprefix(gallery)}" if label.startswith(gallery) else f"{run_flag}{label}"
        for label in evals
    )


def short_names(evals: dict[str, dict[str, Any]]) -> dict[str, str]:
    """A short name per run: its model when the models differ, else the run name."""
    models = [e["model"] for e in evals.values()]
    unique = len(set(models)) == len(models)
    return {label: (e["model"] if unique else label) for label, e in evals.items()}


# --- metrics ---------------------------------------------------------------------------------------


#: Rows of the metrics table: (row name, summary_row key, format, which value is best).
TABLE_ROWS = (
    ("accuracy", "accuracy", "{:.3f}", max),
    ("macro F1", "macro_f1", "{:.3f}", max),
    ("weighted F1", "weighted_f1", "{:.3f}", max),
    ("false-accept rate at threshold", "far_at_threshold", "{:.3f}", min),
    ("threshold", "threshold", "{:.2f}", None),
    ("trainable parameters", "params_trainable", "{:,}", None),
    ("total parameters", "params_total", "{:,}", None),
    ("checkpoint size (MB)", "checkpoint_mb", "{:.1f}", min),
    ("training time (minutes)", "train_minutes", "{:.2f}", min),
    ("ms per image (batch 1)", "ms_per_image_b1", "{:.2f}", min),
    ("ms per image (batch 32)", "ms_per_image_b32", "{:.2f}", min),
)
BEST_CSS = "font-weight: 700; background-color: rgba(33, 195, 84, 0.15)"


def metrics_table(evals: dict[str, dict[str, Any]], short: dict[str, str]) -> Any:
    """One column per run, one row per metric (per-class F1 after the F1 rows); the best value of
    each row that has one is highlighted."""
    rows = {label: summary_row(label, e) for label, e in evals.items()}
    classes = next(iter(evals.values()))["classes"]
    spec = []
    if any(short[label] != label for label in evals):
        spec.append(("run", "label", "{}", None))
    if any(short[label] != e["model"] for label, e in evals.items()):
        spec.append(("model", "model", "{}", None))
    spec += [*TABLE_ROWS[:3], *((f"F1 {c}", f"f1:{c}", "{:.3f}", max) for c in classes), *TABLE_ROWS[3:]]
    for label, e in evals.items():
        rows[label].update({f"f1:{c}": e["per_class"][c]["f1"] for c in classes})
    text = pd.DataFrame(index=[name for name, *_ in spec], columns=[short[label] for label in evals])
    css = pd.DataFrame("", index=text.index, columns=text.columns)
    for name, key, fmt, best in spec:
        values = [rows[label][key] for label in evals]
        text.loc[name] = ["n/a" if v is None else fmt.format(v) for v in values]
        known = [v for v in values if v is not None]
        if best is not None and len(set(known)) > 1:
            css.loc[name] = [BEST_CSS if v == best(known) else "" for v in values]
    return text.style.apply(lambda _: css, axis=None)


def metrics_section(evals: dict[str, dict[str, Any]], short: dict[str, str]) -> None:
    """The metrics table (best value of each row highlighted) and bar charts of quality, size and speed."""
    st.table(metrics_table(evals, short))
    first = next(iter(evals.values()))
    st.caption(
        f"{first['n_images']} test images of `{first['dataset']}`. False accepts: Unknown test faces named "
        f"as someone at the model's threshold. Latency on {first.get('device', 'cpu')}. From the command "
        f"line: `python -m facecore compare {cli_names(evals)} --out reports/{first['dataset']}`"
    )
    rows = [{**summary_row(label, e), "label": short[label]} for label, e in evals.items()]
    left, right = st.columns(2)
    left.plotly_chart(bars_figure(rows), key="compare-bars")
    right.plotly_chart(cost_figure(rows), key="compare-cost")


# --- confusion matrices ------------------------------------------------------------------------------


def _cell_clicked(chart_key: str, label: str) -> None:
    """A confusion-matrix click: show that cell's images (through the cell chooser's state)."""
    points = st.session_state[chart_key].selection.points
    if points:
        st.session_state[CELL_KEY] = (label, str(points[0]["y"]), str(points[0]["x"]))


def confusion_section(evals: dict[str, dict[str, Any]]) -> None:
    """One clickable confusion matrix per run, and the images of the chosen cell."""
    cols = st.columns(min(len(evals), 3))
    for i, (label, e) in enumerate(evals.items()):
        key = f"compare-cm-{label}"
        cols[i % len(cols)].plotly_chart(
            confusion_select_figure(e["confusion_matrix"], e["classes"], f"{label} ({e['model']})"),
            key=key,
            on_select=partial(_cell_clicked, key, label),
            selection_mode="points",
        )
    cells = [
        (label, t, p, e["confusion_matrix"][i][j])
        for label, e in evals.items()
        for i, t in enumerate(e["classes"])
        for j, p in enumerate(e["classes"])
        if e["confusion_matrix"][i][j] > 0
    ]
    cells.sort(key=lambda c: (c[1] == c[2], -c[3]))
    counts = {c[:3]: c[3] for c in cells}
    if st.session_state.get(CELL_KEY) not in counts:
        st.session_state[CELL_KEY] = None
    choice = st.selectbox(
        "Show the images of",
        list(counts),
        key=CELL_KEY,
        index=None,
        placeholder="click a cell above, or choose one here",
        format_func=lambda c: f"{c[0]}: true {c[1]}, predicted {c[2]} ({plural(counts[c], 'image')})",
    )
    if choice:
        label, true, pred = choice
        show_cell(evals[label], true, pred)


def show_cell(e: dict[str, Any], true: str, pred: str) -> None:
    """The test images of one confusion-matrix cell, least confident first."""
    df = read_predictions(e["predictions_csv"])
    rows = df[(df["true"] == true) & (df["pred"] == pred)].sort_values("confidence")
    verdict = "correct" if true == pred else "mistaken"
    st.markdown(
        f"**{e['run']}**: {plural(len(rows), verdict + ' image')} of **{true}** predicted as "
        f"**{pred}**, least confident first (confidence under each)"
    )
    cols = st.columns(8)
    for i, r in enumerate(rows.head(48).itertuples()):
        with cols[i % 8]:
            show_image(Path(e["dataset_path"]) / r.file)
            st.caption(f"{r.confidence:.2f}")


def plural(n: int, noun: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def show_image(path: Path, width: int | str = "stretch") -> None:
    """A dataset image, or a note when the file has gone."""
    if path.is_file():
        st.image(str(path), width=width)
    else:
        st.caption(f"(missing: {path.name})")


# --- gallery --------------------------------------------------------------------------------------------


def merged_predictions(evals: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per test image: ``file``, ``true`` and each run's ``pred``, ``confidence``, ``accepted``."""
    merged: pd.DataFrame | None = None
    for label, e in evals.items():
        df = read_predictions(e["predictions_csv"])[
            ["file", "true", "pred", "confidence", "accepted_at_threshold"]
        ]
        df = df.rename(
            columns={
                "pred": f"pred:{label}",
                "confidence": f"conf:{label}",
                "accepted_at_threshold": f"acc:{label}",
            }
        )
        merged = df if merged is None else merged.merge(df.drop(columns="true"), on="file", how="inner")
    assert merged is not None
    return merged.sort_values("file", ignore_index=True)


def gallery_section(evals: dict[str, dict[str, Any]], short: dict[str, str]) -> None:
    """The test images with every model's label and confidence, filtered and paged."""
    df = merged_predictions(evals)
    preds = df[[f"pred:{label}" for label in evals]]
    wrong = preds.ne(df["true"], axis=0).any(axis=1)
    disagree = preds.nunique(axis=1) > 1
    how = st.radio(
        "Show",
        FILTERS,
        horizontal=True,
        key="compare-filter",
        captions=[f"{n} images" for n in (len(df), int(wrong.sum()), int(disagree.sum()))],
    )
    shown = df[wrong] if how == FILTERS[1] else df[disagree] if how == FILTERS[2] else df
    if shown.empty:
        st.info("No test image matches this filter.")
        return
    pages = -(-len(shown) // PAGE_SIZE)
    page = st.pagination(pages, key=f"compare-page-{how}-{pages}") if pages > 1 else 1
    dataset = Path(next(iter(evals.values()))["dataset_path"])
    cols = st.columns(GALLERY_COLUMNS)
    for i, (_, row) in enumerate(shown.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE].iterrows()):
        with cols[i % GALLERY_COLUMNS].container(border=True):
            image_col, text_col = st.columns([2, 3])
            with image_col:
                show_image(dataset / row["file"])
            lines = [f"**{row['true']}**"]
            for label in evals:
                pred, conf = row[f"pred:{label}"], row[f"conf:{label}"]
                mark = ":green[✓" if pred == row["true"] else ":red[✗"
                rejected = "" if row[f"acc:{label}"] or pred == UNKNOWN else " (rejected)"
                lines.append(f"{mark} {short[label]}: {pred} {conf:.2f}{rejected}]")
            text_col.markdown("  \n".join(lines))
            st.caption(row["file"])
    st.caption(
        f"Page {page} of {pages}: images {(page - 1) * PAGE_SIZE + 1} to "
        f"{min(page * PAGE_SIZE, len(shown))} of {len(shown)}. Each model's top class and its "
        "confidence; ✓ right, ✗ wrong; (rejected): under the model's threshold, so shown as Unknown."
    )


# --- open set --------------------------------------------------------------------------------------------


def openset_section(evals: dict[str, dict[str, Any]]) -> None:
    """A threshold slider, the open-set curves and each model's operating point at the slider."""
    own = {label: float(e["open_set"]["threshold_in_model"]) for label, e in evals.items()}
    sweeps = {label: e["open_set"]["sweep"] for label, e in evals.items()}
    if next(iter(evals.values()))["unknown_class"] is None:
        st.info(
            "This dataset has no Unknown class, so false accepts cannot be measured. Import faces of "
            "other people into a folder called Unknown to calibrate and compare thresholds."
        )
    threshold = st.slider(
        "Threshold (confidence needed to name a face)",
        0.0,
        1.0,
        step=0.01,
        value=round(next(iter(own.values())), 2),
        key="compare-threshold",
    )
    st.plotly_chart(openset_threshold_figure(sweeps, threshold, own), key="compare-openset")
    rows = []
    for label, rows_ in sweeps.items():
        at = min(rows_, key=lambda r: abs(float(r["threshold"]) - threshold))
        rows.append(
            {
                "run": label,
                "own threshold": own[label],
                "known accuracy": at["known_accuracy"],
                "known faces accepted": at["known_accepted"],
                "false accepts": at["false_accept_rate"],
                "Unknown rejected": at["unknown_rejected"],
            }
        )
    number = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=dict.fromkeys(list(rows[0])[1:], number))
    st.caption(
        "Known accuracy: known people's test faces accepted and named correctly. False accepts: "
        "Unknown test faces named as someone. Each model's own threshold (diamond) was chosen in "
        "training, on the validation faces."
    )


# --- a photo ---------------------------------------------------------------------------------------------


def photo_section(evals: dict[str, dict[str, Any]], short: dict[str, str]) -> None:
    """Upload a photo; every face is detected and recognised by every chosen run."""
    upload = st.file_uploader(
        "A photo with faces (kept in memory only, never saved)",
        type=sorted(ext.lstrip(".") for ext in IMAGE_EXTENSIONS),
        max_upload_size=MAX_FILE_BYTES // 2**20,
        key="compare-photo",
    )
    runs = cli_names(evals, run_flag="--model ")
    st.caption(f"From the command line: `python -m facecore predict PHOTO {runs} --nearest 3`")
    if upload is not None:
        show_photo(upload.getvalue(), upload.name, {short[k]: e["checkpoint"] for k, e in evals.items()})


def show_photo(data: bytes, name: str, checkpoints: dict[str, str]) -> None:
    """Detect and recognise the faces in a photo's bytes with the runs ``checkpoints`` (name: file)."""
    try:
        image = load_rgb(data, name=name)
        predictor = get_predictor(list(checkpoints.values()))
        with st.spinner("Finding and recognising the faces…"):
            faces = predictor.predict(image, nearest=3)
    except ImageError as exc:
        st.error(f"This file cannot be used as a photo. {exc}")
        return
    except FacecoreError as exc:
        st.error(str(exc))
        return
    names = list(checkpoints)
    found = f"{plural(len(faces), 'face')} found by the {predictor.detector.name} detector in {name}"
    numbers = [str(i) for i in range(1, len(faces) + 1)]
    st.image(faces_image(image, [f.box for f in faces], numbers), caption=found)
    if not faces:
        st.info("No face was found in this photo. Try one where the faces are larger or face the camera.")
    for i, face in enumerate(faces, 1):
        with st.container(border=True):
            crop_col, pred_col, near_col = st.columns([1, 3, 4])
            crop = crop_face(image, Detection(face.box, face.score, angle=face.angle), size=160)
            crop_col.image(crop, caption=f"face {i}")
            with pred_col:
                for short, p in zip(names, face.predictions, strict=True):
                    note = (
                        f" (top guess {p.raw_label}, under its threshold {p.threshold:.2f})"
                        if p.unknown and p.raw_label != p.label
                        else ""
                    )
                    st.progress(
                        min(max(p.confidence, 0.0), 1.0),
                        text=f"**{short}**: {p.label}, confidence {p.confidence:.0%}{note}",
                    )
            with near_col:
                for short, near in zip(names, face.nearest or [], strict=False):
                    if near.get("error"):
                        st.caption(f"{short}: closest training images unavailable ({near['error']})")
                        continue
                    images = [im for im in near["images"] if Path(im["file"]).is_file()]
                    where = "enrolled faces" if short.startswith("gallery") else "training images"
                    st.caption(f"{short}: closest {where} (cosine similarity)")
                    if images:
                        st.image(
                            [im["file"] for im in images],
                            width=96,
                            caption=[f"{im['class']} {im['similarity']:.2f}" for im in images],
                        )


# --- the page ----------------------------------------------------------------------------------------------


def main() -> None:
    """The Compare page."""
    st.title("Compare")
    runs = list_runs()
    if not runs:
        st.info(
            "No trained runs yet. Train the three models on a dataset first, on the Train page or from "
            "the command line: `python -m facecore train --dataset NAME --model all`."
        )
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        if list_galleries():
            st.subheader("Try a photo with a gallery")
            photo_section({f"gallery:{g}": {"checkpoint": f"gallery:{g}"} for g in list_galleries()},
                          {f"gallery:{g}": f"gallery:{g}" for g in list_galleries()})
        return
    chosen = choose_runs(runs)
    galleries = choose_galleries(st.session_state.get("compare-dataset") or runs[0]["dataset"])
    if not chosen and not galleries:
        st.info("Choose at least one run or gallery to compare.")
        return
    evals = evaluate(chosen)
    evals |= evaluate_galleries(galleries, st.session_state.get("compare-dataset") or runs[0]["dataset"])
    if not evals:
        return
    short = short_names(evals)
    tabs = st.tabs(TABS, on_change="rerun", key="compare-tab")
    sections = (
        partial(metrics_section, evals, short),
        partial(confusion_section, evals),
        partial(gallery_section, evals, short),
        partial(openset_section, evals),
        partial(photo_section, evals, short),
    )
    for tab, section in zip(tabs, sections, strict=True):
        if tab.open:
            with tab:
                section()


main()
