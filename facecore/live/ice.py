"""ICE servers for WebRTC: where the Live page's STUN/TURN servers come from, checked.

Importable without torch: the page reads it before any recognizer is built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from facecore.errors import ConfigError

ICE_ENV = "FACECORE_ICE_SERVERS"
_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


def parse_ice_servers(value: Any, *, source: str) -> list[dict[str, Any]]:
    """Validate ICE servers: a list of ``{"urls", "username"?, "credential"?}`` (or its JSON text,
    or an object ``{"iceServers": [...]}``).

    ``urls`` is one URL or a list, each ``stun:``, ``stuns:``, ``turn:`` or ``turns:``; TURN
    servers need ``username`` and ``credential``. Raises :class:`~facecore.errors.ConfigError`
    naming ``source``.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc}).") from exc
    if isinstance(value, Mapping):
        value = value.get("iceServers", [value])
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{source}: expected a list of ICE servers, got {type(value).__name__}.")
    return [_server(raw, i, source) for i, raw in enumerate(value)]


def _server(raw: Any, i: int, source: str) -> dict[str, Any]:
    """Server ``i`` of the list, checked."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: server {i + 1} is not a table/object with 'urls'.")
    urls = raw.get("urls", raw.get("url"))
    urls = [urls] if isinstance(urls, str) else list(urls) if isinstance(urls, (list, tuple)) else []
    if not urls or not all(isinstance(u, str) and u.lower().startswith(_ICE_SCHEMES) for u in urls):
        raise ConfigError(
            f"{source}: server {i + 1} needs 'urls' starting with stun:, stuns:, turn: or turns: "
            f"(got {raw.get('urls')!r})."
        )
    server: dict[str, Any] = {"urls": urls}
    for key in ("username", "credential"):
        if raw.get(key) is not None:
            server[key] = str(raw[key])
    turn = any(u.lower().startswith("turn") for u in urls)
    if turn and not ("username" in server and "credential" in server):
        raise ConfigError(f"{source}: server {i + 1} is a TURN server and needs 'username' and 'credential'.")
    return server


def rtc_configuration(*, env: str | None = None, secret: Any = None) -> tuple[dict[str, Any], str]:
    """The WebRTC configuration and where it came from, in words.

    ``env``: the value of ``FACECORE_ICE_SERVERS`` (a JSON list), which wins; ``secret``: the
    ``servers`` entry of the ``[ice]`` table of ``.streamlit/secrets.toml``. Neither: no ICE
    servers (``{"iceServers": []}``), so only direct connections work (this machine, its network).
    """
    if env is not None and env.strip():
        servers = parse_ice_servers(env, source=ICE_ENV)
        return {"iceServers": servers}, f"{len(servers)} ICE server(s) from {ICE_ENV}"
    if secret is not None:
        servers = parse_ice_servers(_plain(secret), source=".streamlit/secrets.toml [ice] servers")
        return {"iceServers": servers}, f"{len(servers)} ICE server(s) from .streamlit/secrets.toml [ice]"
    return {"iceServers": []}, "no STUN/TURN servers: direct connections only (this computer or its network)"


def _plain(value: Any) -> Any:
    """Mappings and sequences (e.g. Streamlit's secrets AttrDict) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


__all__ = ["ICE_ENV", "parse_ice_servers", "rtc_configuration"]
