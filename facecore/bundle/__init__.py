"""Demo bundles: a workspace's datasets (test faces), runs and galleries in one zip, and back.

``make_bundle(OUT.zip)`` packs what a hosted demo shows: of each dataset its ``dataset.json``
and the rows and face crops of its **test** split (``manifest.csv`` keeps only those rows, with
each ``source`` cut to its file name, so no path of the presenter's machine is published); of each
finished run ``best.pt`` and the files evaluate, compare and the pages read (config, metrics,
summary, evaluations), not ``last.pt`` (optimizer state) nor the nearest-image cache; each
gallery whole (it checks its own faces). ``facecore-bundle.json`` at the top of the zip lists
every file with its size, sha256 and modification time, with the facecore version and the date.

``unpack_bundle(BUNDLE.zip)`` checks the zip like an upload (entries escaping their folder,
links, sizes, the bytes actually read), extracts into a staging folder inside the workspace,
verifies every sha256, and only then moves each dataset, run and gallery into place. A folder that
already holds the same files is left alone (its evaluations and caches, remade where they are
used, are not compared); one holding other data is refused unless ``force``.
File times are restored, so saved evaluations stay valid (they are compared with the
checkpoint's and the manifest's times).

``FACECORE_BUNDLE=path.zip`` (:func:`ensure_env_bundle`, called where the CLI and the app start)
unpacks a bundle once into ``FACECORE_HOME``; a process that finds the same bundle unpacked
already does nothing and says so. With ``FACECORE_BUNDLE`` set and ``FACECORE_MODE`` unset, the
workspace is read-only (presentation mode, :mod:`facecore.mode`).

Modules: :mod:`~facecore.bundle.format` (names, limits, the report), :mod:`~facecore.bundle.pack`
(:func:`make_bundle`), :mod:`~facecore.bundle.unpack` (:func:`unpack_bundle`,
:func:`ensure_env_bundle`).
"""

from facecore._lazy import lazy_exports

_EXPORTS = {
    "BUNDLE_ENV": "facecore.mode",
    "BundleReport": ".format",
    "make_bundle": ".pack",
    "ensure_env_bundle": ".unpack",
    "unpack_bundle": ".unpack",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
