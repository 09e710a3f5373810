"""Galleries: recognise enrolled people by face embeddings, with no training.

* :mod:`~facecore.gallery.embedders`: the embedders (dlib's pretrained ResNet, or a trained run);
* :mod:`~facecore.gallery.store`: galleries on disk (enroll, remove, rename, rebuild; atomic);
* :mod:`~facecore.gallery.enroll`: faces from a dataset, a folder or zip, photos, the webcam;
* :mod:`~facecore.gallery.match`: cosine matching, and a gallery usable wherever a run is;
* :mod:`~facecore.gallery.calibrate`: the threshold at a false-accept target on strangers;
* :mod:`~facecore.gallery.evaluate`: the runs' metrics, for a gallery on a dataset split;
* :mod:`~facecore.cli.gallery`: ``python -m facecore gallery ...``.
"""
