"""Every `scratchllm viz` kind, run through the real command line on a tiny run, writes a valid
picture that is not blank: a PNG with varying pixels, a GIF with one frame a token, an HTML page
that carries its data inline (no external scripts, styles or images)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from viz_world import pixel_std, tiny_run

from scratchllm.cli import main

PROMPT = "hello there"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("viz")
    run = tiny_run(root)
    names = root / "names.txt"                             # a handful of letters: a small table, drawn fast
    names.write_text("\n".join(["anna", "bob", "abba", "nan", "bonn", "oba"] * 20) + "\n")
    assert main(["charlm", "train", "--model", "bigram", "--data", str(names), "--out", str(root / "bigram")]) == 0
    return root, run


CASES = [
    (["tokens"], "png"), (["tokens"], "html"),
    (["attention", "--layer", "1", "--head", "1"], "png"), (["attention"], "html"),
    (["attention", "--animate", "--max-new-tokens", "3"], "gif"), (["attention", "--animate", "--max-new-tokens", "2"], "html"),
    (["logit-lens"], "png"), (["logit-lens"], "html"),
    (["saliency", "--steps", "8"], "png"), (["saliency", "--target", "e", "--steps", "8"], "html"),
    (["inference", "--max-new-tokens", "3"], "html"),
]


def _check(path, fmt: str) -> None:
    data = path.read_bytes()
    if fmt == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert pixel_std(data) > 5, "a blank picture"
    elif fmt == "gif":
        image = Image.open(io.BytesIO(data))
        assert image.format == "GIF" and image.n_frames >= 2
    else:
        text = data.decode("utf-8")
        assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the page must work offline"
        assert len(re.sub(r"<[^>]+>", "", text).strip()) > 50, "a page with nothing on it"


@pytest.mark.parametrize("argv, fmt", CASES, ids=[f"{a[0]}-{f}" + ("-animate" * ("--animate" in a)) for a, f in CASES])
def test_kind_writes_a_picture(argv, fmt, world, tmp_path):
    _, run = world
    out = tmp_path / f"out.{fmt}"
    assert main(["viz", argv[0], "--run", str(run), "--prompt", PROMPT, "--out", str(out), *argv[1:]]) == 0
    _check(out, fmt)


@pytest.mark.parametrize("fmt", ["png", "html"])
def test_embeddings(fmt, world, tmp_path):
    _, run = world
    out = tmp_path / f"emb.{fmt}"
    assert main(["viz", "embeddings", "--run", str(run), "--tokens", "he", "a", "--out", str(out)]) == 0
    _check(out, fmt)


def test_bigram(world, tmp_path):
    root, _ = world
    out = tmp_path / "bigram.png"
    assert main(["viz", "bigram", "--run", str(root / "bigram"), "--out", str(out)]) == 0
    _check(out, "png")


def test_tokens_page_shows_ids_and_bytes(world, tmp_path):
    _, run = world
    out = tmp_path / "t.html"
    main(["viz", "tokens", "--run", str(run), "--prompt", "hello", "--out", str(out)])
    text = out.read_text()
    # "hello" = "he" (256) + "ll" (257) + "o" (111): two 2-byte tokens and one byte
    assert "256 · 2B" in text and "257 · 2B" in text and "111 · 1B" in text
