"""The persistent embedding cache: survives restarts, notices changed files, stays
consistent when two processes write at once or one is killed mid-write."""
import multiprocessing as mp
import os
import time

import numpy as np

from app.core.cache import EmbeddingCache, FileKey

DIM = 16
BATCH = 10


def _vec(i: int) -> np.ndarray:
    return np.arange(DIM, dtype=np.float32) + 1000.0 * i


def _key(i: int, who: str = "a") -> FileKey:
    return FileKey(f"/photos/{who}/{i:06d}.jpg", 1000 + i, 1_700_000_000_000_000_000 + i)


def _writer(db: str, who: str, batches: int) -> None:
    """Child process: write ``batches`` transactions of BATCH vectors each (forever if < 0)."""
    cache = EmbeddingCache(db)
    b = 0
    while batches < 0 or b < batches:
        items = [(_key(i, who), _vec(i)) for i in range(b * BATCH, (b + 1) * BATCH)]
        cache.put_many("m", items)
        b += 1
    cache.close()


def _file(tmp_path, name="x.jpg", data=b"abc"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_survives_restart(tmp_path):
    db = tmp_path / "c.sqlite"
    keys = [_key(i) for i in range(50)]
    with EmbeddingCache(db) as c:
        c.put_many("m", [(k, _vec(i)) for i, k in enumerate(keys)])
    with EmbeddingCache(db) as c:  # a new process would see the same
        got = c.get_many("m", keys)
        assert len(got) == 50
        for i, k in enumerate(keys):
            np.testing.assert_array_equal(got[k], _vec(i))
        assert c.get_many("other-model", keys) == {}
        assert c.count("m") == 50


def test_changed_size_or_mtime_misses(tmp_path):
    f = _file(tmp_path)
    with EmbeddingCache(tmp_path / "c.sqlite") as c:
        k = FileKey.of(f)
        assert os.path.isabs(k.path)
        c.put_many("m", [(k, _vec(1))])
        assert k in c.get_many("m", [FileKey.of(f)])
        f.write_bytes(b"abcd")                        # size changes
        assert c.get_many("m", [FileKey.of(f)]) == {}
        c.put_many("m", [(FileKey.of(f), _vec(2))])
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same size, touched
        assert c.get_many("m", [FileKey.of(f)]) == {}
        # the re-embedded vector replaces the old row instead of piling up
        c.put_many("m", [(FileKey.of(f), _vec(3))])
        assert c.count("m") == 1
        np.testing.assert_array_equal(c.get_many("m", [FileKey.of(f)])[FileKey.of(f)], _vec(3))


def test_many_keys_in_one_lookup(tmp_path):
    with EmbeddingCache(tmp_path / "c.sqlite") as c:
        keys = [_key(i) for i in range(2500)]   # more than SQLite's variable limit
        c.put_many("m", [(k, _vec(i)) for i, k in enumerate(keys)])
        got = c.get_many("m", keys)
        assert len(got) == 2500
        np.testing.assert_array_equal(got[keys[2222]], _vec(2222))


def test_two_processes_write_at_once(tmp_path):
    db = str(tmp_path / "c.sqlite")
    EmbeddingCache(db).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db, who, 20)) for who in ("a", "b")]
    for p in procs:
        p.start()
    with EmbeddingCache(db) as reader:  # this process reads while they write
        for _ in range(20):
            reader.get_many("m", [_key(i, "a") for i in range(200)])
            time.sleep(0.01)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with EmbeddingCache(db) as c:
        assert c.integrity_ok()
        assert c.count("m") == 2 * 20 * BATCH
        for who in ("a", "b"):
            got = c.get_many("m", [_key(i, who) for i in range(20 * BATCH)])
            assert len(got) == 20 * BATCH
            for i in (0, 77, 199):
                np.testing.assert_array_equal(got[_key(i, who)], _vec(i))


def test_killed_writer_leaves_whole_batches(tmp_path):
    db = str(tmp_path / "c.sqlite")
    EmbeddingCache(db).close()
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_writer, args=(db, "a", -1))
    p.start()
    with EmbeddingCache(db) as c:
        deadline = time.monotonic() + 60
        while c.count("m") < 5 * BATCH and time.monotonic() < deadline:
            time.sleep(0.02)
    p.kill()  # no clean shutdown: mid-transaction at any moment
    p.join(30)
    with EmbeddingCache(db) as c:
        assert c.integrity_ok()
        n = c.count("m")
        assert n >= 5 * BATCH and n % BATCH == 0  # transactions are all or nothing
        got = c.get_many("m", [_key(i) for i in range(n)])
        assert len(got) == n
        for i in range(n):
            np.testing.assert_array_equal(got[_key(i)], _vec(i))
        c.put_many("m", [(_key(n), _vec(n))])  # still writable
        assert c.count("m") == n + 1


def test_unreadable_cache_file_is_replaced(tmp_path, caplog):
    db = tmp_path / "c.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    with EmbeddingCache(db) as c:
        assert c.count() == 0
        c.put_many("m", [(_key(1), _vec(1))])
        assert c.count("m") == 1
    assert (tmp_path / "c.sqlite.corrupt").exists()
    assert "unreadable" in caplog.text


def test_default_location_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_CACHE_DIR", str(tmp_path / "cachedir"))
    with EmbeddingCache() as c:
        c.put_many("m", [(_key(1), _vec(1))])
        assert c.path.parent == tmp_path / "cachedir"
    assert (tmp_path / "cachedir" / "embeddings.sqlite").is_file()
