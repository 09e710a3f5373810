"""Recognition: loading runs for inference, the live recognizer, drawing, WebRTC glue, video."""

from facecore._lazy import lazy_exports

_EXPORTS = {
    "LoadedModel": ".inference",
    "Predictor": ".inference",
    "images_on_disk": ".inference",
    "load_run": ".inference",
    "load_recognizer": ".inference",
    "model_stamp": ".inference",
    "AddMe": ".addme",
    "AddMeProgress": ".addme",
    "export_run": ".export",
    "ICE_ENV": ".recognizer",
    "LiveConfig": ".recognizer",
    "LiveRecognizer": ".recognizer",
    "LiveResult": ".recognizer",
    "default_runs": ".recognizer",
    "rtc_configuration": ".recognizer",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
