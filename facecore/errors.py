"""Every exception facecore raises on purpose, in one module.

Each carries a message meant for the person at the keyboard: it names the file or
setting at fault and, where there is one, the fix.
"""

from __future__ import annotations


class FacecoreError(Exception):
    """Base class: a problem facecore understood and can explain."""


class ImageError(FacecoreError):
    """An input file is not an image facecore can use (corrupt, truncated, empty, wrong type)."""


class ImageTooLargeError(ImageError):
    """An image or file passes a size limit (pixels or bytes)."""


class UnsafeArchiveError(FacecoreError):
    """A zip archive is refused as a whole (too many entries, too large, not a zip)."""


class ArchiveEntryError(FacecoreError):
    """One entry of an archive is refused (escapes its folder, symlink, nested zip, duplicate)."""


class DatasetError(FacecoreError):
    """A dataset is missing, malformed, or an import cannot produce a usable dataset."""


class DatasetExistsError(DatasetError):
    """A dataset of that name exists and the caller asked neither to append nor to replace."""


class SplitError(DatasetError):
    """The images cannot be split into train/val/test as asked (e.g. a class is too small)."""


class DetectorError(FacecoreError):
    """A face detector cannot be built (unknown name, missing model file, broken OpenCV)."""


class ModelFileError(FacecoreError):
    """A model file that ships with facecore is missing, truncated or altered (size or sha256)."""


class WeightsUnavailableError(FacecoreError):
    """Pretrained weights are not on this machine and cannot be downloaded."""


class CheckpointError(FacecoreError):
    """A checkpoint is missing, corrupt, foreign, or does not fit the model asked for."""


class DownloadError(FacecoreError):
    """A file could not be downloaded (offline, refused, or failed its checksum)."""


class ReadOnlyModeError(FacecoreError):
    """The action is refused because facecore runs in presentation (read-only) mode."""


class JobError(FacecoreError):
    """A background job cannot be started, found or stopped."""


class RunError(FacecoreError):
    """A run cannot be found, added or deleted."""


class EmbedderError(FacecoreError):
    """A face embedder cannot be built (unknown name, missing model files, unusable run)."""


class GalleryError(FacecoreError):
    """A gallery is missing, damaged, edited by hand, or cannot do what was asked."""


class CalibrationError(GalleryError):
    """Too few stranger faces to calibrate a gallery's threshold at the false-accept target;
    ``found`` is how many there were."""

    def __init__(self, message: str, *, found: int = 0) -> None:
        super().__init__(message)
        self.found = found


class GalleryExistsError(GalleryError):
    """A gallery of that name exists already."""


class GalleryMismatchError(GalleryError):
    """A gallery built with one embedder is used with another (embeddings are not comparable)."""


class EnrollmentError(GalleryError):
    """A photo cannot be enrolled: no face, more than one face, or not an image."""


class ConfigError(FacecoreError):
    """A setting out of range, unknown or missing (training, augmentation, prediction and capture
    options, command-line arguments)."""


class ModelError(FacecoreError):
    """An unknown model name, or arguments a model cannot be built with."""


class QuantizationError(FacecoreError):
    """A run cannot be converted to int8 (callers fall back to float32)."""


class CompareError(FacecoreError):
    """Runs that cannot be compared together (different data, duplicates, too many)."""


class TrainingStopped(FacecoreError):
    """Raised inside the training loop when a stop was asked for; the last finished epoch is kept."""


class TrainingFailed(FacecoreError):
    """A rank of a distributed training run failed; the message names the rank and its error."""


class VideoError(FacecoreError):
    """A video file or camera cannot be read or written."""


class ExportError(FacecoreError):
    """A run or gallery cannot be exported (nothing to check it on, an exporter failure, a bad target)."""


class ExportMismatchError(ExportError):
    """An exported model does not give the answers of the PyTorch model it came from; nothing is kept."""


class ExportedModelError(CheckpointError):
    """An exported ONNX model (or the JSON beside it) is missing, corrupt, altered or not facecore's."""


class BundleError(FacecoreError):
    """A demo bundle cannot be made or unpacked (nothing chosen, damaged, a checksum that does not
    match, or data in the workspace it would overwrite)."""
