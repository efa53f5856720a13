"""The agreement score on constructed sets of names, embedded by the offline all-MiniLM-L6-v2."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.nameability.agreement import agreement_scores, nearest_other
from protocols.nameability.embeddings import EmbeddingCache, encode

VOCABULARY = (
    "dog wheel cloud spiral window grass metal fur stripes water face text circle sky tree brick car bird "
    "leaf rope fire ice sand glass eye hand road mountain flower shadow light wood stone cat boat chair "
    "lamp shoe dots grid curve blue red green yellow texture corner edge hole net feather"
).split()
SYNONYMS = [
    ["dog", "puppy", "canine", "hound"],
    ["car", "automobile", "vehicle", "sedan"],
    ["water", "sea", "ocean", "waves"],
    ["tree", "forest", "woods", "trees"],
    ["stripes", "striped", "lines", "bands"],
    ["fire", "flames", "blaze", "burning"],
]


def embedded(names_by_unit: dict[int, list[str]]) -> dict[int, np.ndarray]:
    return {unit: encode(names) for unit, names in names_by_unit.items()}


def test_identical_names_score_one():
    names = {unit: [word] * 5 for unit, word in enumerate(["dog", "wheel", "cloud", "spiral", "window"])}
    scores = agreement_scores(embedded(names))
    assert set(scores) == set(names) and all(score == pytest.approx(1.0, abs=1e-5) for score in scores.values())


def test_names_drawn_at_random_from_a_vocabulary_score_near_zero():
    rng = np.random.default_rng(0)
    names = {unit: list(rng.choice(VOCABULARY, size=5)) for unit in range(60)}
    scores = agreement_scores(embedded(names))
    assert abs(np.mean(list(scores.values()))) < 0.1


def test_synonyms_score_between_random_and_identical():
    scores = agreement_scores(embedded(dict(enumerate(SYNONYMS))))
    assert 0.2 < np.mean(list(scores.values())) < 0.9


def test_a_unit_with_one_name_has_no_score():
    vectors = encode(["dog", "puppy", "car"])
    scores = agreement_scores({1: vectors[:2], 2: vectors[2:]})
    assert isinstance(scores[1], float) and scores[2] is None


def test_the_score_matches_the_mean_over_every_pair():
    rng = np.random.default_rng(1)
    names = {unit: list(rng.choice(VOCABULARY, size=int(rng.integers(2, 6)))) for unit in range(8)}
    vectors = embedded(names)
    rows = [(unit, v) for unit, vs in vectors.items() for v in vs]
    across = np.mean([a @ b for i, (u, a) in enumerate(rows) for j, (w, b) in enumerate(rows) if u != w])
    for unit, vs in vectors.items():
        within = np.mean([vs[i] @ vs[j] for i in range(len(vs)) for j in range(len(vs)) if i != j])
        assert agreement_scores(vectors)[unit] == pytest.approx((within - across) / (1 - across), abs=1e-5)


def test_the_nearest_other_name_is_another_participants_name_of_another_unit():
    vectors = encode(["striped cat", "striped cat", "striped cat", "rocket"])
    units, authors = np.array([1, 2, 1, 3]), np.array(["a", "b", "c", "d"])
    # Name 0 repeats name 1 (another unit, another author), and so does name 2; name 1 repeats name 0; name 3 is
    # nearest to some name of another unit, far from it.
    nearest, similarity = nearest_other(vectors, units, authors, vectors, units, authors)
    assert nearest[:3].tolist() == [1, 0, 1] and similarity[:3] == pytest.approx([1, 1, 1], abs=1e-5)
    assert similarity[3] < 0.95
    same_author = np.array(["a", "a", "a", "d"])
    nearest, similarity = nearest_other(vectors, units, same_author, vectors, units, same_author)
    assert nearest[:3].tolist() == [3, 3, 3] and (similarity < 0.95).all()


def test_the_cache_encodes_each_distinct_text_once_and_keeps_it(tmp_path):
    cache = EmbeddingCache(tmp_path)
    first = cache.embed(["dog", "dog", "car"])
    assert cache.encoded == 2 and first.shape == (3, 384)
    again = EmbeddingCache(tmp_path)
    assert np.allclose(again.embed(["car", "dog"]), first[[2, 0]]) and again.encoded == 0
