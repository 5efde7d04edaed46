"""Label these next (``app.core.suggest``) on small generated folders."""
import numpy as np
import pytest

from app.core.suggest import suggest


def _folder(seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.random((4, 32)) * 4
    labels = rng.integers(0, 4, 400)
    feats = (centres[labels] + rng.random((400, 32))).astype(np.float32)
    return feats, labels


def test_picks_unsure_unlabelled_images_and_skips_near_duplicates():
    feats, _ = _folder()
    conf = np.full(400, 0.99)
    conf[[10, 11, 12, 13]] = 0.3          # four unsure images...
    feats[11] = feats[10] + 1e-4          # ...two of them the same picture
    labelled = np.zeros(400, bool)
    labelled[13] = True                   # an example already
    picks = suggest(feats, conf, labelled, 3)
    assert len(picks) == 3 and 13 not in picks
    assert 12 in picks and len({10, 11} & set(picks.tolist())) == 1
    # plain least-confident ranking takes both duplicates
    lc = suggest(feats, conf, labelled, 3, "least_confident")
    assert set(lc.tolist()) == {10, 11, 12}


def test_deterministic_bounded_and_accepts_a_row_function():
    feats, _ = _folder(1)
    conf = 0.6 + 0.4 * np.random.default_rng(2).random(400)
    conf[5] = np.nan                      # not classified yet: least sure
    labelled = np.zeros(400, bool)
    a = suggest(feats, conf, labelled, 5)
    b = suggest(lambda idx: feats[idx], conf, labelled, 5)
    assert a.tolist() == b.tolist() and 5 in a.tolist() and len(set(a.tolist())) == 5
    r = suggest(feats, conf, labelled, 5, "random", seed=3)
    assert r.tolist() == suggest(feats, conf, labelled, 5, "random", seed=3).tolist()
    assert len(suggest(feats, conf, np.ones(400, bool), 5)) == 0
    assert len(suggest(feats[:3], conf[:3], np.zeros(3, bool), 5)) == 3
    with pytest.raises(ValueError, match="unknown strategy"):
        suggest(feats, conf, labelled, 5, "nope")
