from pathlib import Path

import numpy as np
import pytest

from app.training.data import DatasetError, build_items, discover_classes
from app.training.sampler import EpisodeSampler


@pytest.fixture
def table(tiny_data: Path):
    return build_items(str(tiny_data), discover_classes(tiny_data), rotations=True, min_images=5)


@pytest.mark.parametrize("way,shot,query", [(5, 1, 3), (3, 2, 4), (20, 1, 1)])
def test_episode_has_the_asked_classes_and_images(table, way: int, shot: int, query: int) -> None:
    sampler = EpisodeSampler(table, way, shot, query, seed=3)
    for i in range(10):
        ep = sampler.episode(i)
        assert len(set(ep.classes.tolist())) == way
        assert len(ep.support) == way * shot and len(ep.query) == way * query
        assert not set(ep.support.tolist()) & set(ep.query.tolist())
        for label, cls in enumerate(ep.classes):
            s = ep.support[ep.support_labels == label]
            q = ep.query[ep.query_labels == label]
            assert len(s) == shot and len(q) == query
            assert set(table.item_class[s].tolist()) == {cls}
            assert set(table.item_class[q].tolist()) == {cls}


def test_episodes_are_reproducible_with_a_seed(table) -> None:
    a = EpisodeSampler(table, 5, 1, 3, seed=7)
    b = EpisodeSampler(table, 5, 1, 3, seed=7)
    c = EpisodeSampler(table, 5, 1, 3, seed=8)
    for i in (0, 1, 50):
        assert np.array_equal(a.episode(i).items, b.episode(i).items)
        assert np.array_equal(a.episode(i).classes, b.episode(i).classes)
    assert any(not np.array_equal(a.episode(i).items, c.episode(i).items) for i in range(5))
    assert not np.array_equal(a.episode(0).items, a.episode(1).items)


def test_more_ways_than_classes_is_a_clear_error(tiny_data: Path) -> None:
    table = build_items(str(tiny_data), discover_classes(tiny_data), min_images=5)
    assert table.num_classes == 8
    with pytest.raises(DatasetError, match="9-way.*only 8 usable classes.*1 skipped"):
        EpisodeSampler(table, 9, 1, 4)


def test_realistic_pools_dirichlet_rest_and_distractors(tiny_data: Path) -> None:
    table = build_items(str(tiny_data), discover_classes(tiny_data), min_images=2)
    way, shot, query = 3, 1, 4
    d = EpisodeSampler(table, way, shot, query, seed=1, pool="dirichlet")
    counts = []
    for i in range(20):
        ep = d.episode(i)
        per = np.bincount(ep.query_labels, minlength=way)
        counts.append(per)
        for label, cls in enumerate(ep.classes):  # each class's pool is capped by what it has
            assert per[label] <= len(table.class_items[cls]) - shot
        assert not set(ep.support.tolist()) & set(ep.query.tolist())
    assert len({tuple(c) for c in counts}) > 5  # proportions vary episode to episode
    rest = EpisodeSampler(table, way, shot, query, seed=1, pool="rest").episode(0)
    for label, cls in enumerate(rest.classes):  # the whole rest of each class
        assert (rest.query_labels == label).sum() == len(table.class_items[cls]) - shot
    noisy = EpisodeSampler(table, way, shot, query, seed=1, pool="rest", distractors=5).episode(0)
    extra = noisy.query[noisy.query_labels == -1]
    assert len(extra) == 5 and not set(table.item_class[extra].tolist()) & set(noisy.classes.tolist())
    assert np.array_equal(noisy.query[noisy.query_labels >= 0], rest.query)
    with pytest.raises(DatasetError, match="--pool"):
        EpisodeSampler(table, way, shot, query, pool="uneven")


def test_uneven_examples_1_to_shot_a_class(tiny_data: Path) -> None:
    table = build_items(str(tiny_data), discover_classes(tiny_data), min_images=5)
    way, shot, query = 4, 3, 1
    for pool in ("balanced", "rest"):
        even = EpisodeSampler(table, way, shot, query, seed=2, pool=pool)
        uneven = EpisodeSampler(table, way, shot, query, seed=2, pool=pool, examples="uneven")
        seen = set()
        for i in range(12):
            a, b = even.episode(i), uneven.episode(i)
            assert np.array_equal(np.bincount(a.support_labels), [shot] * way)
            per = np.bincount(b.support_labels, minlength=way)
            assert per.min() >= 1 and per.max() <= shot
            seen.add(tuple(per))
            assert not set(b.support.tolist()) & set(b.query.tolist())
            assert np.array_equal(table.item_class[b.support], b.classes[b.support_labels])
            if pool == "rest":  # every image not an example is in the pool
                for label, cls in enumerate(b.classes):
                    assert (b.query_labels == label).sum() == len(table.class_items[cls]) - per[label]
        assert len(seen) > 3
    with pytest.raises(DatasetError, match="--examples"):
        EpisodeSampler(table, way, shot, query, examples="some")
