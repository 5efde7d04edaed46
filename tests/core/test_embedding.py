"""Embedding folders of image files: same features as the model, bad files reported,
cache reuse, cancellation, and backend choice."""
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from app.core.backbones import Conv4, Identity
from app.core.cache import EmbeddingCache
from app.core.embedding import Embedder
from app.core.errors import Cancelled
from app.core.images import load_for_model
from app.core.learners import ProtoNet
from app.core.model import OMNIGLOT_INPUT, FewShotModel, InputSpec

SPEC = InputSpec(size=(32, 32), resize="center_crop", crop_fraction=0.875)


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    """One export folder for the module: the same model is exported once, then reused."""
    return tmp_path_factory.mktemp("onnx")


def _model(seed=0):
    torch.manual_seed(seed)
    bb = Conv4(3, hidden=8, out_channels=8)
    g = torch.Generator().manual_seed(seed)
    for m in bb.modules():  # non-trivial batch norm, like a trained network
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2)
    return FewShotModel(bb, {"protonet": ProtoNet()}, SPEC).eval()


def _images(folder, n, size=(60, 45)):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        p = folder / f"img{i:03d}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
    return paths


def _reference(model, paths):
    x = torch.from_numpy(np.stack([load_for_model(p, model.input_spec) for p in paths]))
    with torch.no_grad():
        return model.features(x).numpy()


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_features_match_the_model(tmp_path, backend, onnx_dir):
    model = _model()
    paths = _images(tmp_path, 7)
    emb = Embedder(model, device="cpu", batch_size=3, backend=backend, onnx_dir=onnx_dir)
    res = emb.embed_paths(paths)
    assert emb.backend == backend
    assert res.paths == paths and not res.problems
    np.testing.assert_allclose(res.features, _reference(model, paths), rtol=1e-4, atol=1e-5)


def test_bad_files_are_reported_and_skipped(tmp_path, onnx_dir):
    good = _images(tmp_path, 3)
    (tmp_path / "notes.jpg").write_text("not a picture")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(open(good[1], "rb").read()[:200])
    (tmp_path / "empty.png").write_bytes(b"")
    bad = [str(tmp_path / "notes.jpg"), str(truncated), str(tmp_path / "empty.png"),
           str(tmp_path / "gone.jpg")]
    emb = Embedder(_model(), device="cpu", batch_size=2, onnx_dir=onnx_dir)
    res = emb.embed_paths(bad[:2] + good + bad[2:])
    assert res.paths == good
    reasons = {p.path: p.reason for p in res.problems}
    assert set(reasons) == set(bad)
    assert reasons[str(tmp_path / "gone.jpg")] == "file not found"
    assert "empty" in reasons[str(tmp_path / "empty.png")]
    assert all(reasons.values())


def test_second_run_comes_from_the_cache(tmp_path, onnx_dir):
    model = _model()
    paths = _images(tmp_path, 5)
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    first = Embedder(model, device="cpu", batch_size=2, cache=cache, onnx_dir=onnx_dir)
    r1 = first.embed_paths(paths)
    again = Embedder(model, device="cpu", batch_size=2, cache=cache, onnx_dir=onnx_dir)
    batches = list(again.iter_embed(paths))
    assert all(b.from_cache for b in batches)
    assert again.backend is None  # nothing needed inference: no backend was even built
    got = {p: f for b in batches for p, f in zip(b.paths, b.features)}
    np.testing.assert_array_equal(np.stack([got[p] for p in paths]), r1.features)
    # an edited file is embedded again, the others still come from the cache
    Image.new("RGB", (50, 50), (200, 10, 10)).save(paths[1])
    batches = list(again.iter_embed(paths))
    fresh = [p for b in batches if not b.from_cache for p in b.paths]
    assert fresh == [paths[1]]
    np.testing.assert_allclose(
        [f for b in batches for p, f in zip(b.paths, b.features) if p == paths[1]][0],
        _reference(model, [paths[1]])[0], rtol=1e-4, atol=1e-5)


def test_a_broken_cache_does_not_stop_embedding(tmp_path, onnx_dir):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.close()  # every read and write now fails
    paths = _images(tmp_path, 3)
    res = Embedder(_model(), device="cpu", cache=cache, onnx_dir=onnx_dir).embed_paths(paths)
    assert res.paths == paths


def test_cancel_after_first_batch_stops_production(tmp_path, onnx_dir):
    paths = _images(tmp_path, 40)
    emb = Embedder(_model(), device="cpu", batch_size=4, onnx_dir=onnx_dir)
    cancel = threading.Event()
    seen = []
    with pytest.raises(Cancelled):
        for batch in emb.iter_embed(paths, cancel=cancel):
            seen.append(batch)
            cancel.set()
    assert len(seen) == 1 and len(seen[0].paths) == 4


def test_cancel_from_progress_callback_and_before_start(tmp_path, onnx_dir):
    paths = _images(tmp_path, 20)
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    emb = Embedder(_model(), device="cpu", batch_size=5, cache=cache, onnx_dir=onnx_dir)
    cancel = threading.Event()
    calls = []

    def progress(done, total):
        calls.append(done)
        cancel.set()

    with pytest.raises(Cancelled):
        emb.embed_paths(paths, cancel=cancel, progress=progress)
    assert calls == [5]
    assert cache.count() == 5  # finished work was kept
    with pytest.raises(Cancelled):
        next(emb.iter_embed(paths, cancel=cancel))  # already cancelled: nothing at all


def test_cancel_while_a_batch_is_decoding(tmp_path, onnx_dir):
    """One huge batch: cancelling from another thread ends it without finishing the batch."""
    paths = _images(tmp_path, 60, size=(400, 300))
    emb = Embedder(_model(), device="cpu", batch_size=1000, workers=1, onnx_dir=onnx_dir)
    cancel = threading.Event()
    decoded = []
    real = emb._decode

    def decode_and_cancel(path):
        decoded.append(path)
        if len(decoded) == 3:
            cancel.set()
        return real(path)

    emb._decode = decode_and_cancel
    with pytest.raises(Cancelled):
        list(emb.iter_embed(paths, cancel=cancel))
    assert len(decoded) < len(paths)


def test_cancel_during_inference_of_a_big_batch(tmp_path, onnx_dir):
    """Cancelled while ONNX Runtime works through a 40-image batch: it stops between
    runs instead of finishing the batch, and nothing is yielded or cached."""
    paths = _images(tmp_path, 40)
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    emb = Embedder(_model(), device="cpu", batch_size=40, cache=cache, onnx_dir=onnx_dir)
    runner = emb.runner()
    assert emb.backend == "onnxruntime"
    runner.run_batch = 4
    cancel = threading.Event()
    runs = []
    real_run = runner.session.run

    def run_and_cancel(*a, **k):
        runs.append(1)
        if len(runs) == 2:
            cancel.set()
        return real_run(*a, **k)

    runner.session = type("S", (), {"run": staticmethod(run_and_cancel)})()
    with pytest.raises(Cancelled):
        list(emb.iter_embed(paths, cancel=cancel))
    assert len(runs) == 2  # 2 of the 10 runs, not all of them
    assert cache.count() == 0


def test_auto_backend_falls_back_with_a_reason(tmp_path, onnx_dir):
    model = FewShotModel(Identity((1, 28, 28)), {"protonet": ProtoNet()}, OMNIGLOT_INPUT)
    rng = np.random.default_rng(1)
    p = tmp_path / "a.png"
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(p)
    emb = Embedder(model, device="cpu", onnx_dir=onnx_dir)
    res = emb.embed_paths([p])
    assert emb.backend == "torch"
    assert "ONNX Runtime not used" in emb.describe() and "identity" in emb.describe()
    assert res.features.shape == (1, 28 * 28)


def test_auto_backend_on_cpu_is_onnxruntime(tmp_path, onnx_dir):
    pytest.importorskip("onnxruntime")
    emb = Embedder(_model(), device="cpu", onnx_dir=onnx_dir)
    emb.embed_paths(_images(tmp_path, 2))
    assert emb.backend == "onnxruntime" and "ONNX Runtime" in emb.describe()


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        Embedder(_model(), backend="tensorflow")
