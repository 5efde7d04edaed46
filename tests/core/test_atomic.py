import os
import stat

import pytest

from app.core.atomic import atomic_write_bytes, atomic_write_text


def test_replaces_whole_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "out.csv"
    atomic_write_text(p, "old\n")
    atomic_write_text(p, "new\n")
    assert p.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_failed_write_keeps_old_file(tmp_path):
    p = tmp_path / "project.json"
    atomic_write_text(p, "old")


    with pytest.raises(TypeError):
        atomic_write_bytes(p, 12345)  # type: ignore[arg-type]  # not bytes: write fails midway
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["project.json"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_new_file_gets_normal_permissions_and_existing_mode_is_kept(tmp_path):
    old = os.umask(0o022)
    try:
        p = tmp_path / "labels.csv"
        atomic_write_text(p, "x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        os.chmod(p, 0o640)
        atomic_write_text(p, "y")
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
    finally:
        os.umask(old)
