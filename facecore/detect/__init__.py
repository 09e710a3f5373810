"""Face detection (Haar cascade, YuNet) behind one interface, and cropping."""

from facecore._lazy import lazy_exports

_EXPORTS = {
    "Detection": ".detectors",
    "Detector": ".detectors",
    "create_detector": ".detectors",
    "crop_face": ".detectors",
    "find_yunet_model": ".detectors",
    "list_detectors": ".detectors",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
