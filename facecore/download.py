"""Download one file atomically: streamed in chunks, checked, then renamed into place.

A reader never sees a half-written file at ``dest``; on any failure nothing is left behind
(neither ``dest`` nor the temporary file beside it).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from facecore.errors import DownloadError

ProgressCallback = Callable[[int, int], None]

CHUNK_SIZE = 1 << 16
USER_AGENT = "facecore-downloader"
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError)


def download_file(
    url: str,
    dest: str | Path,
    *,
    progress: ProgressCallback | None = None,
    expected_sha256: str | None = None,
    timeout: float = 60.0,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    ``progress(bytes_done, total)`` is called after every chunk (``total`` is 0 when the
    server does not say). ``expected_sha256`` (hex) is compared before the file is moved in.
    ``check(tmp_path)`` may validate the temporary file and raise to refuse it.
    Raises :class:`DownloadError` when offline, on HTTP errors, or on a checksum mismatch.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Hidden name that keeps dest's extension (OpenCV picks an importer by extension).
    fd, tmp_name = tempfile.mkstemp(prefix=".part-", suffix=f"-{dest.name}", dir=dest.parent)
    tmp = Path(tmp_name)
    fh = os.fdopen(fd, "wb")
    try:
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with fh, urllib.request.urlopen(request, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0)
                done = 0
                if progress is not None:
                    progress(0, total)
                while True:
                    chunk = resp.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    fh.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                fh.flush()
                os.fsync(fh.fileno())
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"Download of {url} failed: HTTP {exc.code} {exc.reason}.") from exc
        except ValueError as exc:  # urllib: unknown URL type, malformed URL
            raise DownloadError(f"Cannot download from {url!r}: {exc}.") from exc
        except _NETWORK_ERRORS as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(
                f"Could not download {url} ({reason}). Check the network connection."
            ) from exc
        if total and done != total:
            raise DownloadError(f"Download of {url} stopped early: got {done} of {total} bytes.")
        if expected_sha256 is not None:
            got = digest.hexdigest()
            if got.lower() != expected_sha256.lower():
                raise DownloadError(
                    f"Download of {url} failed its checksum: sha256 {got}, "
                    f"expected {expected_sha256}."
                )
        if check is not None:
            check(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a downloaded model is not a secret
        os.replace(tmp, dest)
    except BaseException:
        fh.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return dest
