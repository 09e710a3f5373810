"""Face data: decoding images, import sources, the dataset store, edits, webcam enrollment,
samples, splits, transforms, offline augmentation and training loaders.
"""

from facecore._lazy import lazy_exports

_EXPORTS = {
    "FaceDataset": ".dataset",
    "UNKNOWN": ".dataset",
    "count_splits": ".manifest",
    "delete_dataset": ".dataset",
    "import_dataset": ".dataset",
    "import_zip_bytes": ".dataset",
    "list_datasets": ".dataset",
    "load_dataset": ".dataset",
    "EditResult": ".staged_edit",
    "add_crops": ".edit",
    "check_class_name": ".edit",
    "delete_class": ".edit",
    "delete_image": ".edit",
    "person_listing": ".edit",
    "rename_class": ".edit",
    "resolve_noface": ".edit",
    "EnrollSession": ".enroll",
    "augment_preview": ".augment",
    "IMAGE_EXTENSIONS": ".images",
    "MAX_FILE_BYTES": ".images",
    "load_rgb": ".images",
    "encode_jpeg": ".images",
    "build_sample": ".sample",
    "SPLITS": ".splits",
    "AUGMENT_SWITCHES": ".transforms",
    "AugmentConfig": ".transforms",
    "augment_from_switches": ".transforms",
    "augment_switches_of": ".transforms",
    "is_deterministic": ".transforms",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
