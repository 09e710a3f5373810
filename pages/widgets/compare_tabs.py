"""The Compare page's tabs: metrics, confusion matrices, every test image, open set, a photo.

Each function draws one tab from the runs' and galleries' :class:`~facecore.recognize.result.Evaluation`;
the figures and tables come from :mod:`facecore.evaluate`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from facecore.data import IMAGE_EXTENSIONS, MAX_FILE_BYTES, UNKNOWN, load_rgb
from facecore.detect import Detection, crop_face
from facecore.errors import FacecoreError, ImageError
from facecore.evaluate import (
    Evaluation,
    bars_figure,
    cell_rows,
    cli_names,
    confusion_select_figure,
    cost_figure,
    faces_image,
    merged_predictions,
    metrics_table,
    openset_threshold_figure,
    operating_points,
    prediction_filters,
    summary_row,
)
from facecore.recognize import images_on_disk
from pages.common import get_predictor

PAGE_SIZE = 12
GALLERY_COLUMNS = 3
CELL_KEY = "compare-cell"
FILTERS = ("All", "Any model wrong", "Models disagree")
BEST_CSS = "font-weight: 700; background-color: rgba(33, 195, 84, 0.15)"


# --- metrics ---------------------------------------------------------------------------------------


def metrics_section(evals: dict[str, Evaluation], short: dict[str, str]) -> None:
    """The metrics table (best value of each row highlighted) and bar charts of quality, size and speed."""
    text, best = metrics_table(evals, short)
    st.table(text.style.apply(lambda _: best.replace({True: BEST_CSS, False: ""}), axis=None))
    first = next(iter(evals.values()))
    st.caption(
        f"{first.n_images} test images of `{first.dataset}`. False accepts: Unknown test faces named "
        f"as someone at the model's threshold. Latency on {first.device}. From the command "
        f"line: `python -m facecore compare {cli_names(list(evals))} --out reports/{first.dataset}`"
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


def confusion_section(evals: dict[str, Evaluation]) -> None:
    """One clickable confusion matrix per run, and the images of the chosen cell."""
    cols = st.columns(min(len(evals), 3))
    for i, (label, e) in enumerate(evals.items()):
        key = f"compare-cm-{label}"
        cols[i % len(cols)].plotly_chart(
            confusion_select_figure(e.confusion_matrix, e.classes, f"{label} ({e.model})"),
            key=key,
            on_select=partial(_cell_clicked, key, label),
            selection_mode="points",
        )
    cells = [
        (label, t, p, e.confusion_matrix[i][j])
        for label, e in evals.items()
        for i, t in enumerate(e.classes)
        for j, p in enumerate(e.classes)
        if e.confusion_matrix[i][j] > 0
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


def show_cell(e: Evaluation, true: str, pred: str) -> None:
    """The test images of one confusion-matrix cell, least confident first."""
    rows = cell_rows(e.predictions_csv, true, pred)
    verdict = "correct" if true == pred else "mistaken"
    st.markdown(
        f"**{e.run}**: {plural(len(rows), verdict + ' image')} of **{true}** predicted as "
        f"**{pred}**, least confident first (confidence under each)"
    )
    cols = st.columns(8)
    for i, r in enumerate(rows.head(48).itertuples()):
        with cols[i % 8]:
            show_image(Path(e.dataset_path) / r.file)
            st.caption(f"{r.confidence:.2f}")


def plural(n: int, noun: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def show_image(path: Path, width: int | str = "stretch") -> None:
    """A dataset image, or a note when the file has gone."""
    try:
        st.image(str(path), width=width)
    except Exception:  # noqa: BLE001 - Streamlit raises its own kinds for a missing file
        st.caption(f"(missing: {path.name})")


# --- gallery --------------------------------------------------------------------------------------------


def gallery_section(evals: dict[str, Evaluation], short: dict[str, str]) -> None:
    """The test images with every model's label and confidence, filtered and paged."""
    df = merged_predictions({label: e.predictions_csv for label, e in evals.items()})
    masks = prediction_filters(df, list(evals))
    wrong, disagree = masks["wrong"], masks["disagree"]
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
    dataset = Path(next(iter(evals.values())).dataset_path)
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


def openset_section(evals: dict[str, Evaluation]) -> None:
    """A threshold slider, the open-set curves and each model's operating point at the slider."""
    own = {label: float(e.open_set.threshold_in_model) for label, e in evals.items()}
    sweeps = {label: e.open_set.sweep for label, e in evals.items()}
    if next(iter(evals.values())).unknown_class is None:
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
    rows = operating_points(evals, threshold)
    number = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=dict.fromkeys(list(rows[0])[1:], number))
    st.caption(
        "Known accuracy: known people's test faces accepted and named correctly. False accepts: "
        "Unknown test faces named as someone. Each model's own threshold (diamond) was chosen in "
        "training, on the validation faces."
    )


# --- a photo ---------------------------------------------------------------------------------------------


def photo_section(checkpoints: dict[str, str], labels: list[str]) -> None:
    """Upload a photo; every face is detected and recognised by every chosen run and gallery
    (``checkpoints``: short name -> checkpoint file or ``gallery:NAME``; ``labels``: their names)."""
    upload = st.file_uploader(
        "A photo with faces (kept in memory only, never saved)",
        type=sorted(ext.lstrip(".") for ext in IMAGE_EXTENSIONS),
        max_upload_size=MAX_FILE_BYTES // 2**20,
        key="compare-photo",
    )
    runs = cli_names(labels, run_flag="--model ")
    st.caption(f"From the command line: `python -m facecore predict PHOTO {runs} --nearest 3`")
    if upload is not None:
        show_photo(upload.getvalue(), upload.name, checkpoints)


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
                    images = images_on_disk(near["images"])
                    where = "enrolled faces" if short.startswith("gallery") else "training images"
                    st.caption(f"{short}: closest {where} (cosine similarity)")
                    if images:
                        st.image(
                            [im["file"] for im in images],
                            width=96,
                            caption=[f"{im['class']} {im['similarity']:.2f}" for im in images],
                        )
