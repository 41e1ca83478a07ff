"""Bad Hugging Face directories: each mistake is one UserError sentence naming the file and the field."""

from __future__ import annotations

import json
import shutil

import pytest

from scratchllm.errors import UserError
from scratchllm.interop.hf import load_hf

pytest.importorskip("transformers")


@pytest.fixture
def llama_dir(hf_dirs, tmp_path):
    """A writable copy of the tiny Llama checkpoint."""
    path = tmp_path / "llama"
    shutil.copytree(hf_dirs["llama-gqa"][0], path)
    return path


def edit_config(path, **changes):
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def test_missing_directory(tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        load_hf(tmp_path / "nope")


def test_missing_config(llama_dir):
    (llama_dir / "config.json").unlink()
    with pytest.raises(UserError, match=r"config\.json' does not exist"):
        load_hf(llama_dir)


def test_missing_weights(llama_dir):
    (llama_dir / "model.safetensors").unlink()
    with pytest.raises(UserError, match=r"no model\.safetensors or model\.safetensors\.index\.json"):
        load_hf(llama_dir)


def test_pickled_weights_are_refused(llama_dir):
    (llama_dir / "model.safetensors").rename(llama_dir / "pytorch_model.bin")
    with pytest.raises(UserError, match="pickled"):
        load_hf(llama_dir)


def test_corrupt_weights(llama_dir):
    (llama_dir / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match=r"model\.safetensors' is not a readable safetensors file"):
        load_hf(llama_dir)


def test_missing_shard(llama_dir):
    (llama_dir / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}
    (llama_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(UserError, match=r"index\.json' lists shard 'model-00001-of-00002\.safetensors', which is missing"):
        load_hf(llama_dir)


def test_unsupported_model_type(llama_dir):
    edit_config(llama_dir, model_type="bert")
    with pytest.raises(UserError, match=r"config\.json: field 'model_type' is 'bert'; supported: gpt2, llama"):
        load_hf(llama_dir)


def test_missing_config_field(llama_dir):
    cfg = json.loads((llama_dir / "config.json").read_text())
    del cfg["hidden_size"]
    (llama_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"config\.json: field 'hidden_size' is missing"):
        load_hf(llama_dir)


def test_unsupported_rope_scaling(llama_dir):
    edit_config(llama_dir, rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4})
    with pytest.raises(UserError, match=r"config\.json: field 'rope_scaling' type 'yarn' is not supported"):
        load_hf(llama_dir)


def test_shape_mismatch_names_file_tensor_and_field(llama_dir):
    edit_config(llama_dir, intermediate_size=112)
    with pytest.raises(UserError) as err:
        load_hf(llama_dir)
    msg = str(err.value)
    assert "model.safetensors" in msg and "'model.layers.0.mlp.gate_proj.weight' has shape [96, 64]" in msg
    assert "implies [112, 64]" in msg and "field 'intermediate_size'" in msg


def test_gpt2_shape_mismatch_reports_hf_layout(hf_dirs, tmp_path):
    path = tmp_path / "gpt2"
    shutil.copytree(hf_dirs["gpt2"][0], path)
    edit_config(path, n_inner=128)
    with pytest.raises(UserError, match=r"'h\.0\.mlp\.c_fc\.weight' has shape \[64, 256\] but config\.json implies \[64, 128\]"):
        load_hf(path)


def test_more_layers_in_weights_than_config(llama_dir):
    edit_config(llama_dir, num_hidden_layers=1)
    with pytest.raises(UserError, match=r"holds tensor 'model\.layers\.1\..*num_hidden_layers"):
        load_hf(llama_dir)


def test_fewer_layers_in_weights_than_config(llama_dir):
    edit_config(llama_dir, num_hidden_layers=3)
    with pytest.raises(UserError, match=r"has no tensor 'model\.layers\.2\..*' that config\.json implies"):
        load_hf(llama_dir)


def test_command_line_errors_are_one_line(llama_dir, tmp_path, cli_main, capsys):
    (llama_dir / "config.json").unlink()
    out = tmp_path / "runs" / "x"
    assert cli_main(["import", "hf", str(llama_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "config.json" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_import_refuses_a_non_empty_out(hf_dirs, tmp_path, cli_main, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert cli_main(["import", "hf", str(hf_dirs["gpt2"][0]), "--out", str(out)]) == 2
    assert "already holds 'keep.txt'" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"


def test_untied_config_for_tied_weights(hf_dirs, tmp_path):
    path = tmp_path / "qwen2"
    shutil.copytree(hf_dirs["qwen2"][0], path)
    edit_config(path, tie_word_embeddings=False)
    with pytest.raises(UserError, match=r"no tensor 'lm_head\.weight'.*'tie_word_embeddings' to true"):
        load_hf(path)


def test_incomplete_rope_scaling(llama_dir):
    edit_config(llama_dir, rope_parameters={"rope_type": "linear", "rope_theta": 1e4})
    with pytest.raises(UserError, match=r"config\.json: linear rope scaling is missing factor"):
        load_hf(llama_dir)
