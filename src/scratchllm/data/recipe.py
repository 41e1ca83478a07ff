"""A data recipe: which sources, which cleaning, filters, dedup and mix, which tokenizer.

Recipes are TOML files (`src/scratchllm/recipes/*.toml` ship with the package; a bare name
like `gutenberg` finds them). Every table maps onto a dataclass, so a misspelt key is an error.

    [[sources]]
    name = "books"
    paths = ["../shared/data/pretrain/gutenberg/*.jsonl.xz"]
    weight = 1.0

    [filter]
    max_words = 0          # books are long: no upper bound on words

>>> r = recipe_from_dict({"sources": [{"name": "a", "paths": ["x.txt"]}], "dedup": {"threshold": 0.7}})
>>> r.sources[0].name, r.dedup.threshold, r.filter.min_words
('a', 0.7, 50)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from scratchllm.config import from_dict
from scratchllm.data.clean import CleanConfig
from scratchllm.data.dedup import DedupConfig
from scratchllm.data.filters import FilterConfig
from scratchllm.data.mix import MixConfig
from scratchllm.data.pii import parse_kinds
from scratchllm.data.quality import QualityConfig
from scratchllm.data.webfilters import C4Config, FineWebConfig, UrlConfig
from scratchllm.data.webrules import WebRules
from scratchllm.errors import UserError
from scratchllm.utils.files import parse_toml


@dataclass
class SourceConfig:
    """One source of documents. `type` files: paths/globs/dirs or hf:NAME; templates/model: synthetic."""
    name: str = ""
    type: Literal["files", "templates", "model"] = "files"
    paths: list[str] = field(default_factory=list)
    text_field: str = "text"
    id_field: str = "id"
    hf_split: str = "train"
    encoding: str = "utf-8"        # of .txt files
    limit: int = 0                 # read at most this many documents (0: all)
    weight: float = 1.0            # target share of the mixed tokens (normalised over sources)
    epochs: float = 0.0            # > 0: repeat exactly this many times instead of using weight
    process: bool = True           # run cleaning, filters and dedup on this source
    format: Literal["auto", "text", "web"] = "auto"  # web: WARC/WET, HTML, or JSONL with html_field;
    html_field: str = "html"       #   auto: WARC and HTML files are detected by their content
    # synthetic sources
    count: int = 0                 # documents to generate
    templates: list[str] = field(default_factory=list)   # "{name} went to the {place}."
    slots: dict = field(default_factory=dict)            # {"name": ["Ann", "Bo"], "place": [...]}
    run: str = ""                  # run directory of a trained model (type = "model")
    prompts: list[str] = field(default_factory=list)
    max_new_tokens: int = 200
    temperature: float = 0.8
    top_k: int = 50
    seed: int = 0


@dataclass
class Recipe:
    """Everything `scratchllm data prepare` does, as one config."""
    sources: list[SourceConfig] = field(default_factory=list)
    clean: CleanConfig = field(default_factory=CleanConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    pii: list[str] = field(default_factory=list)   # "email", "ip", "phone": replaced after cleaning
    urls: UrlConfig = field(default_factory=UrlConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    tokenizer: str = ""            # tokenizer JSON (or a run directory holding tokenizer.json)
    val_fraction: float = 0.005    # share of documents held out for validation
    seed: int = 0
    workers: int = 2               # processes for cleaning/filtering/hashing and for tokenizing
    shard_tokens: int = 50_000_000

    def validate(self) -> None:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise UserError(f"recipe source names must be unique, got {names}; give each [[sources]] a distinct name")
        if not 0 <= self.val_fraction < 1:
            raise UserError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        parse_kinds(",".join(self.pii) or "none")

    def web_rules(self) -> WebRules | None:
        """The web steps this recipe switches on (None: a recipe for plain text, as before)."""
        rules = WebRules(parse_kinds(",".join(self.pii) or "none"), self.urls, self.c4, self.fineweb, self.quality)
        return rules if rules.pii or rules.filters else None


def recipe_from_dict(data: dict) -> Recipe:
    """Build a Recipe, naming unnamed sources source0, source1, ..."""
    for i, src in enumerate(data.get("sources", [])):
        if isinstance(src, dict) and not src.get("name"):
            src["name"] = f"source{i}"
    return from_dict(Recipe, data)


def find_recipe(name_or_path: str) -> str:
    """The text of a recipe file, or of a packaged recipe (`gutenberg` -> recipes/gutenberg.toml)."""
    p = Path(name_or_path)
    if p.is_file():
        return p.read_text(encoding="utf-8")
    stem = p.stem if p.suffix == ".toml" else p.name
    packaged = resources.files("scratchllm") / "recipes" / f"{stem}.toml"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    raise UserError(f"recipe '{name_or_path}' not found; pass a TOML file path or a packaged recipe name "
                    f"(e.g. gutenberg)")


def load_recipe(name_or_path: str) -> Recipe:
    """Read a recipe TOML file (or packaged recipe name) into a Recipe."""
    data = parse_toml(find_recipe(name_or_path), f"recipe '{name_or_path}'")
    return recipe_from_dict(data)
