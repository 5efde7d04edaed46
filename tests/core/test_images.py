"""Every kind of image a user's folder holds decodes; every broken one says why."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.core.images import ImageError, load_image, load_thumbnail, preprocess
from app.core.model import InputSpec


def _save(im, path, **kw):
    im.save(path, **kw)
    return path


def _gradient(w=40, h=30):
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, 0)
    return np.stack([x, x[::-1, ::-1], np.full_like(x, 90)], -1)


@pytest.mark.parametrize("kind", ["L", "P", "P_transparent", "RGBA", "CMYK", "I16", "1", "LA"])
def test_every_mode_decodes_to_rgb_and_l(tmp_path, kind):
    rgb = Image.fromarray(_gradient())
    if kind == "L":
        path = _save(rgb.convert("L"), tmp_path / "g.png")
    elif kind == "P":
        path = _save(rgb.convert("P"), tmp_path / "p.png")
    elif kind == "P_transparent":
        p = rgb.convert("P")
        path = _save(p, tmp_path / "pt.png", transparency=0)
    elif kind == "RGBA":
        a = rgb.copy()
        a.putalpha(128)
        path = _save(a, tmp_path / "a.png")
    elif kind == "CMYK":
        path = _save(rgb.convert("CMYK"), tmp_path / "c.jpg", quality=95)
    elif kind == "I16":
        arr = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
        path = _save(Image.fromarray(arr), tmp_path / "deep.png")
        assert Image.open(path).mode.startswith("I")
    elif kind == "1":
        path = _save(rgb.convert("1"), tmp_path / "bw.bmp")
    else:
        path = _save(rgb.convert("LA"), tmp_path / "la.png")
    im = load_image(path, channels=3)
    assert im.mode == "RGB" and im.size == (40, 30)
    arr = np.asarray(im)
    assert arr.std() > 0  # not a blank image
    assert load_image(path, channels=1).mode == "L"
    small = load_image(path, channels=3, target_size=(8, 8))  # the embedder's draft path
    assert small.mode == "RGB" and small.size[0] >= 16
    assert load_thumbnail(path, 20).size == (20, 15)


def test_rgba_transparent_pixels_become_white(tmp_path):
    im = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    path = _save(im, tmp_path / "clear.png")
    assert np.asarray(load_image(path)).min() == 255


def test_sixteen_bit_keeps_its_gradient(tmp_path):
    arr = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (4, 1))
    path = _save(Image.fromarray(arr), tmp_path / "d.png")
    row = np.asarray(load_image(path, 1))[0].astype(int)
    assert row[0] < 10 and row[-1] > 245 and np.all(np.diff(row) >= 0)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    px = np.asarray(load_image(path))[8, 8]
    assert px[0] > 200 and px[2] < 50


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = rotate 90 degrees clockwise
    path = _save(im, tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(path)
    assert out.size == (20, 40)
    arr = np.asarray(out.convert("L")).astype(int)
    assert arr[:20].mean() > 200 and arr[20:].mean() < 50  # left half is now on top
    assert load_thumbnail(path, 10).size == (5, 10)


def _png_with_size(w, h):
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    # IHDR starts at byte 8 (length) + 4 (type); width/height are the first 8 data bytes
    data[16:24] = struct.pack(">II", w, h)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    data[29:33] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize("case,reason", [
    ("empty", "empty file"),
    ("text", "not an image"),
    ("truncated_jpeg", "truncated"),
    ("truncated_png", "truncated|cannot decode"),
    ("bomb", "too large"),
    ("missing", "not found"),
])
def test_bad_files_raise_image_error_with_a_reason(tmp_path, case, reason):
    import re
    path = tmp_path / f"{case}.jpg"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("these are my holiday notes, not a photo\n")
    elif case == "truncated_jpeg":
        buf = io.BytesIO()
        Image.fromarray(_gradient(200, 150)).save(buf, "JPEG", quality=95)
        path.write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    elif case == "truncated_png":
        path = tmp_path / "t.png"
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 120, 3), np.uint8)).save(buf, "PNG")
        path.write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    elif case == "bomb":
        path = tmp_path / "bomb.png"
        path.write_bytes(_png_with_size(40000, 40000))
    for fn in (lambda: load_image(path), lambda: load_thumbnail(path, 64)):
        with pytest.raises(ImageError) as ei:
            fn()
        assert re.search(reason, ei.value.reason), ei.value.reason
        assert str(path) in str(ei.value)


def test_thumbnail_keeps_aspect_and_uses_draft(tmp_path):
    path = _save(Image.fromarray(_gradient(800, 400)), tmp_path / "big.jpg", quality=90)
    th = load_thumbnail(path, 128)
    assert th.mode == "RGB" and th.size == (128, 64)
    small = _save(Image.fromarray(_gradient(50, 20)), tmp_path / "small.png")
    assert load_thumbnail(small, 128).size == (50, 20)  # never enlarged


def test_preprocess_shapes_and_normalisation(tmp_path):
    path = _save(Image.new("RGB", (64, 48), (255, 0, 0)), tmp_path / "red.png")
    spec = InputSpec(size=(16, 16), channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = preprocess(load_image(path), spec)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], -1.0)
