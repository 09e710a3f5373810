"""The public API: what ``import facecore`` gives a Python user.

Five names cover the common uses, in the manner of face_recognition's three lines and timm's
``create_model``::

    import facecore

    facecore.list_models()                       # the registered architectures
    net = facecore.create_model("custom_cnn", num_classes=8)
    faces = facecore.detect_faces("group.jpg")   # [Detection(box, score, landmarks, angle)]

    gallery = facecore.Gallery.create("team")    # or Gallery.open("team")
    gallery.enroll("Ada", ["ada1.jpg", "ada2.jpg"])
    gallery.identify("photo.jpg")                # [Identity(box, name or "Unknown", score)]

    run = facecore.load_run("models/my-run")     # a trained run (or its exported .onnx)
    run.predict("photo.jpg")                     # [Identity(box, name or "Unknown", score)]

Images may be a path, the file's bytes, a PIL image or a ``numpy`` array, which is read as **RGB**
(``H x W x 3`` ``uint8``; ``H x W`` grayscale and ``H x W x 4`` RGBA are converted). OpenCV's
``cv2.imread`` gives BGR: convert it with ``cv2.cvtColor(img, cv2.COLOR_BGR2RGB)`` first.
Galleries and runs live in the workspace, ``$FACECORE_HOME`` (default: the current folder).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np
from PIL import Image

from facecore.constants import UNKNOWN
from facecore.data.images import load_rgb, to_rgb_array
from facecore.detect.detection import Detection, Detector
from facecore.detect.detectors import create_detector
from facecore.errors import EnrollmentError, GalleryExistsError, ImageError
from facecore.gallery import store
from facecore.gallery.calibrate import DEFAULT_TARGET_FAR, calibrate_gallery
from facecore.gallery.edit import create_gallery
from facecore.gallery.embedders import DEFAULT_EMBEDDER
from facecore.gallery.enroll import enroll_photos
from facecore.gallery.match import load_gallery_model
from facecore.live.inference import Predictor
from facecore.recognize.models import LoadedModel
from facecore.recognize.models import load_run as _load_model
from facecore.recognize.results import ModelPrediction

#: what the API takes as an image (a numpy array is RGB)
ImageLike = Union[str, Path, bytes, np.ndarray, Image.Image]  # noqa: UP007 (a runtime alias)


class Identity(NamedTuple):
    """One face found in an image: ``(box, name, score)``.

    ``box`` is ``(x, y, width, height)`` in the image's pixels; ``name`` is a person (a class of
    the run, a person of the gallery) or ``"Unknown"`` when the score is below the threshold;
    ``score`` is what the threshold applies to (a run's probability or cosine, a gallery's
    cosine similarity).
    """

    box: tuple[int, int, int, int]
    name: str
    score: float


# --------------------------------------------------------------------------------------------
# Images and detection


def as_rgb(image: ImageLike) -> np.ndarray:
    """``image`` as an RGB ``uint8`` array (see the module docstring for what is accepted)."""
    if isinstance(image, (str, Path, bytes)):
        return load_rgb(image)
    if isinstance(image, Image.Image):
        return to_rgb_array(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageError(f"A numpy image must be uint8 (0-255), got {image.dtype}.")
        if image.ndim == 2:
            return np.ascontiguousarray(np.stack([image] * 3, axis=-1))
        if image.ndim == 3 and image.shape[2] in (3, 4) and min(image.shape[:2]) > 0:
            return np.ascontiguousarray(image[..., :3])
        raise ImageError(f"A numpy image must be H x W x 3 (RGB), got shape {image.shape}.")
    raise ImageError(
        f"Cannot read an image from a {type(image).__name__}; give a path, bytes, a PIL image "
        "or an RGB numpy array."
    )


_DETECTORS: dict[str, Detector] = {}
_DETECTORS_LOCK = threading.Lock()


def _detector(detector: str | Detector) -> Detector:
    """A detector by name, built once per process (YuNet loads its model file once)."""
    if not isinstance(detector, str):
        return detector
    key = detector.strip().lower()
    with _DETECTORS_LOCK:
        if key not in _DETECTORS:
            _DETECTORS[key] = create_detector(key)
        return _DETECTORS[key]


def detect_faces(image: ImageLike, *, detector: str | Detector = "auto") -> list[Detection]:
    """The faces in ``image``, best first: :class:`~facecore.detect.detection.Detection` objects
    (``box`` as ``(x, y, w, h)``, ``score``, five ``landmarks`` with YuNet, ``angle``).

    ``detector``: ``auto`` (YuNet, shipped with facecore), ``yunet``, ``haar`` or ``none``.
    """
    return _detector(detector).detect(as_rgb(image))


# --------------------------------------------------------------------------------------------
# Runs


def _identities(faces: Sequence[Any], threshold: float | None) -> list[Identity]:
    out = []
    for face in faces:
        pred: ModelPrediction = face.predictions[0]
        if threshold is None:
            name = pred.label
        else:
            name = UNKNOWN if pred.raw_label == UNKNOWN or pred.confidence < threshold else pred.raw_label
        out.append(Identity(tuple(int(v) for v in face.box), name, float(pred.confidence)))  # type: ignore[arg-type]
    return out


@dataclass
class LoadedRun:
    """A trained run loaded for inference (from :func:`load_run`).

    ``model`` is the loaded model (:class:`~facecore.recognize.models.LoadedModel`, or the ONNX
    runtime's equivalent for an exported file): its ``classes``, ``threshold`` and
    ``score_kind`` are here too.
    """

    model: LoadedModel
    detector: str | Detector = "auto"

    @property
    def name(self) -> str:
        return str(self.model.run)

    @property
    def classes(self) -> list[str]:
        return list(self.model.classes)

    @property
    def threshold(self) -> float:
        return float(self.model.threshold)

    @property
    def score_kind(self) -> str:
        return str(self.model.score_kind)

    def __repr__(self) -> str:
        return f"LoadedRun({self.name!r}, {len(self.classes)} classes, threshold {self.threshold:.3f})"

    def predict(
        self, image: ImageLike, *, threshold: float | None = None, detect: bool = True
    ) -> list[Identity]:
        """One :class:`Identity` per face in ``image``, best detection first.

        ``detect=False`` takes the whole image as one face crop (cropped as the run's dataset
        was, with its margin). ``threshold`` overrides the run's own.
        """
        predictor = Predictor([self.model], detector=_detector(self.detector))
        rgb = as_rgb(image)
        faces = predictor.predict(rgb) if detect else predictor.predict_crops([rgb])
        return _identities(faces, threshold)


def load_run(run: str | Path, *, device: str = "auto", detector: str | Detector = "auto") -> LoadedRun:
    """Load a trained run for inference: a run name (in ``$FACECORE_HOME/models``), a run folder,
    a checkpoint file, or an exported ``.onnx``. A wrong file is a
    :class:`~facecore.errors.FacecoreError` naming the problem."""
    return LoadedRun(_load_model(run, device=device), detector=detector)


# --------------------------------------------------------------------------------------------
# Galleries


def _photo_source(i: int, photo: ImageLike) -> tuple[str, bytes | str | Path]:
    """``(label, bytes or path)`` for the enrollment code; arrays and PIL images as PNG bytes."""
    if isinstance(photo, (str, Path)):
        return str(photo), photo
    if isinstance(photo, bytes):
        return f"photo {i + 1}", photo
    rgb = as_rgb(photo)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return f"photo {i + 1}", buf.getvalue()


class Gallery:
    """People enrolled from a few photos each, recognised by a pretrained face embedder (no
    training). Saved in ``$FACECORE_HOME/galleries/NAME``; build one with :meth:`create` or
    :meth:`open`. Every change is written atomically and kept between processes."""

    def __init__(self, name: str) -> None:
        self.name = store.load_gallery(name).name

    @classmethod
    def open(cls, name: str) -> Gallery:
        """An existing gallery (:class:`~facecore.errors.GalleryError` when there is none)."""
        return cls(name)

    @classmethod
    def create(cls, name: str, *, embedder: str = DEFAULT_EMBEDDER, exist_ok: bool = False) -> Gallery:
        """A new, empty gallery for ``embedder`` (``sface`` or ``dlib_resnet``). With ``exist_ok``
        an existing gallery of that name is opened instead (with the same embedder, or refused)."""
        try:
            return cls(create_gallery(name, embedder=embedder).name)
        except GalleryExistsError:
            if not exist_ok:
                raise
        gallery = cls(name)
        if gallery.record.embedder_name != embedder:
            raise GalleryExistsError(
                f"Gallery {name!r} exists with embedder {gallery.record.embedder_name!r}, not {embedder!r}."
            )
        return gallery

    @property
    def record(self) -> store.Gallery:
        """What is saved now (people, embeddings, threshold), read afresh."""
        return store.load_gallery(self.name)

    @property
    def people(self) -> list[str]:
        return self.record.people

    @property
    def threshold(self) -> float:
        """The cosine similarity a face must reach to be named (calibrated or the default)."""
        return float(self.record.threshold)

    @property
    def calibrated(self) -> bool:
        return bool(self.record.calibrated)

    def __repr__(self) -> str:
        rec = self.record
        state = "calibrated" if rec.calibrated else "not calibrated"
        return f"Gallery({self.name!r}, {len(rec.people)} people, {rec.embedder_name}, {state})"

    def enroll(
        self,
        person: str,
        photos: ImageLike | Sequence[ImageLike],
        *,
        largest: bool = False,
        detector: str | Detector = "auto",
    ) -> store.EnrollReport:
        """Add ``person`` from photos each showing their face (one face, or one clearly the
        largest; ``largest=True`` takes the largest anyway). Returns what was added and any photo
        refused, with the reason; no usable face at all raises
        :class:`~facecore.errors.EnrollmentError`."""
        if isinstance(photos, (str, Path, bytes, np.ndarray, Image.Image)):
            photos = [photos]
        sources = [_photo_source(i, p) for i, p in enumerate(photos)]
        if not sources:
            raise EnrollmentError(f"Give at least one photo of {person!r} to enroll.")
        return enroll_photos(self.name, person, sources, detector=_detector(detector), largest=largest)

    def identify(
        self, image: ImageLike, *, threshold: float | None = None, detector: str | Detector = "auto"
    ) -> list[Identity]:
        """One :class:`Identity` per face in ``image`` (best detection first): the most similar
        enrolled person, or ``"Unknown"`` below the gallery's threshold (or ``threshold``)."""
        model = load_gallery_model(self.name)
        faces = Predictor([model], detector=_detector(detector)).predict(as_rgb(image))
        return _identities(faces, threshold)

    def calibrate(
        self,
        strangers: str | Path | bytes,
        *,
        target_far: float = DEFAULT_TARGET_FAR,
        allow_few: bool = False,
    ) -> dict[str, Any]:
        """Set the threshold so that at most ``target_far`` of strangers' faces are taken for an
        enrolled person. ``strangers``: a folder or zip (or its bytes) of photos of people not
        in the gallery, flat or one folder per person; at least ``1 / target_far`` of them
        (100 at 1%) unless ``allow_few``. Returns what was stored."""
        return calibrate_gallery(self.name, strangers=strangers, target_far=target_far, allow_few=allow_few)


__all__ = [
    "Gallery",
    "Identity",
    "ImageLike",
    "LoadedRun",
    "as_rgb",
    "detect_faces",
    "load_run",
]
