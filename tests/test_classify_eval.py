"""tools/classify_eval.py: the draws it makes and how it scores a CSV (no classify run)."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from tests.imaging_helpers import solid
from tools.classify_eval import accuracy, make_draw


def test_a_draw_keeps_uneven_shares_the_examples_apart_and_names_that_tell_nothing(tmp_path):
    data = tmp_path / "data"
    for name, colour in (("red", "red"), ("blue", "blue"), ("green", "green")):
        for i in range(12):
            solid(data / name / f"{name}_{i:02}.png", colour, seed=i)
    truth = make_draw(data, tmp_path / "draw", shots=2, seed=0)
    out = tmp_path / "draw"
    examples = {p.parent.name: p for p in (out / "examples").rglob("*.png")}
    assert set(examples) == {"red", "blue", "green"}
    assert all(len(list((out / "examples" / c).iterdir())) == 2 for c in examples)
    photos = sorted(str(p) for p in (out / "photos").rglob("*.png"))
    assert photos == sorted(truth) and not any(c in Path(p).name for p in photos for c in examples)
    counts = Counter(truth.values())
    assert max(counts.values()) == 10  # the largest class whole, the others thinned
    assert min(counts.values()) >= 1 and len(set(counts.values())) > 1
    assert Counter(make_draw(data, tmp_path / "again", shots=2, seed=0).values()) == counts


def test_accuracy_reads_the_predicted_rows_of_the_csv(tmp_path):
    path = tmp_path / "labels.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "confidence", "source"])
        w.writerows([["/p/a.png", "red", "0.9", "predicted"], ["/p/b.png", "red", "0.6", "predicted"],
                     ["/p/c.png", "unknown", "0.2", "predicted"], ["/e/x.png", "blue", "1", "example"]])
    truth = {"/p/a.png": "red", "/p/b.png": "blue", "/p/c.png": "blue"}
    assert abs(accuracy(path, truth) - 1 / 3) < 1e-9


def test_an_uneven_draw_gives_each_class_1_to_k_examples(tmp_path):
    data = tmp_path / "data"
    for name, colour in (("red", "red"), ("blue", "blue"), ("green", "green"), ("grey", (128, 128, 128))):
        for i in range(12):
            solid(data / name / f"{name}_{i:02}.png", colour, seed=i)
    seen = set()
    for seed in range(4):
        make_draw(data, tmp_path / f"d{seed}", shots=4, seed=seed, uneven=True)
        per = tuple(len(list((tmp_path / f"d{seed}" / "examples" / c).iterdir()))
                    for c in ("red", "blue", "green", "grey"))
        assert min(per) >= 1 and max(per) <= 4
        seen.add(per)
    assert len(seen) > 1 and any(len(set(p)) > 1 for p in seen)
