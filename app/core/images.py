"""Open, validate and decode one image. The only module that touches Pillow.

``load_image`` returns an RGB or L ``PIL.Image`` with EXIF orientation applied, or raises
``ImageError`` with a short human reason ("truncated file", "not an image", ...).
``preprocess`` turns it into the float32 CHW array a model's ``InputSpec`` asks for.
"""
from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .inputspec import InputSpec

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Refuse images above this many pixels (decompression bombs); 16k x 12k is 192 MP.
MAX_PIXELS = 200_000_000
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's own bomb check (warning above, error at twice) uses the same limit.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(Exception):
    """An image that cannot be used. ``reason`` is short and meant for people."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | os.PathLike[str], channels: int = 3,
               target_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode ``path`` fully (first frame of animations), apply EXIF orientation and convert
    to "RGB" (channels=3) or "L" (channels=1).

    ``target_size`` (H, W) lets JPEG decoding use draft mode: the decoder downscales by
    1/2, 1/4 or 1/8 while decoding, never below twice the target, which is far cheaper
    than decoding a 12-megapixel photo at full size.
    """
    draft = None
    if target_size is not None:
        draft = (max(1, target_size[1] * 2), max(1, target_size[0] * 2))
    return _convert(_open_decoded(path, "RGB" if channels == 3 else "L", draft), channels)


def load_thumbnail(path: str | os.PathLike[str], max_side: int = 256) -> Image.Image:
    """An RGB thumbnail whose longer side is at most ``max_side`` (aspect kept, EXIF
    orientation applied; JPEGs decoded in draft mode). Raises ``ImageError`` like
    ``load_image``. The GUI turns it into a QImage."""
    if max_side < 1:
        raise ValueError("max_side must be >= 1")
    im = _convert(_open_decoded(path, "RGB", (max_side, max_side)), 3)
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.BILINEAR, reducing_gap=2.0)
    return im


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) as displayed (EXIF rotation applied), reading only the header."""
    path = Path(path)
    with _errors(path), _checked_open(path) as im:
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


@contextlib.contextmanager
def _checked_open(path: Path, data: bytes | None = None) -> Iterator[Image.Image]:
    """``Image.open`` (of ``path``, or of ``data`` read from it elsewhere) that refuses empty
    files and turns the decompression-bomb warning into an error; used inside ``_errors`` so
    every failure becomes an ImageError."""
    if (len(data) if data is not None else path.stat().st_size) == 0:
        raise ImageError(path, "empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            yield im


def _open_decoded(path: str | os.PathLike[str], draft_mode: str,
                  draft_size: tuple[int, int] | None, data: bytes | None = None) -> Image.Image:
    """Open, check, draft-decode (JPEG), load the first frame and apply EXIF orientation."""
    path = Path(path)
    with _errors(path), _checked_open(path, data) as im:
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise ImageError(path, f"image too large ({w}x{h} pixels; limit "
                                   f"{MAX_PIXELS // 1_000_000} megapixels)")
        if w == 0 or h == 0:
            raise ImageError(path, f"image has no pixels ({w}x{h})")
        if draft_size is not None and im.format == "JPEG":
            im.draft(draft_mode if im.mode != "CMYK" else None, draft_size)
        im.seek(0)
        im.load()
        out = ImageOps.exif_transpose(im)
        if out is im:
            out = im.copy()
        return out
    raise AssertionError("unreachable")  # pragma: no cover


class _errors:
    """Context manager: turn every decoding failure into ImageError with a reason."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, etype, e, tb) -> bool:
        if e is None or isinstance(e, ImageError):
            return False
        path = self.path
        if isinstance(e, FileNotFoundError):
            raise ImageError(path, "file not found") from None
        if isinstance(e, IsADirectoryError):
            raise ImageError(path, "is a folder, not a file") from None
        if isinstance(e, PermissionError):
            raise ImageError(path, "permission denied") from None
        if isinstance(e, UnidentifiedImageError):
            raise ImageError(path, "not an image (unrecognised file contents)") from None
        if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            raise ImageError(path, "image too large (decompression bomb protection)") from None
        if isinstance(e, OSError):
            msg = str(e)
            low = msg.lower()
            if "truncated" in low or "premature end" in low or "broken data stream" in low:
                raise ImageError(path, "truncated file (incomplete image data)") from None
            raise ImageError(path, f"cannot decode image ({msg or type(e).__name__})") from None
        if isinstance(e, (ValueError, SyntaxError, EOFError, IndexError, MemoryError,
                          struct.error, zlib.error)):
            raise ImageError(path, f"cannot decode image ({e or type(e).__name__})") from None
        if isinstance(e, Exception):  # a plugin's odd failure is still just a bad file
            raise ImageError(path, f"cannot decode image ({type(e).__name__}: {e})") from None
        return False


def _convert(im: Image.Image, channels: int) -> Image.Image:
    """Any mode (1, L, P, RGBA, CMYK, I;16, I, F, LA, ...) -> RGB or L."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(arr.astype(np.uint8), "L")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    target = "RGB" if channels == 3 else "L"
    return im if im.mode == target else im.convert(target)


def preprocess(im: Image.Image, spec: InputSpec) -> np.ndarray:
    """PIL image -> float32 array (C, H, W), resized and normalised as ``spec`` says."""
    h, w = spec.size
    im = _convert(im, spec.channels)
    if spec.resize == "center_crop":
        short = min(im.size)
        scale = (min(h, w) / spec.crop_fraction) / short
        new = (max(w, round(im.size[0] * scale)), max(h, round(im.size[1] * scale)))
        # reduce() first: an integer box downscale is cheap and keeps quality
        factor = min(im.size[0] // new[0], im.size[1] // new[1])
        if factor >= 2:
            im = im.reduce(factor)
        im = im.resize(new, Image.BILINEAR)
        left, top = (new[0] - w) // 2, (new[1] - h) // 2
        im = im.crop((left, top, left + w, top + h))
    elif spec.resize == "stretch":
        if im.size != (w, h):
            factor = min(im.size[0] // w, im.size[1] // h)
            if factor >= 2:
                im = im.reduce(factor)
            im = im.resize((w, h), Image.BILINEAR)
    else:
        raise ValueError(f"unknown resize mode {spec.resize!r}")
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((arr - mean) / std)


def load_for_model(path: str | os.PathLike[str], spec: InputSpec,
                   data: bytes | None = None) -> np.ndarray:
    """Decode + ``preprocess``: what the embedder needs for one file (read from ``path``, or
    its contents ``data`` already read, e.g. from object storage). JPEGs are drafted
    to exactly what ``preprocess`` needs (for center_crop a short side of
    size / crop_fraction), not twice the target as ``load_image`` does: a 12 MP photo then
    decodes at 1/8 scale instead of 1/4, ~17% less CPU per photo (bench/bench_pipeline.py)."""
    h, w = spec.size
    if spec.resize == "center_crop":
        side = -(-min(h, w) * 1000 // round(spec.crop_fraction * 1000))  # ceil, exact
        box = (max(side, w), max(side, h))
    else:
        box = (w, h)
    im = _open_decoded(path, "RGB" if spec.channels == 3 else "L", box, data)
    return preprocess(_convert(im, spec.channels), spec)
