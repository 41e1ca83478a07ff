"""Near-duplicate recall/false positives on planted near-duplicates, exact duplicates, keep rule,
the S-curve, and the `data dedup` command's clusters.jsonl."""

import itertools
import json
import random
import tracemalloc

import numpy as np
import pytest

from data_helpers import prose, write_jsonl
from scratchllm.cli import main
from scratchllm.data.dedup import DedupConfig, Deduplicator, fingerprint
from scratchllm.data.minhash import MinHasher, choose_bands, estimate_jaccard, s_curve


def shingle_set(text, k=5):
    toks = text.lower().replace(".", " ").split()
    return {tuple(toks[i:i + k]) for i in range(len(toks) - k + 1)}


def jaccard(a, b):
    sa, sb = shingle_set(a), shingle_set(b)
    return len(sa & sb) / len(sa | sb)


def edit(text, n_edits, rng):
    words = text.split()
    for _ in range(n_edits):
        i = rng.randrange(len(words))
        op = rng.random()
        if op < 0.4:
            words[i] = "changed"
        elif op < 0.7:
            words.insert(i, "inserted")
        else:
            del words[i]
    return " ".join(words)


def run_index(texts, cfg):
    index = Deduplicator(cfg)
    for i, t in enumerate(texts):
        index.add(f"d{i}", len(t), *fingerprint(t, cfg, index.hasher))
    return index.finish()


@pytest.fixture(scope="module")
def planted():
    """150 originals, 100 of them with a near-duplicate (1-3 small edits), 20 exact copies."""
    rng = random.Random(0)
    base = [prose(rng.randint(150, 400), 1000 + i) for i in range(150)]
    texts = list(base)
    for i in range(100):
        texts.append(edit(base[i], rng.randint(1, 3), rng))
    for i in range(20):
        texts.append(base[100 + i])
    return texts


def test_recall_and_false_positive_rate_at_jaccard_08(planted):
    result = run_index(planted, DedupConfig(threshold=0.8))
    cluster_of = {}
    for c, cl in enumerate(result.clusters):
        for doc_id in cl.ids:
            cluster_of[doc_id] = c
    same = lambda i, j: f"d{i}" in cluster_of and cluster_of.get(f"d{i}") == cluster_of.get(f"d{j}")
    sets = [shingle_set(t) for t in planted]
    pos = neg = tp = fp = 0
    for i, j in itertools.combinations(range(len(planted)), 2):
        if len(sets[i] & sets[j]) >= 0.8 * len(sets[i] | sets[j]):
            pos += 1
            tp += same(i, j)
        else:
            neg += 1
            fp += same(i, j)
    assert pos >= 110  # the planted pairs, nearly all above 0.8 by construction
    assert tp / pos >= 0.95, f"recall {tp / pos:.3f}"
    assert fp / neg <= 0.01, f"false-positive rate {fp / neg:.4f}"


def test_exact_duplicates_always_caught(planted):
    for near in (True, False):
        result = run_index(planted, DedupConfig(near=near))
        exact = [c for c in result.clusters if c.kind == "exact"]
        assert {tuple(sorted(c.ids)) for c in exact} >= {tuple(sorted([f"d{100 + i}", f"d{250 + i}"])) for i in range(20)}


def test_exact_key_ignores_case_and_whitespace():
    result = run_index(["Hello   World\n again " + prose(60, 1), "hello world again " + prose(60, 1)],
                       DedupConfig(near=False))
    assert result.keep.count(True) == 1 and result.clusters[0].kind == "exact"


def test_keep_rule_is_longest_then_first():
    a = prose(300, 5)
    b = a + " One more sentence at the end of it."
    result = run_index([a, b, a], DedupConfig())
    assert result.keep == [False, True, False]
    assert result.clusters[0].kept == "d1"


def test_minhash_estimates_jaccard():
    rng = random.Random(3)
    m = MinHasher(256, 5, seed=0)
    for k in range(10):
        a = prose(600, 50 + k)
        b = edit(a, rng.randint(5, 60), rng)
        assert abs(estimate_jaccard(m.signature(a), m.signature(b)) - jaccard(a, b)) < 0.12


def test_s_curve_and_band_choice():
    b, r = choose_bands(0.8, 128)
    assert b * r <= 128
    assert s_curve(0.95, b, r) > 0.99 and s_curve(0.5, b, r) < 0.01
    assert choose_bands(0.5, 128)[1] < r  # a lower threshold needs fewer rows per band
    np.testing.assert_allclose(s_curve(np.array([0.0, 1.0]), b, r), [0.0, 1.0])


def _index_bytes(texts) -> int:
    """Memory the index still holds after fingerprinting and adding `texts` (temporaries freed)."""
    d = Deduplicator(DedupConfig(threshold=0.8))
    fingerprint(texts[0], d.cfg, d.hasher)      # warm-up: one-time caches (regex, hash tables) are not the index
    tracemalloc.start()
    empty = tracemalloc.get_traced_memory()[0]
    for i, text in enumerate(texts):
        d.add(f"doc{i}", len(text), *fingerprint(text, d.cfg, d.hasher))
    held = tracemalloc.get_traced_memory()[0] - empty
    tracemalloc.stop()
    return held


def test_memory_is_per_document_not_per_size():
    # The module's claim: memory per document, whatever its length. 12 documents of 200 words and 12 of
    # 10,000 words (50x the text) must leave the index the same size: a few KB a document (measured
    # ~2.9 KB with the Python objects of the LSH buckets, more than the docstring's ~0.7 KB of raw data).
    small = _index_bytes([prose(200, i) for i in range(12)])
    big = _index_bytes([prose(10_000, 100 + i) for i in range(12)])
    assert small < 12 * 4096 and big < 12 * 4096
    assert abs(big - small) < 0.2 * small


def test_dedup_command_writes_clusters(tmp_path, planted):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": f"doc{i}", "text": t} for i, t in enumerate(planted[:20] + planted[:3])])
    assert main(["data", "dedup", "--input", str(src), "--threshold", "0.8", "--out", str(tmp_path / "out"),
                 "--workers", "1"]) == 0
    clusters = [json.loads(line) for line in open(tmp_path / "out" / "clusters.jsonl")]
    assert sorted(map(sorted, clusters)) == [["doc0", "doc20"], ["doc1", "doc21"], ["doc2", "doc22"]]
    kept = [json.loads(line)["id"] for line in open(tmp_path / "out" / "documents.jsonl")]
    assert len(kept) == 20
