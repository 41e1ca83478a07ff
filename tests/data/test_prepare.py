"""`data prepare` end to end: artifacts, byte-identical reruns, duplicates and drops reported,
synthetic sources tagged, empty results refused; `data download` offline."""

import json

import pytest

from data_helpers import prose, write_jsonl
from scratchllm.cli import main
from scratchllm.data.download import download
from scratchllm.data.prepare import prepare
from scratchllm.data.recipe import load_recipe, recipe_from_dict
from scratchllm.data.shards import list_shards, read_shard
from scratchllm.errors import UserError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    docs = [{"id": f"book{i}", "text": f"*** START OF THIS PROJECT GUTENBERG EBOOK {i} ***\r\n{prose(250, i)}\r\n"
                                       f"*** END OF THIS PROJECT GUTENBERG EBOOK {i} ***\r\nlicence"} for i in range(40)]
    docs.append({"id": "copy", "text": docs[3]["text"]})      # exact duplicate
    docs.append({"id": "short", "text": "Too short to keep."})  # dropped by min_words
    write_jsonl(d / "a.jsonl", docs[:20])
    write_jsonl(d / "b.jsonl", docs[20:] + ['{"broken'])
    return d


def _recipe(corpus, tokenizer_path, **extra):
    data = {"sources": [{"name": "books", "paths": [str(corpus / "*.jsonl")]}], "tokenizer": str(tokenizer_path),
            "val_fraction": 0.1, "workers": 2, "shard_tokens": 5000, **extra}
    return recipe_from_dict(data)


def test_prepare_artifacts_and_counts(tmp_path, corpus, tokenizer_path):
    m = prepare(_recipe(corpus, tokenizer_path), tmp_path / "out", progress=False)
    out = tmp_path / "out"
    assert {"tokenizer.json", "meta.json", "manifest.json", "report.md", "clusters.jsonl"} <= {p.name for p in out.iterdir()}
    meta = json.loads((out / "meta.json").read_text())
    assert set(meta) >= {"vocab_size", "eot_id", "tokenizer_sha256", "splits"}
    assert meta["splits"]["train"]["documents"] + meta["splits"]["val"]["documents"] == 40
    assert meta["splits"]["val"]["documents"] >= 1
    tokens = sum(len(read_shard(p)) for p in list_shards(out, "train"))
    assert tokens == meta["splits"]["train"]["tokens"] and len(list_shards(out, "train")) > 1
    src = m["sources"][0]
    assert src["documents_read"] == 42 and src["malformed_lines"] == 1
    assert src["dropped_by_filters"] == 1 and src["removed_as_duplicates"] == 1
    assert m["drops"]["min_words"]["examples"][0]["id"] == "short"
    assert json.loads((out / "clusters.jsonl").read_text().splitlines()[0]) in (["book3", "copy"], ["copy", "book3"])
    report = (out / "report.md").read_text()
    assert "min_words" in report and "Duplicate clusters" in report
    assert "GUTENBERG" not in read_back(out, meta)


def read_back(out, meta):
    from scratchllm.tokenizer import load_tokenizer

    tok = load_tokenizer(out / "tokenizer.json")
    return tok.decode([int(t) for p in list_shards(out, "train") for t in read_shard(p)])


def test_same_recipe_gives_byte_identical_shards(tmp_path, corpus, tokenizer_path):
    prepare(_recipe(corpus, tokenizer_path), tmp_path / "a", progress=False)
    prepare(_recipe(corpus, tokenizer_path, workers=1), tmp_path / "b", progress=False)
    names = sorted(p.name for p in (tmp_path / "a").glob("*.bin"))
    assert names and names == sorted(p.name for p in (tmp_path / "b").glob("*.bin"))
    for name in names + ["meta.json", "clusters.jsonl"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_empty_result_is_an_error_and_writes_nothing(tmp_path, corpus, tokenizer_path):
    recipe = _recipe(corpus, tokenizer_path, filter={"min_words": 100_000})
    with pytest.raises(UserError, match="no documents left.*min_words"):
        prepare(recipe, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_synthetic_template_source_is_mixed_and_tagged(tmp_path, corpus, tokenizer_path):
    synth = {"name": "templated", "type": "templates", "count": 300, "process": False, "weight": 0.25,
             "templates": ["The {animal} of the {place} was {mood} and the {animal} went home."],
             "slots": {"animal": ["fox", "owl", "cat"], "place": ["hill", "river"], "mood": ["calm", "glad"]}}
    recipe = _recipe(corpus, tokenizer_path, sources=[{"name": "books", "paths": [str(corpus / "*.jsonl")], "weight": 0.75}, synth],
                     mix={"max_epochs": 5.0})
    m = prepare(recipe, tmp_path / "out", progress=False)
    by_name = {s["name"]: s for s in m["sources"]}
    assert by_name["templated"]["synthetic"] and not by_name["books"]["synthetic"]
    assert abs(by_name["templated"]["mixed"]["token_share"] - 0.25) < 0.05


def test_cli_prepare_with_input_and_packaged_recipe(tmp_path, corpus, tokenizer_path, capsys):
    rc = main(["data", "prepare", "--recipe", "gutenberg", "--input", str(corpus / "a.jsonl"), "--tokenizer",
               str(tokenizer_path), "--out", str(tmp_path / "out"), "--workers", "1", "--set", "val_fraction=0.2"])
    assert rc == 0 and "train" in capsys.readouterr().out
    assert load_recipe("gutenberg").dedup.threshold == 0.8
    assert main(["data", "prepare", "--input", str(corpus), "--out", str(tmp_path / "x")]) == 2
    assert "needs a tokenizer" in capsys.readouterr().err


def test_download_offline_is_one_line_error(tmp_path):
    with pytest.raises(UserError, match="cannot download 'tiny-shakespeare' from no-such-host.invalid") as e:
        download("tiny-shakespeare", tmp_path, url="http://no-such-host.invalid/input.txt", timeout=2, progress=False)
    assert "\n" not in str(e.value) and not list(tmp_path.iterdir())
    (tmp_path / "tiny-shakespeare.txt").write_text("cached")  # a cached file needs no network
    assert download("tiny-shakespeare", tmp_path, url="http://no-such-host.invalid/x").read_text() == "cached"
    with pytest.raises(UserError, match="unknown corpus"):
        download("nope", tmp_path)


def _documents(out, split):
    """The split's documents as text: its shards read back, cut at the end-of-text separators."""
    from scratchllm.tokenizer import load_tokenizer

    tok = load_tokenizer(out / "tokenizer.json")
    ids = [int(t) for p in list_shards(out, split) for t in read_shard(p)]
    docs, current = [], []
    for t in ids + [tok.eot_id]:
        if t == tok.eot_id:
            if current:
                docs.append(tok.decode(current))
            current = []
        else:
            current.append(t)
    return docs


def test_upsampled_copies_stay_in_one_split(tmp_path, corpus, tokenizer_path):
    recipe = _recipe(corpus, tokenizer_path, val_fraction=0.25)
    recipe.sources[0].epochs = 3.0                  # every kept document three times
    prepare(recipe, tmp_path / "out", progress=False)
    train, val = _documents(tmp_path / "out", "train"), _documents(tmp_path / "out", "val")
    assert len(val) >= 3 and len(set(val)) == len(val)            # val never repeats a document
    assert not set(train) & set(val)                              # no copy crosses the split
    assert all(train.count(doc) == 3 for doc in set(train))       # train holds all three copies
    assert len(set(train)) + len(val) == 40
