"""Projects: save, reopen, everything back; moved projects still find their images."""
import json
import os
import shutil

import pytest

from app.core.project import ProjectError, apply_project, load_project, save_project
from app.core.session import Session
from tests.imaging_helpers import solid


def _session(root):
    ex = [solid(root / "ex" / f"{c}{i}.png", c, seed=i) for c in ("red", "blue") for i in range(2)]
    photo = solid(root / "photos" / "p.png", "red")
    s = Session()
    red = s.add_class("red", "#ff0000")
    blue = s.add_class("blue")
    s.add_examples(red.id, ex[:2])
    s.add_examples(blue.id, ex[2:])
    s.assign([photo], blue.id)
    s.set_threshold(0.35)
    s.set_method("maml")
    s.set_model_path(root / "models" / "m")
    s.set_folder(root / "photos", [str(photo)])
    return s


def _state(s):
    return ([(c.id, c.name, c.colour) for c in s.classes],
            sorted((e.path, e.class_id, e.source) for e in s.examples),
            s.threshold, s.method, s.model_path, s.folder)


def test_save_and_reopen_restores_everything(tmp_path):
    s = _session(tmp_path)
    assert s.modified
    path = save_project(s, tmp_path / "work.fsproj.json")
    assert not s.modified
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["format"] == "fewshot-label-project"
    assert data["examples"][0]["rel"].startswith("ex/")
    s2 = Session()
    apply_project(s2, load_project(path))
    assert _state(s2) == _state(s)
    assert not s2.can_undo and not s2.modified
    assert s2.add_class().id not in {c.id for c in s.classes}  # ids keep counting up


def test_moved_project_resolves_relative_paths(tmp_path):
    s = _session(tmp_path / "a")
    save_project(s, tmp_path / "a" / "p.fsproj.json")
    shutil.move(tmp_path / "a", tmp_path / "b")
    data = load_project(tmp_path / "b" / "p.fsproj.json")
    assert not data.missing
    assert all(e.path.startswith(str(tmp_path / "b")) and os.path.exists(e.path) for e in data.examples)
    assert data.folder == str(tmp_path / "b" / "photos")


def test_missing_examples_are_listed(tmp_path):
    s = _session(tmp_path)
    p = save_project(s, tmp_path / "p.fsproj.json")
    gone = s.examples[0].path
    os.unlink(gone)
    assert load_project(p).missing == [gone]


@pytest.mark.parametrize("content,match", [
    (None, "not found"),
    ("", "empty file"),
    ("{\"format\": \"fewshot-label-project\", ", "corrupt project file"),
    ("[1, 2]", "not a fewshot-label project"),
    ("{\"format\": \"fewshot-label-project\", \"version\": 99}", "version 99"),
    ("{\"format\": \"fewshot-label-project\", \"version\": 1, \"classes\": [{\"id\": 1}]}",
     "class #1"),
    ("{\"format\": \"fewshot-label-project\", \"version\": 1, \"classes\": [], "
     "\"examples\": [{\"class\": 5, \"abs\": \"/x.jpg\"}]}", "no class"),
    ("{\"format\": \"fewshot-label-project\", \"version\": 1, \"threshold\": 7}", "threshold"),
])
def test_bad_project_files_give_clear_errors(tmp_path, content, match):
    p = tmp_path / "bad.fsproj.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(ProjectError, match=match) as ei:
        load_project(p)
    assert str(p) in str(ei.value)


def test_binary_garbage_and_atomic_save(tmp_path, monkeypatch):
    p = tmp_path / "x.fsproj.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ProjectError, match="not a text file"):
        load_project(p)
    s = _session(tmp_path)
    save_project(s, p)
    before = p.read_bytes()
    s.add_class("new")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_project(s, p)
    assert p.read_bytes() == before and s.modified
