"""`python -m app classify` end to end: generated folders in, every CSV row checked."""
import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.core.project import load_project
from tests.imaging_helpers import bad_files, save_tiny_model, solid

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_CACHE_DIR", str(tmp_path / "cache"))


def _setup(tmp_path):
    model = save_tiny_model(tmp_path)
    support = tmp_path / "support"
    for i in range(2):
        solid(support / "red" / f"r{i}.png", "red", seed=100 + i)
        solid(support / "blue" / f"b{i}.jpg", "blue", seed=200 + i)
    (support / "empty-class").mkdir()
    photos = tmp_path / "photos"
    truth = {}
    for i in range(5):
        truth[str(solid(photos / f"red_{i}.png", "red", seed=i))] = "red"
        truth[str(solid(photos / "sub" / f"blue_{i}.JPG", "blue", seed=10 + i, fmt="JPEG"))] = "blue"
    bad = bad_files(photos / "broken")
    solid(photos / ".hidden" / "x.png", "red")
    (photos / "readme.txt").write_text("hello")
    return model, support, photos, truth, bad


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        assert header == ["path", "label", "confidence", "source"]
        return [dict(zip(header, row)) for row in r]


def test_classify_labels_every_image_and_reports_bad_files(tmp_path, capsys):
    model, support, photos, truth, bad = _setup(tmp_path)
    out = tmp_path / "labels.csv"
    code = main(["classify", "--model", str(model), "--support", str(support),
                 "--images", str(photos), "--out", str(out), "--device", "cpu",
                 "--batch-size", "4", "--project", str(tmp_path / "p.fsproj.json")])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = _rows(out)
    by_path = {r["path"]: r for r in rows}
    assert len(by_path) == len(rows)
    examples = {str(p): p.parent.name for p in support.rglob("*.*")}
    assert set(by_path) == set(truth) | set(examples)  # no bad, hidden or non-image file
    for p, label in truth.items():
        assert by_path[p]["label"] == label and by_path[p]["source"] == "predicted"
        assert 0.5 <= float(by_path[p]["confidence"]) <= 1.0
    for p, label in examples.items():
        assert by_path[p] == {"path": p, "label": label, "confidence": "1.0000", "source": "example"}
    for p, reason in bad.items():
        line = next(l for l in err.splitlines() if p in l)
        assert re.search(reason, line), line
    assert "empty-class" in err  # the class folder without images is mentioned
    summary = err.strip().splitlines()[-1]
    assert re.search(r"classified 10 images .*10 labelled, 0 unknown.* 4 examples; skipped 3 files", summary), summary
    proj = load_project(tmp_path / "p.fsproj.json")
    assert sorted(c.name for c in proj.classes) == ["blue", "red"]
    assert {e.path for e in proj.examples} == set(examples)
    assert proj.folder == str(photos)


def test_threshold_marks_low_confidence_unknown(tmp_path, capsys):
    model, support, photos, truth, _ = _setup(tmp_path)
    for i in range(3):  # in between red and blue: less confident
        solid(photos / f"purple_{i}.png", (140, 30, 150), seed=50 + i)
    out = tmp_path / "a.csv"
    args = ["classify", "--model", str(model), "--support", str(support), "--images", str(photos),
            "--device", "cpu", "--method", "maml"]
    assert main(args + ["--out", str(out)]) == 0
    confs = sorted({float(r["confidence"]) for r in _rows(out) if r["source"] == "predicted"})
    assert len(confs) >= 2, confs
    t = (confs[0] + confs[1]) / 2
    out2 = tmp_path / "b.csv"
    assert main(args + ["--out", str(out2), "--threshold", str(t)]) == 0
    first = {r["path"]: r for r in _rows(out)}
    n_unknown = 0
    for r in _rows(out2):
        if r["source"] != "predicted":
            continue
        low = float(r["confidence"]) < t
        n_unknown += low
        assert r["label"] == ("unknown" if low else first[r["path"]]["label"])
    assert n_unknown >= 1
    assert f"{n_unknown} unknown" in capsys.readouterr().err


def test_nothing_to_do_exits_non_zero(tmp_path, capsys):
    model, support, photos, _, _ = _setup(tmp_path)
    one = tmp_path / "one-class"
    solid(one / "red" / "a.png", "red")
    out = tmp_path / "x.csv"
    assert main(["classify", "--model", str(model), "--support", str(one), "--images", str(photos),
                 "--out", str(out)]) == 2
    assert "at least two" in capsys.readouterr().err
    broken = tmp_path / "broken"
    (broken.with_suffix(".json")).write_text("{not json")
    assert main(["classify", "--model", str(broken), "--support", str(support),
                 "--images", str(photos), "--out", str(out)]) == 2
    assert "cannot load the model" in capsys.readouterr().err
    assert not out.exists()


def test_python_dash_m_app_classify(tmp_path):
    model, support, photos, truth, _ = _setup(tmp_path)
    out = tmp_path / "labels.csv"
    env = {**__import__("os").environ, "FEWSHOT_CACHE_DIR": str(tmp_path / "c2"), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "app", "classify", "--model", str(model),
                           "--support", str(support), "--images", str(photos), "--out", str(out),
                           "--device", "cpu"], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ETA" in proc.stderr and "skipped 3 files" in proc.stderr
    rows = _rows(out)
    assert sum(r["source"] == "predicted" for r in rows) == len(truth)


def test_unavailable_device_falls_back_to_cpu(tmp_path, capsys, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, support, photos, truth, _ = _setup(tmp_path)
    out = tmp_path / "labels.csv"
    assert main(["classify", "--model", str(model), "--support", str(support), "--images", str(photos),
                 "--out", str(out), "--device", "cuda", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "'cuda' is not available" in err and "ETA" not in err
    assert sum(r["source"] == "predicted" for r in _rows(out)) == len(truth)


def test_default_model_prefers_the_photo_model(tmp_path, capsys, monkeypatch):
    from app.core import defaults

    pre = tmp_path / "pretrained"
    assert defaults.default_model_path(pre) is None
    save_tiny_model(pre, "zzz-other")
    assert defaults.default_model_path(pre) == pre / "zzz-other"
    save_tiny_model(pre, "omniglot-protonet-conv4")
    assert defaults.default_model_path(pre) == pre / "omniglot-protonet-conv4"
    (pre / "photo-mobilenetv2.json").write_text("{}")  # half a checkpoint does not count
    assert defaults.default_model_path(pre) == pre / "omniglot-protonet-conv4"
    save_tiny_model(pre, "photo-mobilenetv2")
    assert defaults.default_model_path(pre) == pre / "photo-mobilenetv2"
    save_tiny_model(pre, "photo-mobilenetv2-lite1")
    assert defaults.default_model_path(pre) == pre / "photo-mobilenetv2-lite1"
    # classify without --model uses it
    monkeypatch.setattr(defaults, "PRETRAINED_DIR", pre)
    _, support, photos, truth, _ = _setup(tmp_path)
    out = tmp_path / "labels.csv"
    assert main(["classify", "--support", str(support), "--images", str(photos), "--out", str(out),
                 "--quiet"]) == 0
    assert sum(r["source"] == "predicted" for r in _rows(out)) == len(truth)
