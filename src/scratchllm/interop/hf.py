"""Import Hugging Face checkpoints into our `Transformer`, and export ours so `transformers` loads them.

    scratchllm import hf path/to/hf_model --out runs/imported     # config.json + *.safetensors (+ tokenizer.json)
    scratchllm export hf runs/imported --out exported/             # AutoModelForCausalLM / AutoTokenizer load it

The translation lives in three small modules: `hf_config` (config.json <-> ModelConfig),
`hf_weights` (tensor names and layouts), `hf_files` (reading directories, shards included).

    model, arch = load_hf("path/to/hf_model")          # e.g. a downloaded GPT-2
    import_hf("path/to/hf_model", "runs/imported")     # then scratchllm.load("runs/imported")

A round trip on a run made in a temporary directory:

>>> import tempfile, torch
>>> from scratchllm.train.checkpoint import load_run, save_run_weights
>>> d = tempfile.mkdtemp()
>>> ours = Transformer(ModelConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16))
>>> _ = save_run_weights(d + "/run", ours)
>>> _ = export_hf(d + "/run", d + "/hf")
>>> back, arch = load_hf(d + "/hf")
>>> arch, torch.equal(back.lm_head.weight, ours.lm_head.weight)
('gpt2', True)
>>> _ = import_hf(d + "/hf", d + "/again")
>>> load_run(d + "/again").config.model.n_embd
16
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from scratchllm.errors import UserError
from scratchllm.interop.hf_config import config_from_hf, config_to_hf
from scratchllm.interop.hf_files import read_hf_config, read_hf_json, read_hf_weights
from scratchllm.interop.hf_weights import hf_to_ours, ours_to_hf
from scratchllm.model.config import ModelConfig
from scratchllm.model.position import rope_tables
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer import Tokenizer, load_tokenizer
from scratchllm.tokenizer.formats import export_hf as export_hf_tokenizer, tokenizer_from_hf_dict
from scratchllm.train.checkpoint import find_checkpoint, save_run_weights
from scratchllm.train.config import load_run_config
from scratchllm.utils.atomic import atomic_directory, named_os_errors


def skeleton(cfg: ModelConfig) -> torch.nn.Module:
    """Our `Transformer` on the meta device: every name and shape, no memory and no random init.

    Random init is the slow part of building a model (16 s for GPT-2 124M on 2 CPU cores) and a
    checkpoint overwrites it anyway, so conversions build this and fill it with real tensors.
    """
    with torch.device("meta"):
        return Transformer(cfg)


def _fill(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Put `state` into a `skeleton` and compute the tables that are not weights (RoPE cos/sin)."""
    cfg = model.config
    model.load_state_dict(state, strict=True, assign=True)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.tok_emb.weight   # assign made two Parameters; one matrix, as built
    if cfg.position == "rope":
        model.rope_cos, model.rope_sin = rope_tables(cfg.head_dim, cfg.block_size, cfg.rope_theta, cfg.rope_scaling)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:  # a tensor the Transformer gained that this function does not know how to compute
        raise RuntimeError(f"interop: no value for {left} after loading; update interop.hf._fill")
    return model


def load_hf(hf_dir: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, str]:
    """Our `Transformer` (eval mode, fp32) holding a Hugging Face checkpoint's weights, and its HF model_type."""
    hf_dir = Path(hf_dir)
    hf_cfg = read_hf_config(hf_dir)
    cfg, arch = config_from_hf(hf_cfg, where=str(hf_dir / "config.json"))
    tensors, sources = read_hf_weights(hf_dir)
    model = skeleton(cfg)
    state = hf_to_ours(tensors, sources, model, hf_cfg)
    return _fill(model, state).to(device).eval(), arch


def _is_byte_level(data: dict) -> bool:
    pre = data.get("pre_tokenizer") or {}
    return any(step.get("type") == "ByteLevel" for step in pre.get("pretokenizers", [pre]))


def load_hf_tokenizer(hf_dir: str | Path):
    """Our tokenizer for the directory's byte-level BPE `tokenizer.json`; None if it has none, or
    if it is another kind (SentencePiece-style Llama 2 / Mistral tokenizers have no byte-level form)."""
    path = Path(hf_dir) / "tokenizer.json"
    if not path.is_file():
        return None
    data = read_hf_json(path)
    if not _is_byte_level(data):
        return None
    # subtle: GPT-2's tokenizer.json lists <|endoftext|> both in the BPE vocab and as a special added
    # token; it is special (never produced by merges, matched whole), so keep it out of the ranks.
    special = {a.get("content") for a in data.get("added_tokens") or [] if a.get("special")}
    vocab = (data.get("model") or {}).get("vocab")
    if isinstance(vocab, dict):
        data["model"]["vocab"] = {k: v for k, v in vocab.items() if k not in special}
    try:
        return tokenizer_from_hf_dict(data, name=Path(hf_dir).name)
    except UserError as e:
        raise UserError(f"'{path}': {e}") from None


def import_hf(hf_dir: str | Path, out: str | Path, tokenizer: bool = True) -> Path:
    """Write run directory `out` (loadable by `scratchllm.load`) from a Hugging Face model directory."""
    model, _ = load_hf(hf_dir)
    tok_path = Path(hf_dir) / "tokenizer.json"
    tok = load_hf_tokenizer(hf_dir) if tokenizer else None
    if tokenizer and tok is None and tok_path.is_file():
        print(f"note: '{tok_path}' is not a byte-level BPE tokenizer; "
              "the run is written without a tokenizer", file=sys.stderr)
    if tok is not None and tok.vocab_size > model.config.vocab_size:
        raise UserError(f"'{tok_path}' has {tok.vocab_size} tokens but config.json field "
                        f"'vocab_size' is {model.config.vocab_size}; the tokenizer belongs to another model")
    out = Path(out)
    # Built aside and renamed into place: a failed import never leaves a half-written run.
    with atomic_directory(out) as tmp:
        save_run_weights(tmp, model, tok)
    return out


def _generation_config(cfg_hf: dict) -> dict:
    return {"bos_token_id": cfg_hf.get("bos_token_id"), "eos_token_id": cfg_hf.get("eos_token_id"),
            "pad_token_id": cfg_hf.get("eos_token_id"), "do_sample": False}


def _write_tokenizer(tok, tmp: Path, max_len: int) -> None:
    export_hf_tokenizer(tok, tmp / "tokenizer.json")
    # PreTrainedTokenizerFast: use tokenizer.json as written (model-specific classes may rebuild it).
    tok_cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_len,
               "clean_up_tokenization_spaces": False, "add_prefix_space": False}
    if tok.eot_id is not None:  # GPT-2's convention: <|endoftext|> begins, ends and pads
        tok_cfg.update(bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))


def _run_weights(run_dir: Path, step: int | None, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """A run checkpoint's tensors (verified checksum), checked name by name against `cfg`'s model."""
    ckpt = find_checkpoint(run_dir, step, weights_only=True)   # export never reads the optimizer file
    state = load_file(str(ckpt.path / "model.safetensors"))
    if cfg.tie_embeddings:  # a tied matrix is stored once, under either name
        shared = state.get("tok_emb.weight", state.get("lm_head.weight"))
        if shared is not None:
            state.setdefault("tok_emb.weight", shared)
            state.setdefault("lm_head.weight", shared)
    for name, want in skeleton(cfg).state_dict().items():
        got = state.get(name)
        if got is None or got.shape != want.shape:
            found = "is missing" if got is None else f"has shape {list(got.shape)}"
            raise UserError(f"checkpoint '{ckpt.path}': tensor '{name}' {found} but config.toml's [model] implies "
                            f"{list(want.shape)}; the run directory mixes files of two runs")
    return state


def export_hf(run_dir: str | Path, out: str | Path, step: int | None = None) -> Path:
    """Write a Hugging Face directory (config, weights, tokenizer) for a run's checkpoint.

    A file conversion: the weights go from the checkpoint to the new file without building a model.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory '{run_dir}' does not exist; pass the --out directory of a run")
    cfg = load_run_config(run_dir).model
    tok = None
    if (run_dir / "tokenizer.json").is_file():
        tok = load_tokenizer(str(run_dir / "tokenizer.json"))
    if tok is not None and not isinstance(tok, Tokenizer):
        raise UserError(f"run '{run_dir}' has a character-level tokenizer, which has no Hugging Face format; "
                        "export a run trained with a BPE tokenizer")
    eot = tok.eot_id if tok is not None else None
    cfg_hf = config_to_hf(cfg, bos_id=eot, eos_id=eot)   # raises first: nothing is written for an unsupported model
    tensors = ours_to_hf(_run_weights(run_dir, step, cfg), cfg, cfg_hf)
    out = Path(out)
    with atomic_directory(out) as tmp, named_os_errors(out):  # a full disk: one line naming `out`
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(cfg_hf, indent=2))
        (tmp / "generation_config.json").write_text(json.dumps(_generation_config(cfg_hf), indent=2))
        if tok is not None:
            _write_tokenizer(tok, tmp, cfg.block_size)
    return out
