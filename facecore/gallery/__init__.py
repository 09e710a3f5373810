"""Galleries: recognise enrolled people by face embeddings, with no training.

* :mod:`~facecore.gallery.embedders`: the embedders' interface (dlib's pretrained ResNet, SFace, or a
  trained run: ``dlib_embedder``, ``sface_embedder``, ``run_embedder``), built by name by
  :mod:`~facecore.gallery.embedder_registry`;
* :mod:`~facecore.gallery.store`: galleries on disk, read and checked;
* :mod:`~facecore.gallery.edit`: changing them (create, enroll, remove, rename, rebuild; atomic);
* :mod:`~facecore.gallery.enroll`: faces from a dataset, a folder or zip, photos, the webcam;
* :mod:`~facecore.gallery.match`: cosine matching, and a gallery usable wherever a run is;
* :mod:`~facecore.gallery.calibrate`: the threshold at a false-accept target on strangers;
* :mod:`~facecore.gallery.evaluate`: the runs' metrics, for a gallery on a dataset split;
* :mod:`~facecore.gallery.export`: a gallery as a portable ``.npz`` + JSON;
* :mod:`~facecore.cli.gallery`: ``python -m facecore gallery ...``.

Importing this package registers ``gallery:NAME`` references with the recognize layer
(:func:`facecore.recognize.refs.register_recognizer_kind`), which never imports galleries itself.
"""

from facecore._lazy import lazy_exports
from facecore.recognize.refs import GALLERY, register_recognizer_kind

register_recognizer_kind(
    GALLERY, load="facecore.gallery.match:load_gallery_model", stamp="facecore.gallery.store:gallery_stamp"
)

_EXPORTS = {
    "calibrate_gallery": ".calibrate",
    "min_strangers": ".calibrate",
    "DEFAULT_EMBEDDER": ".embedders",
    "list_embedders": ".embedder_registry",
    "enroll_dataset": ".enroll",
    "enroll_photos": ".enroll",
    "enroll_source": ".enroll",
    "enroll_webcam_crops": ".enroll",
    "cached_gallery_evaluation": ".evaluate",
    "evaluate_gallery": ".evaluate",
    "export_gallery": ".export",
    "GalleryModel": ".match",
    "load_gallery_model": ".match",
    "create_gallery": ".edit",
    "delete_gallery": ".edit",
    "list_galleries": ".store",
    "load_gallery": ".store",
    "remove_person": ".edit",
    "rename_person": ".edit",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
