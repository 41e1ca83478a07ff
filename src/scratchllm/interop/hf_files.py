"""Reading a Hugging Face model directory: `config.json` and its safetensors weights, sharded or not.

A Hub checkpoint is either one `model.safetensors` or several shards listed by
`model.safetensors.index.json` (`{"weight_map": {tensor name: shard file}}`). Pickled
`pytorch_model.bin` files are refused: loading them can run arbitrary code.

>>> import json, tempfile, pathlib, torch
>>> from safetensors.torch import save_file
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
>>> save_file({"wte.weight": torch.zeros(4, 2)}, d / "model.safetensors")
>>> tensors, sources = read_hf_weights(d)
>>> read_hf_config(d)["model_type"], list(tensors), sources["wte.weight"].endswith("model.safetensors")
('gpt2', ['wte.weight'], True)
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from scratchllm.errors import UserError
from scratchllm.utils.files import read_json

INDEX = "model.safetensors.index.json"


def read_hf_json(path: Path) -> dict:
    """A JSON object from a file of a Hugging Face model directory."""
    return read_json(path, "file", "a Hugging Face model directory needs it", "fix or re-download the file", obj=True)


def read_hf_config(hf_dir: str | Path) -> dict:
    """The `config.json` of a Hugging Face model directory."""
    hf_dir = Path(hf_dir)
    if not hf_dir.is_dir():
        raise UserError(f"'{hf_dir}' is not a directory; pass a Hugging Face model directory (config.json + *.safetensors)")
    return read_hf_json(hf_dir / "config.json")


def _load_shard(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise UserError(f"'{path}' is not a readable safetensors file ({e}); re-download it") from None


def weight_files(hf_dir: Path) -> list[Path]:
    """The safetensors files holding the model's weights (one, or the shards the index names)."""
    single = hf_dir / "model.safetensors"
    if single.is_file():
        return [single]
    if (hf_dir / INDEX).is_file():
        weight_map = read_hf_json(hf_dir / INDEX).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise UserError(f"'{hf_dir / INDEX}': field 'weight_map' is missing or empty; re-download the index")
        shards = [hf_dir / name for name in sorted(set(weight_map.values()))]
        for shard in shards:
            if not shard.is_file():
                raise UserError(f"'{hf_dir / INDEX}' lists shard '{shard.name}', which is missing; download it")
        return shards
    if list(hf_dir.glob("*.bin")):
        raise UserError(f"'{hf_dir}' has only pickled *.bin weights; convert them to safetensors first "
                        "(loading pickles can run arbitrary code)")
    raise UserError(f"'{hf_dir}' has no model.safetensors or {INDEX}; download the weights too")


def read_hf_weights(hf_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of the checkpoint by its HF name (shards merged), and the file each came from."""
    tensors: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    for path in weight_files(Path(hf_dir)):
        shard = _load_shard(path)
        tensors.update(shard)
        sources.update(dict.fromkeys(shard, str(path)))
    return tensors, sources
