"""The layer that training, evaluation, galleries and live recognition share (below all four).

* :mod:`~facecore.recognize.refs`: :class:`RecognizerRef` (``RUN`` or ``gallery:NAME`` parsed once)
  and the registry through which galleries plug in their loader;
* :mod:`~facecore.recognize.protocol`: :class:`Recognizer`, what runs, exports and galleries all
  offer (classes, threshold on its :class:`ThresholdScale`, predictions, describe);
* :mod:`~facecore.recognize.models`: :func:`load_run`, :class:`LoadedModel`, :func:`load_recognizer`,
  :func:`model_stamp`, :func:`predict_outputs`;
* :mod:`~facecore.recognize.nearest`: :class:`NearestImages`, the training images closest to a face;
* :mod:`~facecore.recognize.onnx`: exported runs (:class:`OnnxModel`) loaded by ``load_run``;
* :mod:`~facecore.recognize.results`: :class:`ModelPrediction`, :class:`FacePrediction`,
  :func:`make_predictions`;
* :mod:`~facecore.recognize.openset`: the Unknown scores, the threshold sweep and its suggestion;
* :mod:`~facecore.recognize.runs` (and :mod:`~facecore.recognize.jobs`): trained runs and the
  job records that say which are training, read;
* :mod:`~facecore.recognize.result` and :mod:`~facecore.recognize.prediction_rows`: an evaluation's
  ``metrics.json`` and ``predictions.csv``, written by runs and galleries alike;
* the constants (``UNKNOWN``, ``CROP_SIZE``, ``CROP_MARGIN``, ``SPLITS``, ``GALLERY_PREFIX``) live in
  :mod:`facecore.constants` (below data, which uses them too) and are exported here.
"""

from facecore._lazy import lazy_exports

_EXPORTS = {
    "CROP_MARGIN": "facecore.constants",
    "CROP_SIZE": "facecore.constants",
    "GALLERY_PREFIX": "facecore.constants",
    "SPLITS": "facecore.constants",
    "UNKNOWN": "facecore.constants",
    "LoadedModel": ".models",
    "NearestImages": ".nearest",
    "clear_cache": ".models",
    "images_on_disk": ".nearest",
    "load_recognizer": ".models",
    "load_run": ".models",
    "model_stamp": ".models",
    "predict_outputs": ".models",
    "resolve_checkpoint": ".models",
    "OnnxModel": ".onnx",
    "export_threshold": ".onnx",
    "exported_models": ".onnx",
    "is_export": ".onnx",
    "load_onnx": ".onnx",
    "DEFAULT_THRESHOLD": ".openset",
    "suggest_threshold": ".openset",
    "sweep": ".openset",
    "sweep_scores": ".openset",
    "Recognizer": ".protocol",
    "ThresholdScale": ".protocol",
    "GALLERY": ".refs",
    "RecognizerRef": ".refs",
    "register_recognizer_kind": ".refs",
    "FacePrediction": ".results",
    "ModelPrediction": ".results",
    "make_predictions": ".results",
    "Run": ".runs",
    "list_runs": ".runs",
    "read_run": ".runs",
    "run_metrics": ".runs",
    "run_path": ".runs",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
