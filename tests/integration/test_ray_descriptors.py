"""The descriptor search on a real two-node Ray cluster (search/distributed_vectors.py): after a
local `scan --mode thorough` (the SSCD student, a model shipped inside a package), `find_pairs`
and `find_groups` by the descriptors with runner="ray" equal the local ones, and the sharded
self-join and knn on the cluster equal the local vector search on those descriptors.

The cluster is the session's `cluster` fixture (ray_cluster.py)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed "
                                        "(pip install -e '.[ray]'; make test installs it)")

from lookalike.evaluation.transforms import EDITS, encode  # noqa: E402
from lookalike.index.store import open_index  # noqa: E402
from lookalike.sample import synthetic_picture  # noqa: E402
from lookalike.scan import scan  # noqa: E402
from lookalike.search import distributed_vectors, dupes, embed, vectors  # noqa: E402
from lookalike.search.dupes import find_groups, find_pairs  # noqa: E402

ORIGINALS = 18
PLANTED = ("copy", "jpeg70", "resize50", "grey", "blur", "brighter", "png", "mirror")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    """18 pictures and 12 edited copies."""
    pictures = tmp_path_factory.mktemp("ray-descriptors") / "pictures"
    pictures.mkdir()
    for seed in range(ORIGINALS):
        image = synthetic_picture(seed, (200, 150))
        (pictures / f"p{seed:02d}.jpg").write_bytes(encode(image, "JPEG", quality=90))
    for number in range(12):
        edit = PLANTED[number % len(PLANTED)]
        image = synthetic_picture(number, (200, 150))
        data, suffix = EDITS[edit](image, encode(image, "JPEG", quality=90))
        (pictures / f"copy{number:02d}-{edit}{suffix}").write_bytes(data)
    return pictures


@pytest.fixture(scope="module")
def thorough_index(pictures) -> Path:
    """The pictures scanned locally in the thorough mode."""
    from lookalike.errors import ModelError
    from lookalike.models.registry import resolve_model

    try:
        resolve_model("sscd-distilled")
    except ModelError as exc:  # an offline machine without the wheel in the cache
        pytest.skip(f"the SSCD student is not available here: {exc}")
    index = pictures.parent / "thorough.db"
    summary = scan([pictures], index_path=index, mode="thorough", workers=2)
    assert summary.scanned == ORIGINALS + 12 and summary.failed == 0
    return index


def test_descriptor_pairs_and_groups_on_ray_equal_the_local_ones(cluster, thorough_index,
                                                                 monkeypatch):
    knn_calls, real_knn = [], distributed_vectors.knn_ray
    monkeypatch.setattr(distributed_vectors, "knn_ray",
                        lambda *args, **kw: knn_calls.append(kw) or real_knn(*args, **kw))
    with open_index(thorough_index) as idx:
        local_pairs = find_pairs(idx, method="embed")
        local_groups = find_groups(idx, method="embed")
        local_thorough = find_groups(idx)  # the thorough mode's own rule (search/decide.py)
        stored = embed.load(idx, embed.index_spec(idx))
        # the first call joins the cluster itself (runners.ray._connect) and leaves it
        ray_pairs = find_pairs(idx, method="embed", runner="ray", ray_address=cluster)
        assert not ray.is_initialized()
        ray.init(address=cluster, log_to_driver=False, configure_logging=False)
        try:  # one connection for the rest: _connect sees it and keeps it
            ray_groups = find_groups(idx, method="embed", runner="ray", ray_address=cluster)
            assert not knn_calls
            ray_thorough = find_groups(idx, runner="ray", ray_address=cluster)
            assert knn_calls == [{"address": cluster}]  # its neighbours came from the cluster
            threshold = 0.5  # lower than the model's 0.75: more pairs to compare
            joined = distributed_vectors.self_join_ray(stored.vectors, threshold, cluster,
                                                       shards=3)
            near = distributed_vectors.knn_ray(stored.vectors, 11, cluster, shards=4)
            assert ray.is_initialized()
        finally:
            ray.shutdown()
    planted = {frozenset((f"p{n:02d}", f"copy{n:02d}-{PLANTED[n % len(PLANTED)]}"))
               for n in range(12)}
    found = {frozenset((Path(m.a).stem, Path(m.b).stem)) for m in local_pairs}
    assert len(planted & found) >= 8, found  # the descriptors find most planted copies
    assert ray_pairs == local_pairs
    assert ray_groups == local_groups
    assert ray_thorough == local_thorough and local_thorough
    local = vectors.self_join(stored.vectors, threshold)
    assert len(local.a) > len(local_pairs)
    for field in ("a", "b", "similarity"):
        np.testing.assert_array_equal(getattr(joined, field), getattr(local, field))
    flat = vectors.build(stored.vectors, "flat").knn(stored.vectors, 11)
    np.testing.assert_allclose(near.similarity, flat.similarity, atol=1e-6, rtol=0)
    assert (near.ids == flat.ids).mean() > 0.99


def test_the_cascade_proposals_on_ray_equal_the_local_ones(cluster, pictures, tmp_path):
    """The fast mode with local features and the shipped embedding (not a descriptor): the
    cascade's "auto" search asks each picture's nearest embeddings (embed.neighbour_pairs,
    here distributed_vectors.knn_ray) for proposals that local features check."""
    index = tmp_path / "cascade.db"
    scan([pictures], index_path=index, mode="fast", methods=["local", "embed"], workers=2)
    with open_index(index) as idx:
        assert embed.has_embeddings(idx) and not embed.is_descriptor(idx)
        local = find_pairs(idx)
        on_ray = find_pairs(idx, runner="ray", ray_address=cluster)
        stored = embed.load(idx, embed.index_spec(idx))
    assert len(local) >= 10, local
    assert on_ray == local
    # the proposals themselves (most are then refused by local features)
    want = embed.neighbour_pairs(stored, dupes.EMBED_NEIGHBOURS, dupes.EMBED_PROPOSE)
    got = embed.neighbour_pairs(stored, dupes.EMBED_NEIGHBOURS, dupes.EMBED_PROPOSE,
                                partial(distributed_vectors.knn_ray, address=cluster))
    assert len(want[0]) >= 20
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[2], want[2], atol=1e-6, rtol=0)
