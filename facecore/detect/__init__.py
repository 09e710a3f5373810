"""Face detection (Haar cascade, YuNet) behind one interface, and cropping."""

from facecore._lazy import lazy_exports

_EXPORTS = {
    "Detection": ".detection",
    "Detector": ".detection",
    "create_detector": ".detectors",
    "crop_face": ".crop",
    "find_yunet_model": ".yunet",
    "list_detectors": ".detectors",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
