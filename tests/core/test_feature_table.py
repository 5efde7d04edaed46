"""The session's feature table keeps bfloat16 rows: half the memory, float32 back out, and
scoring over it gives the labels scoring over float32 gives."""
import numpy as np
import pytest
import torch

from app.core.jobs import FeatureTable, from_bf16, to_bf16
from app.core.learners import ProtoNet
from app.core.scoring import as_tensor, predict


def test_bf16_round_trip_is_nearest_even_and_exact_on_representable_values():
    x = np.array([1.0, -2.5, 0.0, 3.0e38, 1e-30, 1.00390625, 1.01171875], np.float32)
    back = from_bf16(to_bf16(x))
    assert back.dtype == np.float32
    assert back[:5].tolist() == pytest.approx(x[:5].tolist(), rel=2 ** -8)
    # halfway cases round to even: 1 + 2^-8 -> 1.0, 1 + 3 * 2^-8 -> 1 + 2^-6
    assert back[5] == 1.0 and back[6] == np.float32(1.015625)
    # the same bits torch's own rounding gives
    t = torch.from_numpy(x).bfloat16().view(torch.int16).numpy().view(np.uint16)
    assert (to_bf16(x) == t).all()


def test_table_stores_half_the_bytes_and_gives_float32_rows():
    rng = np.random.default_rng(0)
    feats = rng.random((300, 64), dtype=np.float32)
    table = FeatureTable()
    table.add([f"p{i}" for i in range(300)], feats)
    assert table.matrix().dtype == np.uint16 and table.matrix().nbytes == 300 * 64 * 2
    paths, got = table.gather(["p5", "missing", "p7"])
    assert paths == ["p5", "p7"] and got.dtype == np.float32
    assert np.allclose(got, feats[[5, 7]], rtol=2 ** -8)
    assert np.allclose(table.get("p9"), feats[9], rtol=2 ** -8)
    t = as_tensor(table.matrix())
    assert t.dtype == torch.bfloat16 and t.shape == (300, 64)


def test_scoring_the_bf16_table_matches_float32_scoring():
    rng = np.random.default_rng(1)
    centres = rng.random((4, 128), dtype=np.float32) * 3
    labels = rng.integers(0, 4, 2000)
    feats = centres[labels] + rng.random((2000, 128), dtype=np.float32)
    table = FeatureTable()
    table.add([str(i) for i in range(2000)], feats)
    adapted = ProtoNet().fit(torch.from_numpy(centres), torch.arange(4))
    rows = np.arange(0, 2000, 3)
    l16, c16 = predict(adapted, table.matrix(), rows=rows)
    l32, c32 = predict(adapted, feats, rows=rows)
    assert (l16 == labels[rows]).mean() > 0.95
    assert (l16 == l32).mean() > 0.995 and np.abs(c16 - c32).max() < 1e-2


def test_a_reserved_table_fills_one_matrix_without_doubling():
    table = FeatureTable()
    table.reserve(5000)
    feats = np.ones((100, 8), np.float32)
    table.add([f"a{i}" for i in range(100)], feats)
    buf = table._buf
    assert buf.shape == (5000, 8)
    for k in range(1, 49):
        table.add([f"b{k}-{i}" for i in range(100)], feats)
    assert table._buf is buf and len(table) == 4900    # never re-allocated
    table.add([f"c{i}" for i in range(200)], np.ones((200, 8), np.float32))  # past it: grows
    assert table._buf.shape[0] >= 5100 and len(table) == 5100
