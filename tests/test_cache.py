"""The embedding cache: one shard per batch, entries of any shape, damaged shards detected and recomputed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graft._cache import EmbeddingCache, count_entries


def test_one_shard_per_batch_and_round_trip(tmp_path: Path) -> None:
    cache = EmbeddingCache("k", root=tmp_path)
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    cache.put_many([f"h{i}" for i in range(50)], vectors)
    assert len(list(tmp_path.rglob("*.npy"))) == 1 and count_entries(tmp_path) == 50
    again = EmbeddingCache("k", root=tmp_path)  # a fresh process reads the same shard
    got = again.get_many(["h3", "missing", "h49"])
    assert np.array_equal(got[0], vectors[3]) and got[1] is None and np.array_equal(got[2], vectors[49])
    assert again.contains("h0") and not again.contains("missing")
    assert (again.hits, again.misses) == (2, 1)


def test_entries_of_different_shapes(tmp_path: Path) -> None:
    cache = EmbeddingCache("k", root=tmp_path)
    words = [np.full((n, 3), n, np.float32) for n in (1, 4, 2)]  # per-sentence word features
    cache.put_many(["a", "b", "c"], words)
    got = EmbeddingCache("k", root=tmp_path).get_many(["c", "a", "b"])
    assert [g.shape for g in got] == [(2, 3), (1, 3), (4, 3)]
    assert np.array_equal(got[0], words[2]) and np.array_equal(got[2], words[1])


def test_damaged_or_half_written_shards_are_never_served(tmp_path: Path) -> None:
    cache = EmbeddingCache("k", root=tmp_path)
    cache.put_many(["a", "b"], np.ones((2, 4), np.float32))
    cache.put_many(["c"], np.ones((1, 4), np.float32))
    npy = sorted(tmp_path.rglob("*.npy"), key=lambda p: p.stat().st_size)
    big = npy[-1]
    data = bytearray(big.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in a value
    big.write_bytes(bytes(data))
    (tmp_path / "embeddings" / "k" / "orphan.npy").write_bytes(b"no json: a crash before the shard was complete")
    fresh = EmbeddingCache("k", root=tmp_path)
    assert fresh.get_many(["a", "b", "c"])[:2] == [None, None]  # checksum mismatch: recomputed, not served
    assert fresh.get_many(["c"])[0] is not None
    assert not fresh.contains("a")
    fresh.put_many(["a", "b"], np.zeros((2, 4), np.float32))  # recomputed values win from now on
    assert np.array_equal(EmbeddingCache("k", root=tmp_path).get_many(["a"])[0], np.zeros(4, np.float32))


def test_disabled_cache_stores_nothing(tmp_path: Path) -> None:
    cache = EmbeddingCache("k", root=tmp_path, enabled=False)
    cache.put_many(["a"], np.ones((1, 2), np.float32))
    assert cache.get_many(["a"]) == [None] and not list(tmp_path.rglob("*"))
