"""Opening a folder finds exactly the images a user expects, and never hangs."""
import os
import threading

import pytest

from app.core.errors import Cancelled
from app.core.scan import expand_paths, scan, scan_folder


def _touch(p, data=b"x"):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_finds_images_recursively_any_case_sorted(tmp_path):
    want = []
    for rel in ["a.jpg", "B.JPEG", "c.Png", "sub/d.bmp", "sub/deeper/e.GIF", "f.webp", "g.tif",
                "h.TIFF"]:
        want.append(str(_touch(tmp_path / rel)))
    for rel in ["notes.txt", "raw.cr2", "noext", "sub/readme.md", "archive.jpg.zip"]:
        _touch(tmp_path / rel)
    records = scan_folder(tmp_path)
    assert [r.path for r in records] == sorted(want)
    st = os.stat(want[0])
    first = next(r for r in records if r.path == want[0])
    assert (first.size, first.mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_hidden_files_and_folders_are_ignored(tmp_path):
    keep = _touch(tmp_path / "visible.jpg")
    _touch(tmp_path / ".hidden.jpg")
    _touch(tmp_path / ".thumbnails" / "x.jpg")
    _touch(tmp_path / "sub" / ".git" / "y.png")
    assert [r.path for r in scan_folder(tmp_path)] == [str(keep)]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this platform")
def test_symlink_loop_does_not_hang(tmp_path):
    img = _touch(tmp_path / "a" / "one.png")
    try:
        os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
        os.symlink(tmp_path, tmp_path / "a" / "up")
        os.symlink(tmp_path / "nowhere", tmp_path / "a" / "broken.jpg")
    except OSError:
        pytest.skip("cannot create symlinks here")
    paths = [r.path for r in scan_folder(tmp_path)]
    assert paths == [str(img)]


def test_missing_folder_is_reported_not_raised(tmp_path):
    res = scan(tmp_path / "gone")
    assert res.records == [] and "not found" in res.problems[0][1]


def test_cancel_and_progress(tmp_path):
    for i in range(50):
        _touch(tmp_path / f"{i:03}.jpg")
    seen = []
    res = scan(tmp_path, progress=seen.append, progress_every=10)
    assert len(res.records) == 50 and seen[-1] == 50 and seen[0] == 10
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        scan_folder(tmp_path, cancel=ev)


def test_expand_paths_mixes_files_and_folders(tmp_path):
    a = _touch(tmp_path / "x" / "a.jpg")
    b = _touch(tmp_path / "x" / "sub" / "b.png")
    c = _touch(tmp_path / "c.PNG")
    _touch(tmp_path / "doc.txt")
    out = expand_paths([c, tmp_path / "x", tmp_path / "doc.txt", c])
    assert out == [str(c), str(a), str(b)]
