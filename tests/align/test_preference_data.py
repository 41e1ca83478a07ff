"""Preference files in each layout -> Pairs; the real files of ../shared/data/preference; bad records;
encoded rows mask all but the final reply; sequence log-probs over reply tokens only, padding-blind."""

from __future__ import annotations

import json

import pytest
import torch
from align_helpers import PREFERENCE, byte_tokenizer, tiny_model, write_jsonl

from scratchllm.align.dpo import pair_logps, sequence_logps
from scratchllm.data.preference import Pair, collate_pairs, encode_pairs, load_pairs
from scratchllm.errors import UserError
from scratchllm.tokenizer.special import render_conversation

MESSAGES = [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"}, {"role": "user", "content": "2+2?"}]
LAYOUTS = {
    "pairs-text": {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
    "pairs-messages": {"prompt": MESSAGES, "chosen": [{"role": "assistant", "content": "4"}], "rejected": "5"},
    "hh": {"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 4",
           "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 5"},
    "llamafactory": {"conversations": [{"from": "system", "value": "be kind"}, {"from": "human", "value": "hi"},
                                       {"from": "gpt", "value": "hello"}, {"from": "human", "value": "2+2?"}],
                     "chosen": {"from": "gpt", "value": "4"}, "rejected": {"from": "gpt", "value": "5"}},
    "openai": {"input": {"messages": MESSAGES}, "preferred_output": [{"role": "assistant", "content": "4"}],
               "non_preferred_output": [{"role": "assistant", "content": "5"}]},
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_layout_reads_to_the_same_pair(name, tmp_path):
    pair = load_pairs(write_jsonl(tmp_path / "p.jsonl", [LAYOUTS[name]]))[0]
    assert (pair.chosen, pair.rejected) == ("4", "5")
    assert pair.prompt[-1] == {"role": "user", "content": "2+2?"}
    if name not in ("pairs-text",):
        want = MESSAGES if name != "hh" else MESSAGES[1:]   # HH transcripts carry no system turn
        assert pair.prompt == want


def test_hh_reply_that_runs_on_keeps_its_extra_turns(tmp_path):
    rec = {"chosen": "\n\nHuman: q\n\nAssistant: short", "rejected": "\n\nHuman: q\n\nAssistant: long\n\nHuman: more"}
    pair = load_pairs(write_jsonl(tmp_path / "p.jsonl", [rec]))[0]
    assert pair.prompt == [{"role": "user", "content": "q"}]
    assert (pair.chosen, pair.rejected) == ("short", "long\n\nHuman: more")


@pytest.mark.parametrize("name, count", [("hh_helpful-base_test.jsonl.gz", 2352), ("hh_harmless_base_test.jsonl.gz", 2312),
                                         ("dpo_en_demo.json", 300), ("orca_dpo_pairs_validation.jsonl", 284)])
def test_real_files(name, count):
    path = PREFERENCE / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    pairs = load_pairs(path, drop_identical=True)
    assert len(pairs) == count
    assert all(p.prompt and p.prompt[-1]["role"] == "user" and p.chosen != p.rejected for p in pairs)
    if name.startswith("hh"):   # the split agrees with the raw transcripts: prompt + reply rebuilds "chosen"
        first = json.loads(next(iter(_lines(path))))
        rebuilt = "".join(f"\n\n{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in pairs[0].prompt)
        assert first["chosen"].startswith(rebuilt) and first["chosen"].endswith(pairs[0].chosen)


def _lines(path):
    import gzip
    with gzip.open(path, "rt", encoding="utf-8") as f:
        yield from f


@pytest.mark.parametrize("record, fragment", [
    ({"prompt": "x", "chosen": "same", "rejected": "same"}, "identical chosen and rejected"),
    ({"prompt": "x", "chosen": "a"}, "no 'rejected' field"),
    ({"conversations": [], "chosen": {"from": "gpt", "value": "a"}}, "no 'rejected' field"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "different entirely"}, "malformed"),
    ({"input": {"messages": []}, "preferred_output": [{"content": 3}], "non_preferred_output": "b"}, "malformed"),
    ({"text": "x"}, "cannot tell the preference format"),
])
def test_bad_records_are_one_sentence(record, fragment, tmp_path):
    with pytest.raises(UserError, match=fragment):
        load_pairs(write_jsonl(tmp_path / "p.jsonl", [record]))


def test_identical_pairs_can_be_skipped(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "x", "chosen": "s", "rejected": "s"},
                                              {"prompt": "y", "chosen": "a", "rejected": "b"}])
    assert [p.prompt[0]["content"] for p in load_pairs(path, drop_identical=True)] == ["y"]


def test_prompt_longer_than_the_context_is_refused():
    with pytest.raises(UserError, match="the prompt of pair 0 has .* tokens but the model's context"):
        encode_pairs(byte_tokenizer(), [Pair([{"role": "user", "content": "w" * 40}], "a", "b")], block_size=32)


def test_only_the_final_reply_is_a_target():
    tok = byte_tokenizer()
    pair = Pair(MESSAGES, "four", "five!")
    (ex,), _ = encode_pairs(tok, [pair], block_size=64)
    ids, _ = render_conversation(tok, MESSAGES + [{"role": "assistant", "content": "four"}])
    assert ex.chosen_inputs == ids[:-1]
    reply = [t for t in ex.chosen_targets if t != -100]
    assert tok.decode(reply) == "four<|assistant_end|>"     # not the earlier "hello" turn
    assert tok.decode([t for t in ex.rejected_targets if t != -100]) == "five!<|assistant_end|>"


def test_sequence_logps_equal_a_naive_per_token_sum_and_ignore_padding():
    tok, model = byte_tokenizer(), tiny_model()
    pairs = [Pair([{"role": "user", "content": "q" * n}], "r" * (n + 2), "s" * (5 - n)) for n in range(4)]
    examples, _ = encode_pairs(tok, pairs, block_size=48)
    batch = collate_pairs(examples)          # right-padded to the longest of 8 rows
    with torch.no_grad():
        chosen, rejected = pair_logps(model, batch)
        for i, ex in enumerate(examples):
            for got, inputs, targets in ((chosen[i], ex.chosen_inputs, ex.chosen_targets),
                                         (rejected[i], ex.rejected_inputs, ex.rejected_targets)):
                # naive: one row alone, unpadded, one token at a time
                logits = model(torch.tensor([inputs]))[0]
                want = sum(torch.log_softmax(logits[t], -1)[y].item() for t, y in enumerate(targets) if y != -100)
                assert got.item() == pytest.approx(want, abs=1e-4)
        mean = sequence_logps(model, batch["inputs"], batch["targets"], average=True)
        counts = (batch["targets"] != -100).sum(dim=1)
        assert torch.allclose(mean * counts, torch.cat([chosen, rejected]), atol=1e-4)
