"""Benchmark galleries: which match rule names people better, and what embedding and matching cost.

    python benchmarks/gallery.py --home WORKSPACE --dataset lfw7 [--dataset lfw28 ...]

For each dataset (in ``--home``): its training faces (the Unknown class left out) are embedded
with dlib's descriptor as a gallery would hold them; its validation and test faces are embedded
too. For each match rule (``max``: a person's best face; ``top3``: the mean of their 3 best) it
prints, on the test split, the rank-1 accuracy on enrolled people's faces, the AUROC of enrolled
people's faces against strangers' (the Unknown class), and, at the threshold calibrated on the
validation split for a 1% false-accept rate, the test FAR and the share of enrolled faces named.
Then the milliseconds to embed one face (facecore's PyTorch port of dlib's network against dlib's
own), and to match one face against galleries of 1,000 and 10,000 faces (random unit vectors: the
cost does not depend on the values).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def embed_split(ds, split: str, embedder) -> tuple[np.ndarray, list[str]]:
    from facecore.data.loaders import decode_crops
    from facecore.gallery.enroll import recrop

    items = ds.items(split)
    margin = float(ds.meta.get("margin", 0.25))
    crops = [recrop(c, margin, embedder.margin) for c in decode_crops([p for p, _ in items])]
    return embedder.embed(crops), [ds.classes[i] for _, i in items]


def rule_figures(rule: str, gallery, tr_people, val, test) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    from facecore.gallery.match import Matcher
    from facecore.recognize.openset import suggest_threshold, sweep_scores

    m = Matcher(gallery, tr_people, match=rule)
    index = {p: i for i, p in enumerate(m.people)}

    def scored(emb, labels):
        s = m.scores(emb)
        y = np.array([index.get(label, len(m.people)) for label in labels])
        return s.max(1), s.argmax(1), y

    conf, pred, y = scored(*val)
    t = suggest_threshold(sweep_scores(conf, pred, y, len(m.people), steps=1001), 0.01)["threshold"]
    conf, pred, y = scored(*test)
    known = y < len(m.people)
    accepted = conf >= t
    return {
        "rank1": float((pred[known] == y[known]).mean()),
        "auroc": float(roc_auc_score(known, conf)) if known.any() and not known.all() else float("nan"),
        "threshold": float(t),
        "far": float(accepted[~known].mean()) if (~known).any() else float("nan"),
        "known_named": float((accepted[known] & (pred[known] == y[known])).mean()),
        "strangers": int((~known).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--dataset", action="append", required=True)
    args = parser.parse_args(argv)
    os.environ["FACECORE_HOME"] = str(args.home.resolve())
    from facecore.data.dataset import UNKNOWN, load_dataset
    from facecore.gallery.embedder_registry import create_embedder
    from facecore.gallery.match import Matcher

    embedder = create_embedder("dlib_resnet")
    print(
        "| dataset | rule | rank-1 (known, test) | AUROC known vs strangers | threshold (val, FAR 1%) "
        "| test FAR | known named | strangers (test) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.dataset:
        ds = load_dataset(name)
        emb, people = embed_split(ds, "train", embedder)
        keep = [i for i, p in enumerate(people) if p != UNKNOWN]
        gallery, tr_people = emb[keep], [people[i] for i in keep]
        val, test = embed_split(ds, "val", embedder), embed_split(ds, "test", embedder)
        for rule in ("max", "top3"):
            f = rule_figures(rule, gallery, tr_people, val, test)
            print(
                f"| {name} | {rule} | {f['rank1']:.3f} | {f['auroc']:.4f} | {f['threshold']:.3f} | "
                f"{f['far']:.3f} | {f['known_named']:.3f} | {f['strangers']} |"
            )
    import dlib
    import torch

    from facecore.gallery.dlib_embedder import DLIB_DESCRIPTOR_FILE

    crops = [np.full((256, 256, 3), 128, np.uint8)]
    chips = embedder.chips(crops)
    dlib_net = dlib.face_recognition_model_v1(str(embedder.folder / DLIB_DESCRIPTOR_FILE))
    print()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for label, run in (
            ("PyTorch port", lambda: embedder.embed(crops)),
            ("dlib's own", lambda: dlib_net.compute_face_descriptor(chips)),
        ):
            run()
            t0 = time.perf_counter()
            for _ in range(10):
                run()
            ms = (time.perf_counter() - t0) * 100
            print(f"embedding one face, {label} ({threads} torch thread(s)): {ms:.1f} ms")
    rng = np.random.default_rng(0)
    for n in (1_000, 10_000):
        g = rng.normal(size=(n, 128)).astype(np.float32)
        people = [f"p{i % (n // 5)}" for i in range(n)]
        for rule in ("max", "top3"):
            m = Matcher(g, people, match=rule)
            q = rng.normal(size=(1, 128)).astype(np.float32)
            m.scores(q)
            t0 = time.perf_counter()
            for _ in range(50):
                m.scores(q)
            ms = (time.perf_counter() - t0) * 1000 / 50
            print(f"matching one face against {n:,} faces ({n // 5:,} people), {rule}: {ms:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
