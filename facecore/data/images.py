"""Decoding untrusted image files into RGB arrays, safely.

The boundary of the library: whatever comes in (path or bytes, JPEG/PNG/BMP/WebP/PGM, CMYK,
palette, 16-bit, EXIF-rotated) leaves as an ``H x W x 3`` ``uint8`` RGB numpy array, or as an
:class:`~facecore.errors.ImageError` that names the problem.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facecore.errors import ImageError, ImageTooLargeError

#: File extensions accepted on import (lower case, with the dot).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm"})
#: Pillow format names those extensions decode to (PGM is Pillow's "PPM").
_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP", "PPM"})
#: Default limits: 40 megapixels and 30 MB per file.
MAX_PIXELS = 40_000_000
MAX_FILE_BYTES = 30 * 1024 * 1024

# Pillow's own decompression-bomb guard is kept as a backstop (at twice our limit, so our clearer
# message comes first) and made an error, not a warning.
Image.MAX_IMAGE_PIXELS = 2 * MAX_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)


def is_image_name(name: str) -> bool:
    """True for a visible file with an accepted image extension."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and Path(base).suffix.lower() in IMAGE_EXTENSIONS


def load_rgb(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_FILE_BYTES,
) -> np.ndarray:
    """Decode ``source`` (a path or the file's bytes) to an RGB ``uint8`` array.

    EXIF orientation is applied. Alpha is composited on white, 16-bit and float images are
    scaled to 8 bits, grayscale/CMYK/palette are converted. ``name`` is used in messages.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    data = _read(source, label, max_bytes)
    if not data:
        raise ImageError(f"{label}: the file is empty (0 bytes).")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in _FORMATS:
                raise ImageError(
                    f"{label}: {img.format} images are not supported; use JPEG, PNG, BMP, WebP or PGM."
                )
            w, h = img.size
            if w * h > max_pixels:
                raise ImageTooLargeError(
                    f"{label}: {w}x{h} pixels is over the limit of {max_pixels:,} pixels."
                )
            if w < 1 or h < 1:
                raise ImageError(f"{label}: the image has no pixels ({w}x{h}).")
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb_array(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{label}: refused as a decompression bomb ({exc}).") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{label}: not an image file (its contents are not a known image format).") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{label}: the image is corrupt or truncated ({exc}).") from exc


def _read(source: str | Path | bytes, label: str, max_bytes: int) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ImageError(f"{label}: cannot read the file ({exc.strerror}).") from exc
        if size > max_bytes:
            raise ImageTooLargeError(f"{label}: {size:,} bytes is over the limit of {max_bytes:,} bytes.")
        data = path.read_bytes()
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{label}: {len(data):,} bytes is over the limit of {max_bytes:,} bytes.")
    return data


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any Pillow image mode to an ``H x W x 3`` ``uint8`` RGB array."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode != "F":
            top = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
            arr = arr / top * 255.0
        else:
            lo, hi = float(arr.min(initial=0)), float(arr.max(initial=1))
            arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([gray] * 3, axis=-1))
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def encode_jpeg(image_rgb: np.ndarray, *, quality: int = 95) -> bytes:
    """Encode an RGB array as JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(image_rgb, "RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
