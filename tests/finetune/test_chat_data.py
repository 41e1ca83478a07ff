"""Conversation data: the four layouts, detection, the loss mask, packing, truncation, the split."""

from __future__ import annotations

import gzip
import json

import pytest
import torch
from ft_helpers import DATA, alpaca_records, byte_tokenizer, llama_config, tiny_model, write_json

from scratchllm.data import chat
from scratchllm.errors import UserError
from scratchllm.train.finetune import chat_loss

TOK = byte_tokenizer()
CONV = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."}, {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6."}]


def test_four_layouts_give_the_same_messages(tmp_path):
    openai = {"messages": CONV[1:3]}
    sharegpt = {"conversations": [{"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4."}]}
    alpaca = {"instruction": "What is 2+2?", "input": "", "output": "4."}
    gpteacher = {"instruction": "What is 2+2?", "input": "", "response": "4."}
    for record, fmt in [(openai, "openai"), (sharegpt, "sharegpt"), (alpaca, "alpaca"), (gpteacher, "gpteacher")]:
        assert chat.detect_format(record) == fmt
        path = write_json(tmp_path / f"{fmt}.json", [record])
        assert chat.load_conversations(path) == [CONV[1:3]]
    gz = tmp_path / "a.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(json.dumps(sharegpt) + "\n" + json.dumps(sharegpt) + "\n")
    assert chat.load_conversations(gz, fmt="auto") == [CONV[1:3]] * 2


def test_alpaca_input_joins_the_instruction():
    messages = chat.to_messages({"instruction": "Translate.", "input": "chat", "output": "cat"}, "alpaca")
    assert messages[0]["content"] == "Translate.\n\nchat"


def test_placeholders_filled(tmp_path):
    path = write_json(tmp_path / "id.json", [{"instruction": "Who are you?", "input": "",
                                              "output": "I am {{name}}, made by {{author}}."}])
    convs = chat.load_conversations(path, placeholders={"name": "Ada", "author": "Bob"})
    assert convs[0][1]["content"] == "I am Ada, made by Bob."


def test_bad_input_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match="cannot tell the chat format"):
        chat.load_conversations(write_json(tmp_path / "x.json", [{"question": "q", "answer": "a"}]))
    with pytest.raises(UserError, match="unknown chat format 'llama'"):
        chat.to_messages({}, "llama")
    no_reply = {"messages": [{"role": "user", "content": "hello?"}]}
    with pytest.raises(UserError, match="record 1 .* has no assistant turn"):
        chat.load_conversations(write_json(tmp_path / "y.jsonl", [{"messages": CONV[1:3]}, no_reply], jsonl=True))
    with pytest.raises(UserError, match="does not exist"):
        chat.load_conversations(tmp_path / "missing.json")


def test_targets_are_the_assistant_tokens_only():
    (ex,), _ = chat.encode_conversations(TOK, [CONV], block_size=200)
    learned = TOK.decode([t for t in ex.targets if t != -100])
    assert learned == "4.<|assistant_end|>6.<|assistant_end|>"
    # targets are inputs shifted by one wherever they count
    for i, t in enumerate(ex.targets[:-1]):
        if t != -100:
            assert ex.inputs[i + 1] == t


def test_changing_user_or_system_tokens_never_changes_the_loss_targets():
    """Only assistant tokens are scored: a changed prompt changes no scored target and no count, and
    whatever the model predicts at prompt positions does not enter the loss."""
    changed = [dict(m) for m in CONV]
    changed[0]["content"], changed[1]["content"] = "Be long.", "What is 9+9?"
    (a,), _ = chat.encode_conversations(TOK, [CONV], 200)
    (b,), _ = chat.encode_conversations(TOK, [changed], 200)
    assert [t for t in a.targets if t != -100] == [t for t in b.targets if t != -100]
    batch = chat.collate(chat.pack([a], 200))
    prompt = batch["targets"] == -100
    logits = torch.randn(1, 200, 320, generator=torch.Generator().manual_seed(0))
    noisy = logits + 100 * torch.randn(logits.shape) * prompt[..., None]    # wild predictions on the prompt

    def fixed(out):
        return lambda idx, **kw: out

    assert chat_loss(fixed(logits), batch) == chat_loss(fixed(noisy), batch)
    answer = logits.clone()
    answer[~prompt] += 1.0 * torch.randn(answer[~prompt].shape)
    assert chat_loss(fixed(answer), batch) != chat_loss(fixed(logits), batch)   # the reply positions count


def test_packed_rows_give_the_loss_of_one_conversation_per_row():
    convs = [chat.to_messages(r, "alpaca") for r in alpaca_records(7)]
    examples, _ = chat.encode_conversations(TOK, convs, 128)
    packed = chat.pack(examples, 128)
    assert len(packed) < len(examples)          # several conversations share a row
    for cfg in (llama_config(), llama_config(position="learned", norm="layernorm", mlp="gelu")):
        model = tiny_model(cfg)
        one_each = [chat.pack([ex], 128)[0] for ex in examples]
        loss_packed = chat_loss(model, chat.collate(packed))
        loss_alone = chat_loss(model, chat.collate(one_each))
        assert torch.allclose(loss_packed, loss_alone, atol=1e-5)


def test_truncation_is_counted():
    long = [{"role": "user", "content": "x" * 30}, {"role": "assistant", "content": "y" * 30}]
    cut_reply = [{"role": "user", "content": "x" * 70}, {"role": "assistant", "content": "y"}]
    short = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    examples, stats = chat.encode_conversations(TOK, [long, cut_reply, short], block_size=40)
    assert (stats.truncated, stats.dropped, stats.conversations) == (2, 1, 2)   # long and cut_reply cut; cut_reply lost its reply
    assert all(len(e.inputs) <= 40 for e in examples)
    assert "2 truncated" in stats.summary()


def test_heldout_split_is_stable_and_disjoint():
    convs = list(range(200))
    train, held = chat.split_heldout(convs, 0.1, seed=3)
    assert sorted(train + held) == convs and not set(train) & set(held)
    assert chat.split_heldout(convs, 0.1, seed=3) == (train, held)
    assert 5 < len(held) < 40
    with pytest.raises(UserError, match="empty"):
        chat.split_heldout([1], 0.5)


def test_batches_resume_where_they_stopped():
    convs = [chat.to_messages(r, "alpaca") for r in alpaca_records(30)]
    rows = chat.pack(chat.encode_conversations(TOK, convs, 64)[0], 64)
    a = chat.ChatBatches(rows, 3, seed=1)
    for _ in range(5):
        next(a)
    b = chat.ChatBatches(rows, 3, seed=1)
    b.load_state_dict(a.state_dict())
    assert torch.equal(next(a)["inputs"], next(b)["inputs"])


def test_shared_sft_files_are_detected():
    sft = DATA / "sft"
    if not sft.is_dir():
        pytest.skip("no ../shared/data/sft")
    for name, fmt in [("alpaca_en_demo.json", "alpaca"), ("gpteacher_roleplay.json", "gpteacher")]:
        assert chat.detect_format(chat.read_records(sft / name)[0]) == fmt
    convs = chat.load_conversations(sft / "identity.json", placeholders={"name": "Ada", "author": "Bob"})
    assert len(convs) == 91 and not any("{{" in m["content"] for c in convs for m in c)
