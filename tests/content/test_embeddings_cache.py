"""Text embeddings: real MiniLM (packaged, offline), unit norm, on-disk cache keyed by model + text hash."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from recsys.models import embeddings as E


def test_encode_caches_and_reencodes_only_changed_texts(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    texts = ["Stainless steel kettle", "Garden hose", "Stainless steel kettle", "Board game for families"]
    with caplog.at_level(logging.INFO, logger="recsys.models.embeddings"):
        first, s1 = E.encode(texts)
    assert first.shape == (4, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(first[0], first[2])  # duplicates are encoded once
    assert (s1.encoded, s1.cached) == (3, 0)
    assert "0 cache hits, 3 misses" in caplog.text
    assert list((tmp_path / "cache" / E.DEFAULT_MODEL).glob("shard-*.npz"))

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recsys.models.embeddings"):
        again, s2 = E.encode(texts)
    assert (s2.encoded, s2.cached) == (0, 3)
    assert "3 cache hits, 0 misses" in caplog.text
    np.testing.assert_array_equal(again, first)

    changed = [texts[0], "Garden hose, 30 m"]
    vecs, s3 = E.encode(changed)
    assert (s3.encoded, s3.cached) == (1, 1)
    np.testing.assert_array_equal(vecs[0], first[0])
    assert not np.allclose(vecs[1], first[1])


def test_cache_is_per_model_and_can_be_off(tmp_path):
    a = E.EmbeddingCache(E.DEFAULT_MODEL, tmp_path)
    b = E.EmbeddingCache(str(tmp_path / "some-local-model"), tmp_path)
    assert a.folder != b.folder
    keys = E.text_keys(["x"])
    a.put(keys, np.ones((1, 4), np.float32))
    assert a.get(keys)[0].all() and not b.get(keys)[0].any()
    _, stats = E.encode(["uncached text"], cache=False, cache_dir=tmp_path)
    assert stats.encoded == 1 and not a.get(E.text_keys(["uncached text"]))[0].any()


def test_cache_compacts_many_shards_without_losing_vectors(tmp_path):
    cache = E.EmbeddingCache(E.DEFAULT_MODEL, tmp_path)
    texts = [f"text {i}" for i in range(E.MAX_SHARDS + 3)]
    vectors = np.arange(len(texts) * 4, dtype=np.float32).reshape(-1, 4)
    for i, t in enumerate(texts):
        cache.put(E.text_keys([t]), vectors[i:i + 1])
    assert len(list(cache.folder.glob("shard-*.npz"))) <= E.MAX_SHARDS
    found, got = cache.get(E.text_keys(texts[::-1]))
    assert found.all()
    np.testing.assert_array_equal(got, vectors[::-1])


def test_item_texts_combine_title_text_and_category():
    items = pd.DataFrame({"item_id": [1, 2, 3], "title": ["Toy Story (1995)", "Kettle", "Hose"],
                          "text": ["Adventure, Animation", "kettle for kitchen lovers; category kitchen", None],
                          "category": ["Adventure", "kitchen", "garden"]})
    assert E.item_texts(items) == ["Toy Story (1995). Adventure, Animation",
                                   "Kettle. kettle for kitchen lovers; category kitchen", "Hose. garden"]


def test_unknown_model_names_the_key():
    from recsys.errors import ConfigError

    with pytest.raises(ConfigError, match="embedding_model='no-such-model'"):
        E.resolve_model_path("no-such-model")


def test_encoder_is_loaded_once_per_process():
    assert E.load_encoder() is E.load_encoder()
