"""Pretrained ImageNet weights: where they live, whether they are here, and how to get them.

Weights go through torchvision's own loader (``Weights.get_state_dict``, i.e. torch.hub), so the
file lives where every torchvision user expects it: ``$TORCH_HOME/hub/checkpoints/<name>``
(``TORCH_HOME`` defaults to ``~/.cache/torch``). A machine without internet can be given the file
by copying it there. Downloads are bounded in time so an offline machine fails fast with a
:class:`~facecore.errors.WeightsUnavailableError` that says what to fetch and where to put it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.hub
from torchvision.models._api import WeightsEnum

from facecore.errors import ModelError, WeightsUnavailableError
from facecore.mode import require_writable
from facecore.models.registry import get_model_spec, list_models

#: Seconds allowed to resolve the download host (a DNS lookup ignores socket timeouts).
DNS_TIMEOUT_S = 5.0
#: Seconds any single connect or read of the download may stall before it is abandoned.
SOCKET_TIMEOUT_S = 30.0

DOWNLOAD_COMMAND = "python -m facecore weights download"


def _weights(name: str) -> WeightsEnum:
    weights = get_model_spec(name).weights
    if weights is None:
        raise ModelError(
            f"Model {name!r} has no pretrained weights to fetch; models with pretrained weights: "
            f"{', '.join(sorted(list_models(pretrained=True)))}."
        )
    return weights


def weights_url(name: str = "resnet50_pretrained") -> str:
    """The URL torchvision downloads the weights of model ``name`` from."""
    return _weights(name).url


def weights_file(name: str = "resnet50_pretrained") -> Path:
    """Where torch.hub keeps the weights of ``name``: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    url = weights_url(name)
    file_name = os.path.basename(urllib.parse.urlparse(url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def weights_status(name: str = "resnet50_pretrained") -> dict[str, Any]:
    """``{"name", "available", "path", "url", "size"}``; ``size`` in bytes, None when missing.

    ``available`` only says the file is present; :func:`load_pretrained_state_dict` tells
    whether it is readable.
    """
    path = weights_file(name)
    exists = path.is_file()
    return {
        "name": name,
        "available": exists,
        "path": str(path),
        "url": weights_url(name),
        "size": path.stat().st_size if exists else None,
    }


def _unavailable_message(name: str, reason: str) -> str:
    path = weights_file(name)
    others = ", ".join(list_models(pretrained=False))
    return (
        f"The pretrained ImageNet weights for {name} are not on this machine and could not be "
        f"downloaded ({reason}).\n"
        f"  File needed: {path.name}\n"
        f"  Expected at: {path}  ($TORCH_HOME/hub/checkpoints/{path.name})\n"
        f"  Download from: {weights_url(name)}\n"
        f"Fix: run `{DOWNLOAD_COMMAND}` ahead of time on a machine with internet, or fetch the "
        f"URL above elsewhere and copy the file to the path above.\n"
        f"Models that need no pretrained weights: {others}."
    )


def _corrupt_message(name: str, reason: str) -> str:
    path = weights_file(name)
    return (
        f"The pretrained weights file {path.name} for {name} at {path} is corrupt or not a "
        f"torchvision weights file ({reason}). Delete it and download it again with "
        f"`{DOWNLOAD_COMMAND}` (or fetch {weights_url(name)} and copy it there)."
    )


def _resolve_host(url: str, timeout: float) -> None:
    """Resolve the host a download of ``url`` connects to (the proxy, if one is set), or raise.

    ``socket.getaddrinfo`` is not bounded by socket timeouts, so it runs in a daemon thread
    that is abandoned when it overruns ``timeout``.
    """
    parsed = urllib.parse.urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if proxy and not urllib.request.proxy_bypass(host or ""):
        proxy_url = urllib.parse.urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_url.hostname, proxy_url.port or 80
    result: list[BaseException | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            result.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result.append(exc)

    thread = threading.Thread(target=lookup, name="facecore-dns", daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        raise TimeoutError(f"looking up {host} took more than {timeout:g} s")
    if result[0] is not None:
        raise result[0]


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Bound every socket operation started inside (urllib, used by torch.hub, has none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _fetch_state_dict(name: str, *, progress: bool) -> dict[str, Any]:
    weights = _weights(name)
    path = weights_file(name)
    if path.is_file():
        try:
            state = weights.get_state_dict(progress=progress, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch.load raises many kinds on a bad file
            reason = f"{type(exc).__name__}: {exc}"
            raise WeightsUnavailableError(_corrupt_message(name, reason)) from exc
    else:
        try:
            _resolve_host(weights.url, DNS_TIMEOUT_S)
            with _socket_timeout(SOCKET_TIMEOUT_S):
                state = weights.get_state_dict(
                    progress=progress, check_hash=True, map_location="cpu", weights_only=True
                )
        except Exception as exc:  # noqa: BLE001 - URLError, OSError, timeouts, hash mismatch
            reason = f"{type(exc).__name__}: {exc}"
            raise WeightsUnavailableError(_unavailable_message(name, reason)) from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsUnavailableError(_corrupt_message(name, "it holds no state dict of tensors"))
    return dict(state)


def load_pretrained_state_dict(
    name: str = "resnet50_pretrained", *, progress: bool = False
) -> dict[str, Any]:
    """The ImageNet state dict of model ``name`` via torchvision's loader, downloading if needed.

    Raises :class:`WeightsUnavailableError` when the file is missing and cannot be downloaded
    (the message names the file, its path, its URL and the download command) or is corrupt.
    """
    return _fetch_state_dict(name, progress=progress)


def load_pretrained_weights(
    model: torch.nn.Module, name: str = "resnet50_pretrained", *, progress: bool = False
) -> None:
    """Load the ImageNet weights of ``name`` into ``model`` (its original ImageNet architecture).

    A file whose keys or shapes do not fit is reported as corrupt (WeightsUnavailableError).
    """
    state = _fetch_state_dict(name, progress=progress)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        reason = f"it does not fit the {name} architecture: {str(exc)[:300]}"
        raise WeightsUnavailableError(_corrupt_message(name, reason)) from exc


def download_weights(name: str = "resnet50_pretrained", progress: bool = True) -> Path:
    """Fetch the weights of ``name`` into the torch.hub cache (hash-checked) and return the path.

    A file already there is checked for readability instead of being downloaded again.
    """
    require_writable("Downloading weights")
    _fetch_state_dict(name, progress=progress)
    return weights_file(name)
