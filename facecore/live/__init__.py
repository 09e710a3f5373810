"""Recognition in photos and video: the predictor, the live recognizer (its settings, figures,
drawing, "Add me"), WebRTC's ICE servers, video files and cameras, and exported runs.

Loading runs and galleries for inference sits below, in :mod:`facecore.recognize`.
"""

from facecore._lazy import lazy_exports

_EXPORTS = {
    "Predictor": ".inference",
    "AddMe": ".addme",
    "AddMeProgress": ".addme",
    "export_run": ".export",
    "ICE_ENV": ".ice",
    "rtc_configuration": ".ice",
    "DEFAULT_WORKERS": ".config",
    "LiveConfig": ".config",
    "setting": ".config",
    "LiveRecognizer": ".recognizer",
    "LiveResult": ".result",
    "LiveStats": ".stats",
    "default_runs": ".runs",
    "run_video": ".video_loop",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
