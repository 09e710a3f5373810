"""Recognizer references parsed once, and the registry through which galleries plug in."""

from __future__ import annotations

from pathlib import Path

import pytest

import facecore.gallery  # noqa: F401  # registers gallery:NAME
from facecore.errors import ConfigError
from facecore.recognize import refs
from facecore.recognize.models import load_recognizer
from facecore.recognize.refs import RecognizerRef, recognizer_kind, register_recognizer_kind


def test_parse_runs_and_galleries() -> None:
    ref = RecognizerRef.parse("gallery:team")
    assert (ref.kind, ref.name, ref.is_gallery, ref.is_run) == ("gallery", "team", True, False)
    assert str(ref) == "gallery:team"
    run = RecognizerRef.parse("lfw-custom_cnn-1")
    assert (run.kind, run.name, run.is_run) == ("run", "lfw-custom_cnn-1", True)
    assert str(run) == "lfw-custom_cnn-1"
    # a Path is always a run, and an unregistered prefix is part of a run's name or path
    assert RecognizerRef.parse(Path("gallery:x")).is_run
    assert RecognizerRef.parse("C:/runs/best.pt") == RecognizerRef("run", "C:/runs/best.pt")
    assert RecognizerRef.parse(ref) is ref


def test_galleries_register_their_loader() -> None:
    kind = recognizer_kind("gallery")
    assert kind.load_path == "facecore.gallery.match:load_gallery_model"
    assert kind.stamp_path == "facecore.gallery.store:gallery_stamp"


def test_a_registered_kind_loads_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refs, "_KINDS", dict(refs._KINDS))
    register_recognizer_kind("echo", load="string:capwords", stamp="builtins:len")
    assert RecognizerRef.parse("echo:abc") == RecognizerRef("echo", "abc")
    assert recognizer_kind("echo").load("abc") == "Abc"
    with pytest.raises(TypeError, match="gave str, not a Recognizer"):
        load_recognizer("echo:abc")
    assert recognizer_kind("echo").stamp("abcd") == 4
    with pytest.raises(ConfigError, match="No recognizer kind 'nope'"):
        recognizer_kind("nope")
    with pytest.raises(ValueError):
        register_recognizer_kind("run", load="builtins:str", stamp="builtins:len")
