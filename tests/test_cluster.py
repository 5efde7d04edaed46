"""``classify --engine ray`` on a local Ray instance gives the one-machine labels.

A generated folder with one unreadable file is labelled twice: by the one-machine engine and
by a Ray Data actor pool (``ray.init(num_cpus=2)``, two actors). Labels, confidences and
(in Parquet) the embeddings must agree; the bad file is reported, never fatal.
Needs the ``cluster`` extra (the test extra brings it; skipped with a reason without it).
"""
from __future__ import annotations

import csv

import numpy as np
import pytest

from app.cli import main
from tests.imaging_helpers import save_tiny_model, solid

ray = pytest.importorskip("ray", reason="the cluster extra is not installed: pip install -e '.[cluster]'")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:  # Ray alone first: once, on this VM, its workers never registered (the raylet said so)
        ray.get(ray.remote(lambda: 1).remote(), timeout=120)
    except ray.exceptions.GetTimeoutError:
        ray.shutdown()
        pytest.skip("Ray started no worker within 120 s: the environment, before any engine code")
    yield
    ray.shutdown()


@pytest.fixture
def job(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_CACHE_DIR", str(tmp_path / "cache"))
    model = save_tiny_model(tmp_path)
    support, photos = tmp_path / "support", tmp_path / "photos"
    for i in range(2):
        solid(support / "red" / f"r{i}.png", "red", seed=100 + i)
        solid(support / "blue" / f"b{i}.png", "blue", seed=200 + i)
    for i in range(12):
        solid(photos / f"red_{i}.png", "red", seed=i)
        solid(photos / "sub" / f"blue_{i}.jpg", "blue", seed=50 + i, fmt="JPEG")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return tmp_path, ["classify", "--model", str(model), "--support", str(support),
                      "--images", str(photos), "--device", "cpu", "--batch-size", "4", "--quiet"]


def _csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {r["path"]: (r["label"], float(r["confidence"]), r["source"]) for r in csv.DictReader(f)}


def test_ray_engine_gives_the_one_machine_labels_and_reports_the_bad_file(local_ray, job, capsys):
    tmp, argv = job
    assert main(argv + ["--out", str(tmp / "local.csv"), "--no-cache"]) == 0
    capsys.readouterr()
    assert main(argv + ["--out", str(tmp / "ray.csv"), "--engine", "ray",
                        "--num-workers", "2"]) == 0
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "skipped 1 file" in err
    local, dist = _csv(tmp / "local.csv"), _csv(tmp / "ray.csv")
    assert set(local) == set(dist) and len(local) == 4 + 24
    for path, (label, conf, source) in local.items():
        assert dist[path][0] == label and dist[path][2] == source, path
        assert abs(dist[path][1] - conf) <= 1e-4, path
    assert ray.is_initialized()  # a Ray the caller started is left running


def test_parquet_with_embeddings_and_a_list_file(local_ray, job, capsys):
    tmp, argv = job
    photos = tmp / "photos"
    listing = tmp / "list.txt"
    names = sorted(str(p.relative_to(tmp)) for p in photos.rglob("*.*"))
    listing.write_text("# images to label\n" + "\n".join(names) + "\n", encoding="utf-8")
    images_at = argv.index("--images") + 1
    argv = argv[:images_at] + [str(listing)] + argv[images_at + 1:]
    assert main(argv + ["--out", str(tmp / "local.csv"), "--no-cache"]) == 0
    assert main(argv + ["--out", str(tmp / "ray.parquet"), "--engine", "ray",
                        "--with-embeddings"]) == 0
    table = pq.read_table(tmp / "ray.parquet").to_pydict()
    local = _csv(tmp / "local.csv")
    assert sorted(table["path"]) == sorted(local)
    for path, label, conf in zip(table["path"], table["label"], table["confidence"]):
        assert label == local[path][0] and abs(conf - local[path][1]) <= 1e-4
    emb = np.asarray([e for e in table["embedding"] if e is not None], np.float32)
    assert emb.shape[0] == len(table["path"]) and np.isfinite(emb).all()


def test_a_uri_needs_the_ray_engine(job, capsys):
    tmp, argv = job
    images_at = argv.index("--images") + 1
    argv = argv[:images_at] + ["s3://bucket/photos/"] + argv[images_at + 1:]
    assert main(argv + ["--out", str(tmp / "x.csv")]) == 2
    assert "needs --engine ray" in capsys.readouterr().err


def test_a_uri_is_listed_and_read_by_ray(local_ray, job, capsys):
    """``file://`` stands in for object storage: Ray Data lists the files and reads their
    bytes, the actors decode the bytes; labels match one machine on the same images."""
    tmp, argv = job
    photos = tmp / "photos"
    assert main(argv + ["--out", str(tmp / "local.csv"), "--no-cache"]) == 0
    images_at = argv.index("--images") + 1
    uri_argv = argv[:images_at] + [photos.resolve().as_uri()] + argv[images_at + 1:]
    capsys.readouterr()
    assert main(uri_argv + ["--out", str(tmp / "uri.csv"), "--engine", "ray"]) == 0
    err = capsys.readouterr().err
    assert "broken.jpg" in err  # read fine by Ray, refused by the decoder, reported
    local, dist = _csv(tmp / "local.csv"), _csv(tmp / "uri.csv")
    by_name = {p.rsplit("/", 1)[-1]: v for p, v in dist.items() if v[2] == "predicted"}
    for path, (label, conf, source) in local.items():
        if source == "predicted":
            got = by_name[path.rsplit("/", 1)[-1]]
            assert got[0] == label and abs(got[1] - conf) <= 1e-4, path
