"""The quality classifier: beats chance clearly on held-out documents of real text (WikiText-2
articles as the reference, Python documentation pages as the web side), lands near
scikit-learn's logistic regression on the same features (the oracle), saves and loads, and
filters by its threshold."""

import re

import numpy as np
import pytest

from data_helpers import prose
from web_pages import DATA, doc_pages
from scratchllm.data.stages import chunks
from scratchllm.data.quality import QualityConfig, QualityModel, accuracy, features, load_model, split_heldout, train
from scratchllm.data.web import html_document
from scratchllm.data.webrules import WebRules, screen
from scratchllm.errors import UserError

WIKI = [DATA / "eval" / "wikitext2_test.txt", DATA / "eval" / "wikitext2_valid.txt"]


def _wiki_articles(n):
    if not all(p.is_file() for p in WIKI):
        pytest.skip(f"{WIKI[0]} not found (the shared data sets)")
    raw = "".join(p.read_text(encoding="utf-8") for p in WIKI)
    # undo WikiText's tokenisation so the classifier cannot win on " @-@ " and " , " alone
    raw = raw.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".").replace("<unk>", "").replace("\n \n", "\n\n")
    raw = re.sub(r" ([.,;:!?)'])", r"\1", raw).replace("( ", "(")
    arts = [a.strip() for a in re.split(r"\n \= [^=\n]+ \= \n", raw) if len(a.split()) > 200]
    return [piece for a in arts for piece in chunks(a, 3000) if len(piece.split()) > 100][:n]


@pytest.fixture(scope="module")
def corpus():
    ref = _wiki_articles(120)
    pages = [html_document(p.read_bytes(), p.name).text for p in doc_pages(300)[::6]]
    web = [piece for t in pages for piece in chunks(t, 3000) if len(piece.split()) > 100][:120]
    n = min(len(ref), len(web))  # balanced: chance is 50%
    texts, labels = ref[:n] + web[:n], [1] * n + [0] * n
    tr, te = split_heldout(len(texts), 0.3, seed=0)
    return [texts[i] for i in tr], [labels[i] for i in tr], [texts[i] for i in te], [labels[i] for i in te]


def test_beats_chance_on_held_out_real_documents_and_matches_sklearn(corpus):
    xtr, ytr, xte, yte = corpus
    model = train(xtr, ytr, seed=0)
    ours = accuracy(model, xte, yte)
    majority = max(np.mean(yte), 1 - np.mean(yte))
    assert len(yte) >= 60 and ours > 0.9 and ours > majority + 0.3, (len(yte), ours, majority)
    sklearn = pytest.importorskip("sklearn.linear_model")
    from scipy.sparse import csr_matrix  # comes with scikit-learn

    def matrix(texts):
        rows = [features(t) for t in texts]
        indptr = np.cumsum([0] + [len(r[0]) for r in rows])
        return csr_matrix((np.concatenate([r[1] for r in rows]), np.concatenate([r[0] for r in rows]), indptr),
                          shape=(len(texts), len(model.weights)))

    oracle = sklearn.LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced").fit(matrix(xtr), ytr)
    theirs = oracle.score(matrix(xte), yte)
    assert ours >= theirs - 0.05, (ours, theirs)


def test_save_load_round_trip_and_bad_file(tmp_path):
    good = [prose(120, i) for i in range(30)]
    spam = [" ".join(["buy", "cheap", "pills", "now", "click", "here"] * 20) + f" {i}" for i in range(30)]
    model = train(good + spam, [1] * 30 + [0] * 30, epochs=3)
    model.heldout_accuracy, model.trained_on = 0.97, {"reference": 30, "web": 30}
    model.save(str(tmp_path / "q.safetensors"))
    back = load_model(str(tmp_path / "q.safetensors"))
    assert back.score(good[0]) == pytest.approx(model.score(good[0]), abs=1e-6)
    assert (back.heldout_accuracy, back.trained_on, back.ngrams) == (0.97, {"reference": 30, "web": 30}, 2)
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a quality model"):
        load_model(str(tmp_path / "junk.safetensors"))
    with pytest.raises(UserError, match="both reference"):
        train(good, [1] * 30)
    # as a filter: keep if score >= threshold
    rules = WebRules(quality=QualityConfig(enabled=True, model=str(tmp_path / "q.safetensors"), threshold=0.5))
    assert screen(good[1], "", None, rules)[1] is None
    assert screen(spam[1], "", None, rules)[1].rule == "quality_score"


def test_features_are_normalised_and_order_aware():
    idx, vals = features("the cat sat on the mat")
    assert np.isclose(np.linalg.norm(vals), 1.0) and len(idx) == len(set(idx.tolist()))
    assert not np.array_equal(features("dog bites man")[0], features("man bites dog")[0])  # bigrams differ
    assert features("")[0].size == 0 and isinstance(QualityModel(np.zeros(8, np.float32), 0.0).score(""), float)
