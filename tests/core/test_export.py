"""Export: the CSV a spreadsheet opens safely, and class folders that never lose a file."""
import os

import pytest

from app.core.export import apply_plan, plan_files, read_csv, write_csv
from app.core.session import ResultRow


def _rows(tmp_path, labels):
    rows = []
    for i, label in enumerate(labels):
        p = tmp_path / "in" / f"img{i}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"image {i}".encode())
        rows.append(ResultRow(str(p), label, 0.5 + i / 100, "predicted", None))
    return rows


def test_csv_columns_and_formula_neutralising(tmp_path):
    rows = [ResultRow("/x/=cmd.jpg", "=HYPERLINK(\"http://evil\")", 0.9, "predicted", 1),
            ResultRow("/x/a,b.jpg", "+1", 1.0, "example", 2),
            ResultRow("/x/c.jpg", "-minus", 0.25, "corrected", 3),
            ResultRow("/x/d.jpg", "@sum", 0.5, "predicted", 4),
            ResultRow("/x/e.jpg", "\tTab", 0.5, "predicted", 5),
            ResultRow("/x/f.jpg", "\rcr", 0.5, "predicted", 6),
            ResultRow("/x/g.jpg", "cat, \"the\" best", 0.123456, "predicted", 7),
            ResultRow("/x/h.jpg", "unknown", 0.1, "predicted", None)]
    out = tmp_path / "labels.csv"
    assert write_csv(out, rows) == len(rows)
    got = read_csv(out)
    assert list(got[0]) == ["path", "label", "confidence", "source"]
    assert [r["label"] for r in got] == ["'=HYPERLINK(\"http://evil\")", "'+1", "'-minus", "'@sum",
                                         "'\tTab", "'\rcr", "cat, \"the\" best", "unknown"]
    assert got[0]["path"] == "/x/=cmd.jpg"  # only a leading character matters
    assert [r["source"] for r in got] == [r.source for r in rows]
    assert got[6]["confidence"] == "0.1235"
    assert not any(f.name.endswith(".tmp") for f in tmp_path.iterdir())


def test_csv_write_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "labels.csv"
    write_csv(out, [ResultRow("/a.jpg", "a", 1.0, "example", 1)])
    before = out.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_csv(out, [ResultRow("/b.jpg", "b", 1.0, "example", 1)])
    assert out.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["labels.csv"]


def test_copy_into_class_folders_never_overwrites(tmp_path):
    rows = _rows(tmp_path, ["cat", "dog", "cat", "unknown"])
    # two sources with the same name, and a file already in the destination
    other = tmp_path / "in2" / "img0.jpg"
    other.parent.mkdir()
    other.write_bytes(b"other")
    rows.append(ResultRow(str(other), "cat", 0.8, "predicted", None))
    dest = tmp_path / "out"
    (dest / "cat").mkdir(parents=True)
    (dest / "cat" / "img0.jpg").write_bytes(b"precious")
    plan = plan_files(rows, dest, include_unknown=False)
    assert plan.counts() == {"cat": 3, "dog": 1}
    assert [p for p, _ in plan.skipped] == [rows[3].path]
    assert "Copy 4 files" in plan.summary("copy") and "3 to cat" in plan.summary()
    assert not (dest / "dog").exists()  # planning touches nothing
    report = apply_plan(plan, "copy")
    assert not report.failed and len(report.done) == 4
    assert (dest / "cat" / "img0.jpg").read_bytes() == b"precious"
    assert (dest / "cat" / "img0 (2).jpg").read_bytes() == b"image 0"
    assert (dest / "cat" / "img0 (3).jpg").read_bytes() == b"other"
    assert (dest / "dog" / "img1.jpg").read_bytes() == b"image 1"
    assert all(os.path.exists(r.path) for r in rows)  # copies leave the originals
    again = apply_plan(plan_files(rows, dest, include_unknown=True), "copy")
    assert (dest / "unknown" / "img3.jpg").exists() and len(again.done) == 5
    assert (dest / "cat" / "img0 (4).jpg").exists()


def test_move_and_odd_class_names(tmp_path):
    rows = _rows(tmp_path, ["a/b: c?", "..", "ok"])
    dest = tmp_path / "sorted"
    report = apply_plan(plan_files(rows, dest), "move")
    assert len(report.done) == 3 and not report.failed
    assert not any(os.path.exists(r.path) for r in rows)
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["_", "a_b_ c_", "ok"]
    for d in dest.iterdir():
        assert d.resolve().parent == dest.resolve()


def test_missing_source_is_skipped_with_reason(tmp_path):
    rows = _rows(tmp_path, ["a", "b"])
    os.unlink(rows[0].path)
    plan = plan_files(rows, tmp_path / "o")
    assert plan.skipped == [(rows[0].path, "file not found")]
    with pytest.raises(ValueError):
        apply_plan(plan, "delete")
